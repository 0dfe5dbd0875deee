# DATA: size limits (databytes, SIZE=, DATABYTES from tcprules), hop counting, bare LF,
# clients that vanish mid-message, and a 50 MB message that must stream (byte-exact, with
# every sppd process's peak RSS under 32 MB).
import hashlib
import threading
import time

from conftest import (QUEUED_RE, asan_build, descendants_of, proc_name, vm_hwm_kib, wait_for)

TOO_BIG = "552 5.3.4 sorry, that message size exceeds my databytes limit"
LOOPING = "554 5.4.6 too many hops, this message is looping"
BARE_LF = "451 4.5.0 See https://cr.yp.to/docs/smtplf.html."


def body_of_size(n):
    """A message whose decoded form (LF line ends) is exactly n bytes."""
    header = b"Subject: size\r\n\r\n"
    decoded = len(header) - 2   # CRLF -> LF twice
    line = b"x" * 63 + b"\r\n"  # 64 bytes decoded
    lines = []
    while decoded + 64 <= n:
        lines.append(line)
        decoded += 64
    if n > decoded:
        lines.append(b"y" * (n - decoded - 1) + b"\r\n")
    wire = header + b"".join(lines)
    assert len(wire.replace(b"\r\n", b"\n")) == n
    return wire


def assert_only_message_is(sppd, marker):
    """Sends a follow-up message and checks it is the one and only message queued: what the
    test refused or aborted before it left nothing in Maildir/new or Maildir/tmp."""
    reply = sppd.deliver(b"Subject: " + marker + b"\r\n\r\nfollow-up\r\n")
    assert QUEUED_RE.match(reply.line), reply.line
    (msg,) = sppd.wait_messages(1)
    assert msg.body.startswith(b"Subject: " + marker + b"\n")
    wait_for(lambda: not sppd.tmp_files(), 10, "Maildir/tmp to be empty")


def test_databytes_boundary(make_sppd):
    sppd = make_sppd(control={"databytes": "1000"})
    with sppd.connect() as c:
        reply = c.transaction("alice@client.test", ["bob@example.com"], body_of_size(1000))
        assert QUEUED_RE.match(reply.line), reply.line
        reply = c.transaction("alice@client.test", ["bob@example.com"], body_of_size(1001))
        assert reply.lines == [TOO_BIG]
        # The session goes on after a refused message.
        c.expect("NOOP", "250 2.0.0 ok")
    (msg,) = sppd.wait_messages(1)
    assert len(msg.body) == 1000


def test_databytes_exceeded_queues_nothing(make_sppd):
    sppd = make_sppd(control={"databytes": "1000"})
    with sppd.connect() as c:
        reply = c.transaction("alice@client.test", ["bob@example.com"], body_of_size(200000))
        assert reply.lines == [TOO_BIG]
    assert_only_message_is(sppd, b"after-552")


def test_size_parameter_over_databytes_refused_at_mail(make_sppd):
    sppd = make_sppd(control={"databytes": "1000"})
    with sppd.connect() as c:
        c.expect("EHLO client.test", "250-mx.sppd.test", "250-PIPELINING", "250-8BITMIME",
                 "250-SIZE 1000", "250 ENHANCEDSTATUSCODES")
        c.expect("MAIL FROM:<alice@client.test> SIZE=1001", TOO_BIG)
        c.expect("RCPT TO:<bob@example.com>", "503 5.5.1 MAIL first")
        c.expect("MAIL FROM:<alice@client.test> SIZE=1000", "250 2.1.0 ok")
        c.expect("MAIL FROM:<alice@client.test> size=999999999999", TOO_BIG)


def test_databytes_from_tcprules_environment(make_sppd):
    sppd = make_sppd(control={"databytes": "100000"}, tcprules='127.0.0.1:allow,DATABYTES="500"\n')
    with sppd.connect() as c:
        c.expect("EHLO client.test", "250-mx.sppd.test", "250-PIPELINING", "250-8BITMIME",
                 "250-SIZE 500", "250 ENHANCEDSTATUSCODES")
        reply = c.transaction("alice@client.test", ["bob@example.com"], body_of_size(501))
        assert reply.lines == [TOO_BIG]
        reply = c.transaction("alice@client.test", ["bob@example.com"], body_of_size(500))
        assert QUEUED_RE.match(reply.line), reply.line


def hops_message(received, delivered):
    lines = [b"Received: from hop%d by relay" % i for i in range(received)]
    lines += [b"Delivered-To: box%d@example.com" % i for i in range(delivered)]
    return b"\r\n".join(lines) + b"\r\nSubject: hops\r\n\r\nbody\r\n"


def test_hop_count(sppd):
    with sppd.connect() as c:
        reply = c.transaction("alice@client.test", ["bob@example.com"], hops_message(60, 40))
        assert reply.lines == [LOOPING]
        reply = c.transaction("alice@client.test", ["bob@example.com"], hops_message(100, 0))
        assert reply.lines == [LOOPING]
        # 99 hops pass; Received lines in the body (after the blank line) do not count.
        message = hops_message(59, 40) + b"Received: in the body\r\n" * 5
        reply = c.transaction("alice@client.test", ["bob@example.com"], message)
        assert QUEUED_RE.match(reply.line), reply.line
    (msg,) = sppd.wait_messages(1)
    assert msg.body == message.replace(b"\r\n", b"\n")


def test_hop_count_is_case_insensitive_and_counts_prefixes(sppd):
    # qmail counts any header line starting "received"/"delivered", e.g. Received-SPF.
    lines = [b"RECEIVED: x"] * 50 + [b"received-spf: pass"] * 25 + [b"DELIVERED-to: y"] * 25
    with sppd.connect() as c:
        reply = c.transaction("alice@client.test", ["bob@example.com"],
                              b"\r\n".join(lines) + b"\r\n\r\nbody\r\n")
        assert reply.lines == [LOOPING]


def test_maxhops_setting(make_sppd):
    sppd = make_sppd(listener={"maxhops": "3"})
    with sppd.connect() as c:
        reply = c.transaction("alice@client.test", ["bob@example.com"], hops_message(3, 0))
        assert reply.lines == [LOOPING]
        reply = c.transaction("alice@client.test", ["bob@example.com"], hops_message(1, 1))
        assert QUEUED_RE.match(reply.line), reply.line


def test_bare_lf_in_data_closes_and_queues_nothing(sppd):
    with sppd.connect() as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: smuggling\r\n\r\nline one\nMAIL FROM:<evil@x>\r\n.\r\n")
        assert c.expect_closed() == (BARE_LF + "\r\n").encode()
    assert_only_message_is(sppd, b"after-bare-lf")


def test_bare_lf_dot_lf_is_not_an_end_of_data(sppd):
    # SMTP smuggling: "\n.\n" must never end the message.
    with sppd.connect() as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: smuggling\r\n\r\nhello\r\n.\nMAIL FROM:<evil@x>\r\n")
        assert c.expect_closed() == (BARE_LF + "\r\n").encode()
    assert_only_message_is(sppd, b"after-dot-lf")


def test_client_disconnect_mid_data_queues_nothing(sppd):
    with sppd.connect() as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: cut short\r\n\r\n" + b"partial line\r\n" * 5000 + b"no end")
    # The worker must abort the queue transaction; a later session works normally.
    assert_only_message_is(sppd, b"after-disconnect")


def fifty_megabytes():
    """(wire bytes, sha256 of the decoded bytes, decoded length) for a ~50 MB message."""
    block_lines = []
    for i in range(1000):
        text = b"%06d the quick brown fox jumps over the lazy dog 0123456789 abcdefghij" % i
        if i % 7 == 0:
            text = b"." + text  # leading dots get stuffed on the wire
        block_lines.append(text)
    decoded_block = b"\n".join(block_lines) + b"\n"
    wire_block = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in block_lines) + b"\r\n"
    repeat = 50 * 1024 * 1024 // len(decoded_block) + 1
    header_wire = b"Subject: fifty megabytes\r\n\r\n"
    header_decoded = b"Subject: fifty megabytes\n\n"
    digest = hashlib.sha256(header_decoded)
    for _ in range(repeat):
        digest.update(decoded_block)
    return (header_wire + wire_block * repeat, digest.hexdigest(),
            len(header_decoded) + len(decoded_block) * repeat)


class PeakRss:
    """Samples VmHWM of the master and all its descendants while a transfer runs."""

    def __init__(self, master_pid):
        self.master_pid = master_pid
        self.peaks = {}  # pid -> (program, kB)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def sample(self):
        for pid in [self.master_pid, *descendants_of(self.master_pid)]:
            kib = vm_hwm_kib(pid)
            name = proc_name(pid)
            if kib and name and kib > self.peaks.get(pid, ("", 0))[1]:
                self.peaks[pid] = (name, kib)

    def run(self):
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.sample()


def test_fifty_megabyte_message_streams(make_sppd):
    sppd = make_sppd(control={"databytes": "100000000"})
    wire, sha, length = fifty_megabytes()
    with PeakRss(sppd.pid) as rss:
        with sppd.connect(timeout=120) as c:
            c.expect("EHLO client.test", "250-mx.sppd.test", "250-PIPELINING", "250-8BITMIME",
                     "250-SIZE 100000000", "250 ENHANCEDSTATUSCODES")
            started = time.monotonic()
            reply = c.transaction("alice@client.test", ["bob@example.com"], wire)
            elapsed = time.monotonic() - started
            assert QUEUED_RE.match(reply.line), reply.line
        (msg,) = sppd.wait_messages(1, timeout=60)
    assert len(msg.body) == length
    assert hashlib.sha256(msg.body).hexdigest() == sha
    print(f"50 MB message accepted in {elapsed:.2f}s; peak RSS per process (kB): "
          f"{sorted(rss.peaks.values())}")
    assert any(name == "sppd-smtpd" for name, _ in rss.peaks.values())
    if asan_build():
        print("AddressSanitizer build: RSS limit not checked (shadow memory and quarantine)")
        return
    over = {pid: v for pid, v in rss.peaks.items() if v[1] >= 32 * 1024}
    assert not over, f"processes with peak RSS >= 32 MB: {over}"
