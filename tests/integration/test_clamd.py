# Virus scanning with a real clamd (issue 6 item 7; spec qmail-protocols.md §6.4): control/clamd
# names clamd as ip:port or a Unix socket path; queue-bridge connects to it and hands the socket
# to the worker, which streams the message to clamd (INSTREAM) while it streams to qmail-queue.
# Clean mail is delivered byte-exact, a virus gets qmail-md's 554 after a tarpit and nothing is
# queued, and a clamd that cannot scan (down, stopped, over its StreamMaxLength) means the
# listener's clamd_unavailable: tempfail (the default: 451, nothing queued) or accept (queued
# unscanned). Each test asserts the replies, the Maildir and the log lines.
import base64
import os
import re
import signal
import time

import pytest

import clamd_server
from clamd_server import EICAR, VIRUS_NAME
from conftest import QUEUED_RE, free_port, wait_for

VIRUS_REPLY = f'554 5.7.7 your email contains the virus "{VIRUS_NAME}"!'
UNAVAILABLE_REPLY = "451 4.3.0 virus scanner unavailable, try again later"
CLEAN = "Subject: clean\r\nFrom: alice@client.test\r\n\r\nNothing to see here.\r\n"
INFECTED = "Subject: eicar\r\n\r\n" + EICAR.decode() + "\r\n"


@pytest.fixture(scope="module")
def clamd():
    """One clamd for the module, on TCP and a Unix socket."""
    if not clamd_server.installed():
        pytest.fail("clamd not installed: Debian package clamav-daemon (scripts/install-deps.sh)",
                    pytrace=False)
    server = clamd_server.Clamd().start()
    yield server
    server.cleanup()


def session(sppd):
    c = sppd.connect()
    assert c.greeting.code == 220
    c.expect("HELO client.test", "250 mx.sppd.test")
    return c


def wait_log(sppd, pattern, timeout=10):
    """Waits for a log line matching the regex; returns its match."""
    regex = re.compile(pattern, re.M)
    return wait_for(lambda: regex.search(sppd.log()), timeout, f"log line matching {pattern!r}")


def lf(text):
    """What the client's CRLF text becomes in the queue: LF line ends."""
    return text.replace("\r\n", "\n").encode()


def assert_nothing_queued(sppd):
    assert sppd.new_files() == []
    assert sppd.tmp_files() == []


def wait_scans(clamd, count):
    wait_for(lambda: clamd.scans() >= count, 10, f"{count} scan(s) in clamd's log")
    return clamd.scans()


# ---- clean mail and viruses

@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_clean_message_is_scanned_and_delivered_byte_exact(make_sppd, clamd, transport):
    address = clamd.tcp_address if transport == "tcp" else clamd.socket_path
    sppd = make_sppd(control={"clamd": address})
    scans = clamd.scans()
    reply = sppd.deliver(CLEAN, helo="HELO client.test")
    assert QUEUED_RE.match(reply.line), reply.line
    (msg,) = sppd.wait_messages(1)
    assert msg.body == lf(CLEAN)
    assert msg.recipients == ["bob@example.com"]
    # clamd really saw it (LogClean): the message did not go through unscanned.
    wait_scans(clamd, scans + 1)
    assert "CLAMD" not in sppd.log()


def test_virus_is_refused_after_the_tarpit_and_nothing_is_queued(make_sppd, clamd):
    sppd = make_sppd(control={"clamd": clamd.tcp_address, "tarpitdelay": "1",
                              "log/smtp_out": "1"})
    with session(sppd) as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(INFECTED + ".\r\n")
        started = time.monotonic()
        reply = c.read_reply()
        took = time.monotonic() - started
        assert reply.lines == [VIRUS_REPLY]
        assert took >= 0.9, f"the 554 came after {took:.2f}s, without the 1 s tarpit"
        # The session goes on: the next transaction is scanned and delivered.
        assert c.transaction("alice@client.test", ["carol@example.com"], CLEAN).code == 250
        c.expect("QUIT", "221 2.0.0 mx.sppd.test")
    (msg,) = sppd.wait_messages(1)
    assert msg.recipients == ["carol@example.com"]
    assert msg.body == lf(CLEAN)
    # The seed's lines, in its order: CLAMD:, TARPIT:, then the reply.
    clamd_line = wait_log(sppd, rf'session (\d+): CLAMD: virus "{re.escape(VIRUS_NAME)}" '
                                r"was found!$")
    session_id = clamd_line.group(1)
    log = sppd.log()
    tarpit = (f"session {session_id}: TARPIT: <alice@client.test> to <bob@example.com> | "
              f'helo(client.test) | virus "{VIRUS_NAME}"')
    said = f"session {session_id}: S: {VIRUS_REPLY}"
    assert tarpit in log and said in log
    assert log.index(clamd_line.group(0)) < log.index(tarpit) < log.index(said)
    # Only the clean message reached the Maildir; the infected one was never queued.
    assert sppd.tmp_files() == []


def test_virus_in_a_base64_attachment_over_the_unix_socket(make_sppd, clamd):
    # clamd decodes MIME: the signature matches the attachment, not the raw message.
    encoded = base64.encodebytes(EICAR).decode().replace("\n", "\r\n")
    assert EICAR.decode() not in encoded
    message = ("Subject: attachment\r\nMIME-Version: 1.0\r\n"
               'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
               "--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
               "--b\r\nContent-Type: application/octet-stream\r\n"
               "Content-Transfer-Encoding: base64\r\n"
               'Content-Disposition: attachment; filename="eicar.com"\r\n\r\n'
               f"{encoded}--b--\r\n")
    sppd = make_sppd(control={"clamd": clamd.socket_path, "tarpitdelay": "0"})
    with session(sppd) as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(message + ".\r\n")
        assert c.read_reply().lines == [VIRUS_REPLY]
    wait_log(sppd, rf'CLAMD: virus "{re.escape(VIRUS_NAME)}" was found!$')
    assert_nothing_queued(sppd)


def test_large_clean_message_streams_in_many_chunks(make_sppd, clamd):
    # 6 MB: about a hundred INSTREAM chunks of 64 KiB, more than any socket buffer holds, so
    # backpressure from clamd and from qmail-queue both come into play.
    line = "".join(chr(33 + i % 90) for i in range(76)) + "\r\n"
    body = "Subject: large\r\n\r\n" + line * (6 * 1024 * 1024 // len(line))
    sppd = make_sppd(control={"clamd": clamd.socket_path, "databytes": str(16 * 1024 * 1024)})
    scans = clamd.scans()
    with session(sppd) as c:
        reply = c.transaction("alice@client.test", ["bob@example.com"], body)
        assert QUEUED_RE.match(reply.line), reply.line
    (msg,) = sppd.wait_messages(1, timeout=60)
    assert msg.body == lf(body)
    wait_scans(clamd, scans + 1)


# ---- clamd that cannot scan

def test_clamd_down_tempfails_by_default_and_queues_nothing(make_sppd):
    nowhere_tcp = f"127.0.0.1:{free_port()}"  # nothing listens there
    # A socket path in a directory queue-bridge (sppd-queue) may look into, with no socket.
    never_started = clamd_server.Clamd()
    nowhere_unix = never_started.socket_path
    try:
        for address, error in ((nowhere_tcp, "Connection refused"),
                               (nowhere_unix, "No such file or directory")):
            sppd = make_sppd(control={"clamd": address})
            with session(sppd) as c:
                c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
                c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
                # Refused at DATA: the client does not send the message in vain.
                c.expect("DATA", UNAVAILABLE_REPLY)
                # The transaction is over; the session is not.
                c.expect("DATA", "503 5.5.1 MAIL first")
                c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
                c.expect("QUIT", "221 2.0.0 mx.sppd.test")
            wait_log(sppd, rf"CLAMD: clamd {re.escape(address)}: {error}: transaction refused "
                           r"\(clamd_unavailable = tempfail\)$")
            assert_nothing_queued(sppd)
            sppd.stop()
    finally:
        never_started.cleanup()


def test_clamd_down_in_accept_mode_delivers_unscanned_and_logs_it(make_sppd):
    address = f"127.0.0.1:{free_port()}"
    sppd = make_sppd(control={"clamd": address}, listener={"clamd_unavailable": "accept"})
    reply = sppd.deliver(CLEAN, helo="HELO client.test")
    assert QUEUED_RE.match(reply.line), reply.line
    (msg,) = sppd.wait_messages(1)
    assert msg.body == lf(CLEAN)
    wait_log(sppd, rf"CLAMD: clamd {re.escape(address)}: Connection refused: the message goes "
                   r"unscanned \(clamd_unavailable = accept\)$")


def test_clamd_going_away_and_coming_back(make_sppd):
    server = clamd_server.Clamd().start()
    try:
        sppd = make_sppd(control={"clamd": server.tcp_address})
        assert QUEUED_RE.match(sppd.deliver(CLEAN).line)
        server.stop()
        with session(sppd) as c:
            c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
            c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
            c.expect("DATA", UNAVAILABLE_REPLY)
        # Every transaction connects afresh: clamd back on its port is used with no reload.
        server.start(keep_port=True)
        scans = server.scans()
        assert QUEUED_RE.match(sppd.deliver(CLEAN).line)
        wait_scans(server, scans + 1)
    finally:
        server.cleanup()
    assert len(sppd.wait_messages(2)) == 2


def test_stalled_clamd_times_out_into_tempfail(make_sppd):
    # A clamd that stops answering (SIGSTOP: connections are still accepted by the kernel).
    server = clamd_server.Clamd().start()
    sppd = make_sppd(control={"clamd": server.tcp_address},
                     listener={"clamd_timeout": "2"})
    try:
        os.kill(server.process.pid, signal.SIGSTOP)
        with session(sppd) as c:
            c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
            c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
            c.expect("DATA", "354 go ahead")
            c.send(CLEAN + ".\r\n")
            started = time.monotonic()
            reply = c.read_reply()
            took = time.monotonic() - started
            assert reply.lines == [UNAVAILABLE_REPLY]
            assert 1.5 <= took < 10, f"answered after {took:.2f}s, clamd_timeout is 2 s"
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        server.cleanup()
    wait_log(sppd, r"CLAMD: clamd did not answer within 2 s: message refused "
                   r"\(clamd_unavailable = tempfail\)$")
    assert_nothing_queued(sppd)


@pytest.mark.parametrize("mode", ["tempfail", "accept"])
def test_message_over_clamds_stream_limit(make_sppd, mode):
    # clamd refuses an INSTREAM over its StreamMaxLength ("INSTREAM size limit exceeded")
    # and closes: the message could not be scanned, so clamd_unavailable decides.
    server = clamd_server.Clamd(stream_max_length="1M").start()
    body = "Subject: over the limit\r\n\r\n" + ("z" * 998 + "\r\n") * 2048  # 2 MB
    try:
        sppd = make_sppd(control={"clamd": server.tcp_address},
                         listener={"clamd_unavailable": mode})
        with session(sppd) as c:
            c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
            c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
            c.expect("DATA", "354 go ahead")
            c.send(body + ".\r\n")
            reply = c.read_reply()
            # The session reads on to the dot and stays usable.
            c.expect("NOOP", "250 2.0.0 ok")
    finally:
        server.cleanup()
    # clamd's words, or (when its close lost them) the hint at StreamMaxLength.
    why = (r"(clamd: INSTREAM size limit exceeded\.|clamd closed the connection during the "
           r"message \(.*; is the message over clamd's StreamMaxLength\?\))")
    if mode == "tempfail":
        assert reply.lines == [UNAVAILABLE_REPLY]
        wait_log(sppd, rf"CLAMD: {why}: message refused \(clamd_unavailable = tempfail\)$")
        assert_nothing_queued(sppd)
    else:
        assert QUEUED_RE.match(reply.line), reply.line
        (msg,) = sppd.wait_messages(1)
        assert msg.body == lf(body)
        wait_log(sppd, rf"CLAMD: {why}: the message goes unscanned \(clamd_unavailable = accept\)$")


def test_a_new_control_clamd_applies_after_sighup(make_sppd, clamd):
    # queue-bridge reads the listeners' control/clamd too (the only addresses it connects
    # to for a worker), so both sides move to the new clamd with the reload.
    sppd = make_sppd(control={"clamd": clamd.tcp_address})
    assert QUEUED_RE.match(sppd.deliver(CLEAN).line)
    sppd.write_control("clamd", clamd.socket_path)
    sppd.write_control("smtpgreeting", "reloaded.sppd.test")
    sppd.reload()
    wait_log(sppd, rf"sppd-queue-bridge\[\d+\]: configuration reloaded from .*, clamd "
                   rf"{re.escape(clamd.socket_path)}$", timeout=30)

    def new_workers():
        with sppd.connect() as c:
            return c.greeting.lines == ["220 reloaded.sppd.test ESMTP"]
    wait_for(new_workers, 30, "sessions on the reloaded workers", 0.1)
    scans = clamd.log().count("instream(local): OK")  # scans over the Unix socket
    assert QUEUED_RE.match(sppd.deliver(CLEAN).line)
    wait_for(lambda: clamd.log().count("instream(local): OK") > scans, 10,
             "a scan over clamd's Unix socket")
    assert "CLAMD" not in sppd.log()
    assert len(sppd.wait_messages(2)) == 2
