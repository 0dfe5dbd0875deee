# qmail-spp plugins that misbehave (spec/qmail-spp.md §3, DECISIONS.md): a hang (killed with
# its process group at plugin_timeout: "child crashed"), a SIGSEGV, exit 120 ("can't
# execute"), a missing program, output without a final newline, CRLF output, 1 MiB of output,
# a plugin reading stdin, one leaving a child that holds its stdout, stderr chatter. After
# each, the session carries on. One instance with plugin_timeout = 3 for the whole file.
import re
import time

import pytest

from conftest import (EHLO_LINES, QUEUED_RE, alive, expect_received,
                      start_plugin_instance, wait_for)

PLUGIN_TIMEOUT = 3


@pytest.fixture(scope="module")
def spp(module_factory):
    return start_plugin_instance(module_factory,
                                 pluginrunner={"plugin_timeout": str(PLUGIN_TIMEOUT)})


def failure(line, why):
    return f"451 4.3.0 qmail-spp failure: {line}: {why}"


def read_pid(spp, name):
    path = spp.out_dir / name
    wait_for(lambda: path.exists() and path.read_text().strip(), 10, str(path))
    return int(path.read_text())


def deliver_after(c, subject=b"after"):
    """The session still works: a whole transaction goes through."""
    reply = c.transaction("alice@client.test", ["bob@example.com"],
                          b"Subject: " + subject + b"\r\n\r\nx\r\n")
    assert QUEUED_RE.match(reply.line), reply.line


def test_hanging_plugin_is_killed_with_its_group_at_the_timeout(spp):
    spp.use_plugins("[mail]\nplugins/hang\n", {"hang": "hang.sh"})
    with spp.connect(timeout=PLUGIN_TIMEOUT + 20) as c:
        started = time.monotonic()
        c.expect("MAIL FROM:<alice@client.test>", failure("plugins/hang", "child crashed"))
        elapsed = time.monotonic() - started
        assert PLUGIN_TIMEOUT - 0.5 <= elapsed < PLUGIN_TIMEOUT + 5, \
            f"answered after {elapsed:.1f}s"
        # The plugin's own child (same process group) is gone too.
        sleeper = read_pid(spp, "hang.pid")
        wait_for(lambda: not alive(sleeper), 5, f"the hanging plugin's child {sleeper} to die")
        c.expect("NOOP", "250 2.0.0 ok")


def test_crashing_plugin(spp):
    # The header printed before the crash counts; the HELO is refused; mail still flows.
    spp.use_plugins("[helo]\nplugins/segv\n", {"segv": "segv.c"})
    with spp.connect() as c:
        c.expect("EHLO client.test", failure("plugins/segv", "child crashed"))
        deliver_after(c, b"after a crash")
    (msg,) = spp.wait_messages(1)
    expect_received(msg, helo=None, proto="SMTP")
    assert msg.body == b"X-Before-Crash: yes\nSubject: after a crash\n\nx\n"


def test_exit_120_means_cannot_execute_other_codes_are_ignored(spp):
    spp.use_plugins("[rcpt]\nplugins/exit120\n[mail]\nplugins/exit1\n",
                    {"exit120": "exit120.py", "exit1": "exit1.sh"})
    with spp.connect() as c:
        c.expect("MAIL FROM:<alice@client.test>", "550 5.1.8 sorry, printed before exit 1")
    spp.use_plugins("[rcpt]\nplugins/exit120\n", {"exit120": "exit120.py"})
    with spp.connect() as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", failure("plugins/exit120", "can't execute"))
        c.expect("NOOP", "250 2.0.0 ok")


def test_missing_programs(spp):
    # A missing direct plugin cannot be executed; behind ':' the shell says "not found"
    # (exit 127, ignored) and the next plugin runs.
    spp.use_plugins("[helo]\nplugins/does-not-exist\n[mail]\n:plugins/does-not-exist -x\n"
                    "plugins/after\n", {"after": ("say.c", "E550 5.7.1 the next plugin ran\n")})
    with spp.connect() as c:
        c.expect("EHLO client.test", failure("plugins/does-not-exist", "can't execute"))
        c.expect("MAIL FROM:<alice@client.test>", "550 5.7.1 the next plugin ran")


def test_output_without_final_newline_keeps_its_last_character(spp):
    # qmail-spp 0.42 would answer "554 5.7.1 no newline at the en" (DECISIONS.md: fixed).
    spp.use_plugins("[mail]\nplugins/noeol\n",
                    {"noeol": ("say.sh", b"E554 5.7.1 no newline at the end")})
    with spp.connect() as c:
        c.expect("MAIL FROM:<alice@client.test>", "554 5.7.1 no newline at the end")


def test_crlf_output_loses_its_carriage_returns(spp):
    spp.use_plugins("[helo]\nplugins/helo\n[mail]\nplugins/mail\n",
                    {"helo": ("say.c", b"E550 5.7.1 refused in CRLF\r\n"),
                     "mail": ("say.py", b"P250-crlf note\r\nHX-Crlf: yes\r\n")})
    with spp.connect() as c:
        c.send(b"EHLO client.test\r\n")
        raw = b""
        while not raw.endswith(b"\r\n"):
            raw += c.recv_chunk()
        assert raw == b"550 5.7.1 refused in CRLF\r\n"  # not ...\r\r\n
        c.expect("MAIL FROM:<alice@client.test>", "250-crlf note", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: crlf\r\n\r\nx\r\n.\r\n")
        assert QUEUED_RE.match(c.read_reply().line)
    (msg,) = spp.wait_messages(1)
    assert msg.body == b"X-Crlf: yes\nSubject: crlf\n\nx\n"


@pytest.mark.parametrize("line", ["plugins/bigout", ":plugins/bigout headers"])
def test_megabyte_of_output_is_capped(spp, line):
    # What lies past the per-plugin cap (64 KiB) does not count (the late E); the plugin is
    # not left blocked on a full pipe (the answer comes well before the timeout); the
    # session and the next message are fine.
    spp.use_plugins(f"[mail]\n{line}\n", {"bigout": "bigout.py"})
    log_before = len(spp.log())
    with spp.connect(timeout=PLUGIN_TIMEOUT + 20) as c:
        c.expect("EHLO client.test", *EHLO_LINES)
        started = time.monotonic()
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        elapsed = time.monotonic() - started
        assert elapsed < PLUGIN_TIMEOUT - 1, f"MAIL answered after {elapsed:.1f}s"
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: big\r\n\r\nx\r\n.\r\n")
        assert QUEUED_RE.match(c.read_reply().line)
        c.expect("NOOP", "250 2.0.0 ok")
    (msg,) = spp.wait_messages(1)
    expect_received(msg)
    body = msg.body
    assert body.startswith(b"X-Big-Output: start\n")
    assert body.endswith(b"Subject: big\n\nx\n")
    if "headers" in line:
        floods = body.count(b"X-Flood: ")
        assert 0 < floods and len(body) < 70000, f"{floods} flood headers, {len(body)} bytes"
    else:
        assert body == b"X-Big-Output: start\nSubject: big\n\nx\n"
    wait_for(lambda: "bigout" in spp.log()[log_before:], 10, "a log line about the output cap")


def test_plugin_reading_stdin_finds_it_closed(spp):
    spp.use_plugins("[mail]\nplugins/stdin\n", {"stdin": "stdin.sh"})
    with spp.connect() as c:
        deliver_after(c, b"stdin")
    (msg,) = spp.wait_messages(1)
    assert msg.body == b"X-Stdin: closed\nSubject: stdin\n\nx\n"


def test_background_child_holding_stdout_does_not_hold_the_answer(spp):
    spp.use_plugins("[mail]\nplugins/background\n", {"background": "background.sh"})
    with spp.connect(timeout=PLUGIN_TIMEOUT + 20) as c:
        started = time.monotonic()
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        elapsed = time.monotonic() - started
        assert elapsed < 1.5, f"MAIL answered after {elapsed:.1f}s (plugin_timeout " \
                              f"{PLUGIN_TIMEOUT}s): the runner waited for the background child"
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: background\r\n\r\nx\r\n.\r\n")
        assert QUEUED_RE.match(c.read_reply().line)
    (msg,) = spp.wait_messages(1)
    assert msg.body == b"X-Background: left a child holding stdout\nSubject: background\n\nx\n"
    # The child is still in the plugin's process group: it is killed when the timeout hits.
    child = read_pid(spp, "background.pid")
    wait_for(lambda: not alive(child), PLUGIN_TIMEOUT + 5,
             f"the background child {child} to be killed at the plugin timeout")


def test_stderr_lines_are_logged_with_plugin_and_session(spp):
    spp.use_plugins("[mail]\nplugins/stderr\n", {"stderr": "stderr.sh"})
    log_before = len(spp.log())
    with spp.connect() as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
    pattern = re.compile(r"sppd-pluginrunner\[[0-9]+\]: plugin plugins/stderr session (\S+): "
                         r"(first log line from stderr\.sh|second log line, pid [0-9]+)$",
                         re.MULTILINE)

    def logged():
        found = pattern.findall(spp.log()[log_before:])
        return found if len(found) == 2 else None
    (first, second) = wait_for(logged, 10, "two log lines from plugins/stderr")
    assert first[0] == second[0]  # the same session id
    assert first[1] == "first log line from stderr.sh"


def test_error_in_connection_replaces_the_greeting_and_the_session_goes_on(spp):
    # qmail-spp: E in [connection] is not a refusal of the connection (use R for that).
    spp.use_plugins("[connection]\nplugins/conn\n",
                    {"conn": ("say.c", "E554 5.7.1 you are not welcome\n")})
    with spp.connect() as c:
        assert c.greeting.lines == ["554 5.7.1 you are not welcome"]
        c.expect("EHLO client.test", *EHLO_LINES)
        deliver_after(c, b"unwelcome")
    assert len(spp.wait_messages(1)) == 1
