# The master as supervisor: restarting a killed worker without disturbing sessions on other
# workers, SIGHUP reloads for new sessions only, SIGTERM drains, IPv6 listeners, the
# sessions_per_worker and max_use settings, and config errors reported as file:line: what.
import os
import re
import signal
import subprocess

import pytest

from conftest import (BIN_DIR, EXIT_TIMEOUT, QUEUED_RE, START_TIMEOUT, expect_received,
                      ipv6_loopback_available, wait_for)


def open_session(sppd):
    c = sppd.connect()
    assert c.greeting.code == 220
    assert c.cmd("EHLO client.test").code == 250
    return c


def test_killed_worker_is_restarted_other_sessions_unaffected(make_sppd):
    sppd = make_sppd(smtpd={"processes": "2", "sessions_per_worker": "1"})
    workers = sppd.wait_pids("sppd-smtpd", 2)
    # With one session per worker, two open sessions sit on the two different workers.
    a, b = open_session(sppd), open_session(sppd)
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)

    def state(c):
        try:
            return "alive" if c.cmd("NOOP").lines == ["250 2.0.0 ok"] else "odd"
        except (EOFError, ConnectionError, OSError):
            return "dead"
    states = {"a": state(a), "b": state(b)}
    assert sorted(states.values()) == ["alive", "dead"], \
        f"exactly the killed worker's session must be gone: {states}"
    survivor = a if states["a"] == "alive" else b
    reply = survivor.transaction("alice@client.test", ["bob@example.com"],
                                 b"Subject: survivor\r\n\r\nstill here\r\n")
    assert QUEUED_RE.match(reply.line), reply.line
    survivor.expect("QUIT", "221 2.0.0 mx.sppd.test")
    a.close()
    b.close()
    new_workers = sppd.wait_pids("sppd-smtpd", 2, exclude={victim})
    assert workers[1] in new_workers
    (msg,) = sppd.wait_messages(1)
    assert msg.body == b"Subject: survivor\n\nstill here\n"
    assert QUEUED_RE.match(sppd.deliver(b"Subject: after\r\n\r\nx\r\n").line)


def test_sighup_reloads_for_new_sessions_only(make_sppd):
    sppd = make_sppd()
    old = open_session(sppd)
    old.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
    sppd.write_control("smtpgreeting", "reloaded.sppd.test")
    sppd.reload()

    def new_greeting():
        with sppd.connect() as c:
            return c.greeting.lines == ["220 reloaded.sppd.test ESMTP"]
    wait_for(new_greeting, START_TIMEOUT, "new sessions to see the new smtpgreeting", 0.1)
    # The session opened before the reload carries on and can still deliver.
    old.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
    old.expect("DATA", "354 go ahead")
    old.send(b"Subject: across reload\r\n\r\nbody\r\n.\r\n")
    assert QUEUED_RE.match(old.read_reply().line)
    assert old.cmd("QUIT").code == 221
    old.close()
    (msg,) = sppd.wait_messages(1)
    assert msg.body == b"Subject: across reload\n\nbody\n"
    with sppd.connect() as c:
        c.expect("HELO client.test", "250 reloaded.sppd.test")


def test_sigterm_drains_open_sessions(make_sppd):
    sppd = make_sppd(glob={"drain_timeout": "30"})
    c = open_session(sppd)
    c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
    c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
    sppd.signal(signal.SIGTERM)

    def refused():
        try:
            probe = sppd.connect(greet=False, timeout=2)
        except ConnectionRefusedError:
            return True
        probe.close()
        return False
    wait_for(refused, 15, "new connections to be refused after SIGTERM", 0.05)
    assert sppd.master.poll() is None, "the master must wait for the open session"
    c.expect("DATA", "354 go ahead")
    c.send(b"Subject: drained\r\n\r\nfinished during drain\r\n.\r\n")
    assert QUEUED_RE.match(c.read_reply().line)
    assert c.cmd("QUIT").code == 221
    c.close()
    assert sppd.wait_exit(EXIT_TIMEOUT) == 0
    (msg,) = sppd.wait_messages(1)
    assert msg.body == b"Subject: drained\n\nfinished during drain\n"


def test_drain_timeout_ends_idle_sessions(make_sppd):
    sppd = make_sppd(glob={"drain_timeout": "2"})
    c = open_session(sppd)
    sppd.signal(signal.SIGTERM)
    assert sppd.wait_exit(20) == 0
    rest = c.expect_closed(timeout=10)
    assert rest == b"" or rest.startswith(b"421 "), rest
    c.close()


@pytest.mark.skipif(not ipv6_loopback_available(), reason="::1 is not available")
def test_ipv6_listener(make_sppd):
    sppd = make_sppd(queue="envdump",
                     extra_listeners={"smtp6": {"address": "[::1]:{free}", "control_dir": "control",
                                                "tcprules": "tcp.smtp",
                                                "remote_host_lookup": "no"}})
    sppd.wait_ready(listener="smtp6")
    with sppd.connect("smtp6") as c:
        assert c.greeting.lines == ["220 mx.sppd.test ESMTP"]
        assert c.cmd("EHLO client.test").code == 250
        reply = c.transaction("alice@client.test", ["bob@example.com"], b"Subject: v6\r\n\r\nx\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
    env = sppd.env_of_queue(reply)
    assert env["PROTO"] == "TCP6"
    assert env["TCPREMOTEIP"] == "::1"
    assert env["TCPLOCALIP"] == "::1"
    assert env["TCPLOCALPORT"] == str(sppd.addresses["smtp6"][1])
    (msg,) = sppd.wait_messages(1)
    expect_received(msg, ip="::1", local="::1")


@pytest.mark.parametrize("per_worker", ["1", "50"])
def test_sessions_per_worker(make_sppd, per_worker):
    sppd = make_sppd(smtpd={"processes": "2", "sessions_per_worker": per_worker})
    # Two concurrent sessions (one per worker when the limit is 1), then three in a row.
    a, b = open_session(sppd), open_session(sppd)
    for i, c in enumerate((a, b)):
        reply = c.transaction("alice@client.test", ["bob@example.com"],
                              b"Subject: concurrent %d\r\n\r\nx\r\n" % i)
        assert QUEUED_RE.match(reply.line), reply.line
    a.close()
    b.close()
    for i in range(3):
        assert QUEUED_RE.match(sppd.deliver(b"Subject: serial %d\r\n\r\nx\r\n" % i).line)
    assert len(sppd.wait_messages(5)) == 5


def test_max_use_recycles_workers(make_sppd):
    sppd = make_sppd(smtpd={"processes": "1", "max_use": "2"})
    first = sppd.wait_pids("sppd-smtpd", 1)
    for i in range(5):
        assert QUEUED_RE.match(sppd.deliver(b"Subject: use %d\r\n\r\nx\r\n" % i).line)
    assert len(sppd.wait_messages(5)) == 5
    later = sppd.wait_pids("sppd-smtpd", 1, exclude=set(first))
    assert later != first


def run_master_with_config(tmp_path, text):
    conf = tmp_path / "sppd.conf"
    conf.write_text(text)
    result = subprocess.run([str(BIN_DIR / "sppd-master"), "--config", str(conf)],
                            capture_output=True, text=True, timeout=30, cwd=tmp_path)
    return os.path.realpath(conf), result


@pytest.mark.parametrize("lines,bad_line,what", [
    (["qmail_home = /tmp", "bogus = 1", "[listener smtp]", "address = 127.0.0.1:2525"],
     2, "unknown global setting 'bogus'"),
    (["[service smtpd]", "processes = 0", "[listener smtp]", "address = 127.0.0.1:2525"],
     2, "processes must be between 1 and 1000"),
    (["# comment", "", "[listener smtp]", "address = localhost:25"],
     4, "address must be IPv4:port or [IPv6]:port, got 'localhost:25'"),
])
def test_config_error_exits_2_with_file_line_what(tmp_path, lines, bad_line, what):
    conf, result = run_master_with_config(tmp_path, "\n".join(lines) + "\n")
    assert result.returncode == 2, result.stderr
    assert f"{conf}:{bad_line}: {what}" in result.stderr


def test_missing_config_file_exits_2(tmp_path):
    result = subprocess.run([str(BIN_DIR / "sppd-master"), "--config", str(tmp_path / "none.conf")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "none.conf" in result.stderr


def test_reload_with_broken_config_changes_nothing(make_sppd):
    sppd = make_sppd()
    sppd.conf_path.write_text(sppd.config_text() + "\n[service smtpd]\n")
    bad_line = len(sppd.conf_path.read_text().splitlines())
    sppd.reload()
    wait_for(lambda: f"{sppd.conf_path}:{bad_line}: [service smtpd] given twice" in sppd.log(),
             START_TIMEOUT, "the reload error in the log")
    assert sppd.master.poll() is None
    assert QUEUED_RE.match(sppd.deliver(b"Subject: still up\r\n\r\nx\r\n").line)


def test_restart_rebinds_the_same_port_at_once(make_sppd):
    # The server closes first after QUIT, so its side of the port sits in TIME_WAIT: a new
    # master must still bind it straight away (SO_REUSEADDR), as an admin's restart expects.
    sppd = make_sppd()
    port = sppd.port
    assert QUEUED_RE.match(sppd.deliver(b"Subject: before\r\n\r\nx\r\n").line)
    assert sppd.stop() == 0
    sppd.start()
    assert sppd.port == port
    assert QUEUED_RE.match(sppd.deliver(b"Subject: after\r\n\r\nx\r\n").line)
    assert len(sppd.wait_messages(2)) == 2


def test_log_level_warning_silences_info_lines(make_sppd):
    sppd = make_sppd(glob={"log_level": "warning"})
    assert QUEUED_RE.match(sppd.deliver(b"Subject: quiet\r\n\r\nx\r\n").line)
    assert sppd.stop() == 0
    chatty = [line for line in sppd.log().splitlines()
              if not re.match(r"^sppd-[a-z-]+(\[[0-9]+\])?: (warning|error): ", line)]
    assert not chatty, "info lines logged with log_level = warning:\n" + "\n".join(chatty[:10])
