# qmail-queue's exit codes and custom error texts as SMTP replies (qmail's texts, the
# "(#x.y.z)" moved to the front), QMAILQUEUE from tcprules, a hanging qmail-queue, and a
# queue-bridge that dies mid-transaction (4xx, never 2xx; restarted; the next message queues).
import os
import signal

import pytest

from conftest import QUEUED_RE, START_TIMEOUT, proc_name, wait_for

EXIT_CODES = [
    # (exit code of qmail-queue, exact reply after the final dot)
    ("11", "554 5.1.3 envelope address too long for qq"),
    ("115", "554 5.1.3 envelope address too long for qq"),
    ("31", "554 5.3.0 mail server permanently rejected message"),
    ("25", "554 5.3.0 qq permanent problem"),
    ("51", "451 4.3.0 qq out of memory"),
    ("52", "451 4.3.0 qq timeout"),
    ("53", "451 4.3.0 qq write error or disk full"),
    ("54", "451 4.3.0 qq read error"),
    ("55", "451 4.3.0 qq unable to read configuration"),
    ("56", "451 4.3.0 qq trouble making network connection"),
    ("61", "451 4.3.0 qq trouble in home directory"),
    ("63", "451 4.3.0 qq trouble creating files in queue"),
    ("71", "451 4.3.0 mail server temporarily rejected message"),
    ("72", "451 4.4.1 connection to mail server timed out"),
    ("73", "451 4.4.1 connection to mail server rejected"),
    ("74", "451 4.4.2 communication with mail server failed"),
    ("81", "451 4.3.0 qq internal bug"),
    ("91", "451 4.3.0 qq internal bug"),
    ("120", "451 4.3.0 unable to exec qq"),
    ("3", "451 4.3.0 qq temporary problem"),
    ("kill", "451 4.3.0 qq crashed"),
]

CUSTOM_ERRORS = [
    # (exit code, text written to fd 6, exact reply)
    ("82", "Dcustom text", "554 5.3.0 custom text"),
    ("82", "Zcustom temporary text", "451 4.3.0 custom temporary text"),
    ("82", "Dspam rejected (#5.7.1)", "554 5.7.1 spam rejected"),
    ("88", "Dvia exit 88", "554 5.3.0 via exit 88"),
]


@pytest.fixture(scope="module")
def scripted(module_factory):
    """One instance for the table tests: qmail-queue is the header-steered fake script."""
    return module_factory(queue="scripted")


def send_steered(sppd, headers):
    with sppd.connect() as c:
        assert c.cmd("EHLO client.test").code == 250
        reply = c.transaction("alice@client.test", ["bob@example.com"],
                              headers + b"Subject: steered\r\n\r\nbody\r\n")
        c.expect("NOOP", "250 2.0.0 ok")  # the session survives a failed transaction
        return reply


@pytest.mark.parametrize("code,expected", EXIT_CODES, ids=[c for c, _ in EXIT_CODES])
def test_exit_code_reply(scripted, code, expected):
    reply = send_steered(scripted, b"X-Exit: " + code.encode() + b"\r\n")
    assert reply.lines == [expected]


@pytest.mark.parametrize("code,text,expected", CUSTOM_ERRORS,
                         ids=[f"{c}-{t[0]}-{i}" for i, (c, t, _) in enumerate(CUSTOM_ERRORS)])
def test_custom_error_text_on_fd6(scripted, code, text, expected):
    reply = send_steered(scripted, f"X-Exit: {code}\r\nX-Error: {text}\r\n".encode())
    assert reply.lines == [expected]


def test_scripted_queue_without_exit_header_delivers(scripted):
    before = len(scripted.new_files())
    reply = send_steered(scripted, b"")
    assert QUEUED_RE.match(reply.line), reply.line
    wait_for(lambda: len(scripted.new_files()) == before + 1, 15, "the message in Maildir/new")


def test_error_fd_setting(make_sppd):
    sppd = make_sppd(queue="scripted", queue_bridge={"error_fd": "4"})
    reply = send_steered(sppd, b"X-Exit: 82\r\nX-Error-Fd: 4\r\nX-Error: Dfrom fd four\r\n")
    assert reply.lines == ["554 5.3.0 from fd four"]


def test_qmailqueue_from_tcprules_wins(make_sppd):
    # The configured queue is the Maildir one; the tcprules QMAILQUEUE points at the fake.
    sppd = make_sppd(start=False)
    sppd.tcprules = f'127.0.0.1:allow,QMAILQUEUE="{sppd.dir}/queue/scripted"\n'
    sppd.start()
    reply = send_steered(sppd, b"X-Exit: 71\r\n")
    assert reply.lines == ["451 4.3.0 mail server temporarily rejected message"]
    assert sppd.new_files() == []


def test_hanging_qmail_queue_times_out(make_sppd):
    sppd = make_sppd(queue="hang", queue_bridge={"queue_timeout": "2"})
    with sppd.connect(timeout=30) as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: hang\r\n\r\nbody\r\n.\r\n")
        assert c.read_reply().lines == ["451 4.3.0 qq timeout"]
        c.expect("NOOP", "250 2.0.0 ok")
    # The bridge killed the hanging program.
    wait_for(lambda: not [p for p in sppd.descendants() if proc_name(p) == "sleep"],
             10, "the hanging qmail-queue to be killed")


def test_queue_bridge_killed_mid_transaction(make_sppd):
    sppd = make_sppd(queue="scripted")
    (bridge,) = sppd.wait_pids("sppd-queue-bridge", 1)
    with sppd.connect(timeout=30) as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        # The fake queue reads the whole message, marks itself started, then sleeps 8 s.
        c.send(b"X-Sleep: 8\r\nX-Exit: 71\r\nSubject: victim\r\n\r\nbody\r\n.\r\n")
        wait_for(lambda: list(sppd.out_dir.glob("started.*")), 15, "qmail-queue to start")
        os.kill(bridge, signal.SIGKILL)
        reply = c.read_reply()
        assert reply.lines == ["451 4.3.0 qq temporary problem"]
        c.expect("NOOP", "250 2.0.0 ok")
    sppd.wait_pids("sppd-queue-bridge", 1, exclude={bridge}, timeout=START_TIMEOUT)

    # The next message queues (a worker may answer 4xx while its new channel is on the way).
    def next_message_queues():
        reply = sppd.deliver(b"Subject: after restart\r\n\r\nbody\r\n")
        assert reply.code in (250, 451), reply.line
        return reply.code == 250
    wait_for(next_message_queues, 15, "a message to queue through the new queue-bridge", 0.2)
    (msg,) = sppd.wait_messages(1)
    assert msg.body == b"Subject: after restart\n\nbody\n"
