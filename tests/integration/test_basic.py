# The SMTP dialogue: greeting, HELO/EHLO, pipelining, the transaction and what lands in the
# queue byte for byte, every simple command's reply, and the command-line limits.
# Replies are the exact texts of the briefing (qmail's wording, enhanced codes in front).
import re
import subprocess
import time

from conftest import QUEUED_RE, expect_received

EHLO_LINES = ["250-mx.sppd.test", "250-PIPELINING", "250-8BITMIME", "250-SIZE 10485760",
              "250 ENHANCEDSTATUSCODES"]


def test_greeting_uses_first_line_of_smtpgreeting(sppd):
    with sppd.connect() as c:
        assert c.greeting.lines == ["220 mx.sppd.test ESMTP"]
        c.expect("HELO client.test", "250 mx.sppd.test")
        c.expect("QUIT", "221 2.0.0 mx.sppd.test")
        assert c.expect_closed() == b""


def test_greeting_falls_back_to_me(make_sppd):
    sppd = make_sppd(control={"smtpgreeting": None})
    with sppd.connect() as c:
        assert c.greeting.lines == ["220 sppd.test ESMTP"]
        c.expect("HELO client.test", "250 sppd.test")


def test_multiline_smtpgreeting(make_sppd):
    sppd = make_sppd(control={"smtpgreeting": "mx.sppd.test welcomes you\n# a comment\n"
                                              "please behave\n"})
    with sppd.connect() as c:
        assert c.greeting.lines == ["220-mx.sppd.test welcomes you", "220 please behave ESMTP"]
        c.expect("HELO client.test", "250 mx.sppd.test welcomes you")


def test_ehlo_keywords_exact(sppd):
    with sppd.connect() as c:
        c.expect("EHLO client.test", *EHLO_LINES)
        # EHLO again is fine and gives the same list.
        c.expect("ehlo other.test", *EHLO_LINES)


def test_ehlo_size_bare_when_unlimited(make_sppd):
    sppd = make_sppd(control={"databytes": "0"})
    with sppd.connect() as c:
        c.expect("EHLO client.test", "250-mx.sppd.test", "250-PIPELINING", "250-8BITMIME",
                 "250-SIZE", "250 ENHANCEDSTATUSCODES")


def test_databytes_is_limited_by_default(make_sppd):
    # DECISIONS.md: limits are on by default; without control/databytes sppd caps at 20 MB.
    sppd = make_sppd(control={"databytes": None})
    with sppd.connect() as c:
        c.expect("EHLO client.test", "250-mx.sppd.test", "250-PIPELINING", "250-8BITMIME",
                 "250-SIZE 20000000", "250 ENHANCEDSTATUSCODES")


def test_listener_databytes_overrides_control_file(make_sppd):
    sppd = make_sppd(listener={"databytes": "2000"})
    with sppd.connect() as c:
        c.expect("EHLO client.test", "250-mx.sppd.test", "250-PIPELINING", "250-8BITMIME",
                 "250-SIZE 2000", "250 ENHANCEDSTATUSCODES")


def test_helo_and_ehlo_need_an_argument(sppd):
    with sppd.connect() as c:
        c.expect("HELO", "501 5.5.4 syntax error, I need your hostname")
        c.expect("EHLO", "501 5.5.4 syntax error, I need your hostname")
        c.expect("HELO ", "501 5.5.4 syntax error, I need your hostname")
        c.expect("HELO client.test", "250 mx.sppd.test")


def test_simple_commands(sppd):
    with sppd.connect() as c:
        c.expect("NOOP", "250 2.0.0 ok")
        c.expect("NOOP with arguments", "250 2.0.0 ok")
        c.expect("RSET", "250 2.0.0 flushed")
        c.expect("VRFY bob", "252 2.0.0 send some mail, i'll try my best")
        c.expect("HELP", "214 2.0.0 sppd: qmail-compatible SMTP service")
        c.expect("EXPN list", "502 5.5.1 unimplemented")
        c.expect("FROBNICATE", "502 5.5.1 unimplemented")
        c.expect("", "502 5.5.1 unimplemented")
        c.expect("noop", "250 2.0.0 ok")  # verbs are case-insensitive
        c.expect("QUIT", "221 2.0.0 mx.sppd.test")
        assert c.expect_closed() == b""


def test_command_order(sppd):
    with sppd.connect() as c:
        c.expect("RCPT TO:<bob@example.com>", "503 5.5.1 MAIL first")
        c.expect("DATA", "503 5.5.1 MAIL first")
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("RSET", "250 2.0.0 flushed")
        c.expect("RCPT TO:<bob@example.com>", "503 5.5.1 MAIL first")
        # No HELO is needed before MAIL (qmail), and a second MAIL restarts the transaction.
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("MAIL FROM:<carol@client.test>", "250 2.1.0 ok")


def test_pipelined_transaction_replies_batched_in_order(sppd):
    with sppd.connect() as c:
        c.expect("EHLO client.test", *EHLO_LINES)
        c.send(b"MAIL FROM:<alice@client.test>\r\n"
               b"RCPT TO:<bob@example.com>\r\n"
               b"RCPT TO:<carol@sub.example.net>\r\n"
               b"DATA\r\n")
        # The three envelope replies come back together (one write), before 354.
        first = c.recv_chunk()
        assert first.startswith(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n"), first
        c.buffer = first[len(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n"):]
        assert c.read_reply().lines == ["354 go ahead"]
        c.send(b"Subject: pipelined\r\n\r\nhello\r\n.\r\nQUIT\r\n")
        assert QUEUED_RE.match(c.read_reply().line)
        assert c.read_reply().lines == ["221 2.0.0 mx.sppd.test"]
    (msg,) = sppd.wait_messages(1)
    assert msg.return_path == "alice@client.test"
    assert msg.recipients == ["bob@example.com", "carol@sub.example.net"]
    assert msg.body == b"Subject: pipelined\n\nhello\n"


def test_multi_recipient_message_is_byte_exact(sppd):
    wire = (b"From: Alice <alice@client.test>\r\n"
            b"Subject: bytes\r\n"
            b"\r\n"
            b"..a line that started with one dot\r\n"
            b"...two dots\r\n"
            b". dot space\r\n"
            b"NUL\x00bytes\x00survive\r\n"
            b"a bare CR\rin the middle stays\r\n"
            b"8bit \xc3\xa9\xff\r\n"
            b"\r\n"
            b"trailing blank line above\r\n")
    expected = (b"From: Alice <alice@client.test>\n"
                b"Subject: bytes\n"
                b"\n"
                b".a line that started with one dot\n"
                b"..two dots\n"
                b" dot space\n"
                b"NUL\x00bytes\x00survive\n"
                b"a bare CR\rin the middle stays\n"
                b"8bit \xc3\xa9\xff\n"
                b"\n"
                b"trailing blank line above\n")
    with sppd.connect() as c:
        c.expect("EHLO client.test", *EHLO_LINES)
        reply = c.transaction("alice@client.test",
                              ["bob@example.com", "Carol@Example.COM", "dave@x.example.net"], wire)
        m = QUEUED_RE.match(reply.line)
        assert m, reply.line
        c.expect("QUIT", "221 2.0.0 mx.sppd.test")
    (msg,) = sppd.wait_messages(1)
    assert msg.return_path == "alice@client.test"
    assert msg.recipients == ["bob@example.com", "Carol@Example.COM", "dave@x.example.net"]
    expect_received(msg, helo="client.test", proto="ESMTP")
    assert msg.body == expected


def test_dot_cr_lf_handling(sppd):
    # qmail's blast(): "CR CR LF" becomes "CR LF"; the line ". x" loses its dot.
    with sppd.connect() as c:
        reply = c.transaction("alice@client.test", ["bob@example.com"],
                              b"Subject: cr\r\n\r\nx\r\r\ny\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
    (msg,) = sppd.wait_messages(1)
    assert msg.body == b"Subject: cr\n\nx\r\ny\n"


def test_received_line_after_helo_and_without_helo(sppd):
    with sppd.connect() as c:
        c.expect("HELO Client.Test", "250 mx.sppd.test")
        assert QUEUED_RE.match(c.transaction("a@client.test", ["b@example.com"], b"x\r\n").line)
    with sppd.connect() as c:
        assert QUEUED_RE.match(c.transaction("a@client.test", ["b@example.com"], b"y\r\n").line)
    first, second = sppd.wait_messages(2)
    if first.body != b"x\n":
        first, second = second, first
    expect_received(first, helo="Client.Test", proto="SMTP")
    expect_received(second, helo=None, proto="SMTP")


def test_received_line_helo_equal_to_host_and_unsafe_bytes(sppd):
    with sppd.connect() as c:
        c.expect("EHLO UNKNOWN", *EHLO_LINES)  # same as the remote host "unknown": no (HELO)
        assert QUEUED_RE.match(c.transaction("a@client.test", ["b@example.com"], b"x\r\n").line)
    with sppd.connect() as c:
        c.expect("HELO bad host<name>", "250 mx.sppd.test")
        assert QUEUED_RE.match(c.transaction("a@client.test", ["b@example.com"], b"y\r\n").line)
    first, second = sppd.wait_messages(2)
    if first.body != b"x\n":
        first, second = second, first
    expect_received(first, helo=None, proto="ESMTP")
    expect_received(second, helo="bad?host?name?", proto="SMTP")


def test_local_host_setting_names_the_receiving_host(make_sppd):
    sppd = make_sppd(listener={"local_host": "mx.example.com"})
    reply = sppd.deliver(b"Subject: local\r\n\r\nbody\r\n")
    assert QUEUED_RE.match(reply.line)
    (msg,) = sppd.wait_messages(1)
    expect_received(msg, local="mx.example.com")


def test_null_sender(sppd):
    with sppd.connect() as c:
        c.expect("EHLO client.test", *EHLO_LINES)
        c.expect("MAIL FROM:<>", "250 2.1.0 ok")
        c.expect("RCPT TO:<postmaster@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: bounce\r\n\r\nbounced\r\n.\r\n")
        assert QUEUED_RE.match(c.read_reply().line)
    (msg,) = sppd.wait_messages(1)
    assert msg.return_path == ""
    assert msg.recipients == ["postmaster@example.com"]


def test_queued_reply_names_time_and_queue_pid(sppd):
    before = int(time.time())
    reply = sppd.deliver(b"Subject: qp\r\n\r\nbody\r\n")
    m = QUEUED_RE.match(reply.line)
    assert m, reply.line
    assert before - 1 <= int(m.group("time")) <= int(time.time()) + 1
    assert int(m.group("pid")) > 1


def test_address_length_limit(sppd):
    domain = "@example.com"
    longest = "a" * (899 - len(domain)) + domain  # 899 bytes + NUL = 900 = maxaddrlen
    too_long = "a" * (900 - len(domain)) + domain
    with sppd.connect() as c:
        c.expect(f"MAIL FROM:<{too_long}>", "555 5.5.4 syntax error")
        c.expect(f"MAIL FROM:<{longest}>", "250 2.1.0 ok")
        c.expect(f"RCPT TO:<{too_long}>", "555 5.5.4 syntax error")
        c.expect(f"RCPT TO:<{longest}>", "250 2.1.5 ok")


def test_command_line_length_limit(sppd):
    with sppd.connect() as c:
        c.expect("NOOP " + "x" * 995, "250 2.0.0 ok")                 # exactly 1000 bytes
        c.expect("NOOP " + "x" * 996, "500 5.5.2 line too long")      # 1001 bytes
        c.expect("NOOP", "250 2.0.0 ok")                              # the session goes on
        c.expect("MAIL FROM:<" + "y" * 200000 + ">", "500 5.5.2 line too long")
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")


def test_nul_byte_in_command(sppd):
    with sppd.connect() as c:
        c.expect(b"NOOP a\x00b", "500 5.5.2 syntax error, NUL byte in command")
        c.expect(b"MAIL FROM:<alice@client.test>\x00", "500 5.5.2 syntax error, NUL byte in command")
        c.expect("NOOP", "250 2.0.0 ok")


def test_read_timeout(make_sppd):
    sppd = make_sppd(listener={"timeoutsmtpd": "1"})
    with sppd.connect() as c:
        c.expect("EHLO client.test", *EHLO_LINES)
        rest = c.expect_closed(timeout=10)
        assert rest == b"451 4.4.2 timeout\r\n"


def test_python_smtplib_delivery(sppd):
    import smtplib
    with smtplib.SMTP(sppd.host, sppd.port, local_hostname="client.test", timeout=15) as client:
        refused = client.sendmail("alice@client.test", ["bob@example.com", "carol@example.com"],
                                  b"Subject: smtplib\r\n\r\nsent by smtplib\r\n")
        assert refused == {}
        code, text = client.noop()
        assert (code, text) == (250, b"2.0.0 ok")
    (msg,) = sppd.wait_messages(1)
    assert msg.recipients == ["bob@example.com", "carol@example.com"]
    assert msg.body == b"Subject: smtplib\n\nsent by smtplib\n"
    expect_received(msg, helo="client.test", proto="ESMTP")


def test_swaks_delivery(sppd):
    result = subprocess.run(
        ["swaks", "--server", sppd.host, "--port", str(sppd.port), "--helo", "swaks.test",
         "--from", "alice@client.test", "--to", "bob@example.com,carol@example.com",
         "--header", "Subject: from swaks", "--body", "hello from swaks\n.leading dot\n",
         "--timeout", "15"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"<- +250 2\.6\.0 ok [0-9]+ qp [0-9]+", result.stdout), result.stdout
    (msg,) = sppd.wait_messages(1)
    assert msg.return_path == "alice@client.test"
    assert msg.recipients == ["bob@example.com", "carol@example.com"]
    expect_received(msg, helo="swaks.test", proto="ESMTP")
    assert b"\nSubject: from swaks\n" in msg.body
    # swaks adds its own headers and blank lines at the end; the dot line must be unstuffed.
    assert b"\n\nhello from swaks\n.leading dot\n" in msg.body


def test_missing_me_and_smtpgreeting_gives_421(make_sppd):
    sppd = make_sppd(start=False, control={"me": None, "smtpgreeting": None})
    sppd.start(wait=False)
    with sppd.connect(greet=False, wait_listening=True) as c:
        assert c.read_reply().lines == ["421 4.3.0 unable to read controls"]
        assert c.expect_closed() == b""


def test_broken_tcprules_file_gives_421(make_sppd):
    sppd = make_sppd(start=False, tcprules="127.0.0.1:maybe\n")
    sppd.start(wait=False)
    with sppd.connect(greet=False, wait_listening=True) as c:
        assert c.read_reply().lines == ["421 4.3.0 unable to read controls"]
        assert c.expect_closed() == b""


def test_pipelined_354_is_not_held_back_by_nagle(sppd):
    # A pipelining client sends MAIL, RCPT and DATA in one write. The 250s go out at once;
    # 354 follows as a second small write, which Nagle's algorithm holds until the client's
    # delayed ACK (40 ms on Linux) unless the server sets TCP_NODELAY on the connection.
    import socket
    waits = []
    with sppd.connect() as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.cmd("EHLO client.test")
        for _ in range(7):
            started = time.perf_counter()
            c.send(b"MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
            assert [r.code for r in c.read_replies(3)] == [250, 250, 354]
            waits.append(time.perf_counter() - started)
            c.send(b"x\r\n.\r\n")
            assert QUEUED_RE.match(c.read_reply().line)
    median = sorted(waits)[len(waits) // 2]
    assert median < 0.025, f"354 took {median * 1000:.1f} ms (median of 7): TCP_NODELAY missing?"
