# Per-client connection limits (Postfix's anvil, tcpserver -c), counted by dnsbl-cache for
# every worker: the connection over max_connections_per_ip gets one 421 line and is closed
# while other IPs are served; a closed connection frees its slot; a SIGKILLed worker's
# connections are released; max_connection_rate_per_ip refuses the connection over the rate;
# tcprules' MAXCONNIP overrides the listener for one client; a SIGKILLed dnsbl-cache learns
# the open connections again from the workers; and the default of 50 holds without a setting.
# sppd-dnsbl-status shows the counters (clients.*).
import os
import re
import signal
import subprocess

from conftest import BIN_DIR, START_TIMEOUT, wait_for

GREETING = ["220 mx.sppd.test ESMTP"]


def too_many(ip):
    return f"421 4.7.0 too many connections from {ip}, try again later"


def too_fast(ip, window):
    return f"421 4.7.0 too many connections from {ip} in {window} s, try again later"


def limited_sppd(make_sppd, processes="3", per_worker="2", tcprules=None, **listener):
    """An instance whose [listener smtp] has these settings. Three workers of two sessions by
    default, so three connections from one client are spread over two workers at least."""
    options = {"tcprules": tcprules} if tcprules else {}
    return make_sppd(smtpd={"processes": processes, "sessions_per_worker": per_worker},
                     listener=listener, **options)


def settle(sppd):
    """Waits until every session so far has ended (the harness's readiness probes connect
    from 127.0.0.1 too): each one has told dnsbl-cache before it logged its end."""
    def settled():
        log = sppd.log()
        return log.count(": connect from ") == log.count(": end (")
    wait_for(settled, 15, "the sessions so far to end")


def open_sessions(sppd, ip, count):
    """count connections from ip, each greeted with 220."""
    sessions = []
    for _ in range(count):
        c = sppd.connect(source=ip)
        sessions.append(c)
        assert c.greeting.lines == GREETING, f"connection {len(sessions)} from {ip}"
    return sessions


def expect_refused(sppd, ip, line):
    """A connection from ip gets exactly `line` and is closed."""
    with sppd.connect(source=ip) as c:
        assert c.greeting.lines == [line]
        assert c.expect_closed() == b""


def admitted_now(sppd, ip, held):
    """Connects from ip: a 220 joins `held` (True); a 421 is closed (False)."""
    c = sppd.connect(source=ip)
    if c.greeting.code == 220:
        held.append(c)
        return True
    assert c.greeting.lines == [too_many(ip)]
    c.close()
    return False


def worker_of(sppd, session):
    """The pid of the worker that logged the session's connect line."""
    mark = f": connect from {session.sock.getsockname()[0]}:{session.local_port} on "

    def find():
        return next((l for l in sppd.log().splitlines() if mark in l), None)
    line = wait_for(find, 15, f"the log line '{mark}'")
    return int(re.search(r"\[(\d+)\]", line).group(1))


def close_all(sessions):
    for c in sessions:
        c.close()


def client_counters(sppd):
    """dnsbl-cache's clients.* counters as sppd-dnsbl-status prints them (None: no answer,
    e.g. while dnsbl-cache restarts)."""
    result = subprocess.run([str(BIN_DIR / "sppd-dnsbl-status"), "--config", str(sppd.conf_path)],
                            capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        return None
    pairs = (line.split(" ") for line in result.stdout.splitlines())
    return {name[len("clients."):]: int(value) for name, value in pairs
            if name.startswith("clients.")}


def test_connection_over_the_limit_gets_421_and_other_ips_do_not(make_sppd):
    sppd = limited_sppd(make_sppd, max_connections_per_ip="3")
    settle(sppd)
    held = open_sessions(sppd, "127.0.0.1", 3)
    try:
        workers = {worker_of(sppd, c) for c in held}
        assert len(workers) >= 2, "the three connections must be counted across workers"
        expect_refused(sppd, "127.0.0.1", too_many("127.0.0.1"))
        wait_for(lambda: "refused 127.0.0.1 on smtp: 4 concurrent connections, limit 3"
                 in sppd.log(), 15, "the refusal's log line")
        assert client_counters(sppd) == {"tracked": 1, "connections": 3,
                                         "refused_concurrency": 1, "refused_rate": 0,
                                         "uncounted": 0}
        with sppd.connect(source="127.0.0.2") as other:
            assert other.greeting.lines == GREETING
            other.expect("QUIT", "221 2.0.0 mx.sppd.test")

        # Closing one frees its slot (dnsbl-cache hears of it a moment later), and only one.
        held.pop(0).expect("QUIT", "221 2.0.0 mx.sppd.test")
        wait_for(lambda: admitted_now(sppd, "127.0.0.1", held), 15, "a slot for 127.0.0.1")
        expect_refused(sppd, "127.0.0.1", too_many("127.0.0.1"))
    finally:
        close_all(held)


def test_a_killed_workers_connections_are_released(make_sppd):
    sppd = limited_sppd(make_sppd, max_connections_per_ip="3")
    ip = "127.0.0.3"
    held = open_sessions(sppd, ip, 3)
    try:
        victim = worker_of(sppd, held[0])
        lost = [c for c in held if worker_of(sppd, c) == victim]
        held = [c for c in held if c not in lost]
        expect_refused(sppd, ip, too_many(ip))
        os.kill(victim, signal.SIGKILL)
        for c in lost:
            c.expect_closed()
            c.close()
        # New connections get 220 up to the limit again, then the next is refused.
        wait_for(lambda: admitted_now(sppd, ip, held), 15, "the dead worker's slots")
        held += open_sessions(sppd, ip, len(lost) - 1)
        expect_refused(sppd, ip, too_many(ip))
        assert len(held) == 3
    finally:
        close_all(held)


def test_connection_over_the_rate_gets_421(make_sppd):
    sppd = limited_sppd(make_sppd, processes="2", max_connection_rate_per_ip="3",
                        connection_rate_window="60")
    ip = "127.0.0.5"  # not 127.0.0.1, whose readiness probes count towards its rate
    for _ in range(3):
        with sppd.connect(source=ip) as c:
            assert c.greeting.lines == GREETING
            c.expect("QUIT", "221 2.0.0 mx.sppd.test")
    expect_refused(sppd, ip, too_fast(ip, 60))
    wait_for(lambda: f"refused {ip} on smtp: 4 connections in 60 s, limit 3" in sppd.log(), 15,
             "the refusal's log line")
    assert client_counters(sppd)["refused_rate"] == 1
    with sppd.connect(source="127.0.0.6") as other:
        assert other.greeting.lines == GREETING


def test_tcprules_maxconnip_overrides_the_listener(make_sppd):
    sppd = limited_sppd(make_sppd, processes="2", per_worker="10", max_connections_per_ip="2",
                        tcprules='127.0.0.6:allow,MAXCONNIP="4"\n'
                                 '127.0.0.7:allow,MAXCONNIP="0"\n')
    for ip, allowed in (("127.0.0.6", 4), ("127.0.0.7", 6), ("127.0.0.8", 2)):
        held = open_sessions(sppd, ip, allowed)
        try:
            if ip != "127.0.0.7":  # MAXCONNIP=0: no limit
                expect_refused(sppd, ip, too_many(ip))
        finally:
            close_all(held)


def test_limits_hold_across_a_dnsbl_cache_restart(make_sppd):
    sppd = limited_sppd(make_sppd, max_connections_per_ip="3")
    ip = "127.0.0.9"
    (victim,) = sppd.wait_pids("sppd-dnsbl-cache", 1)
    held = open_sessions(sppd, ip, 3)
    try:
        log_before = len(sppd.log())
        os.kill(victim, signal.SIGKILL)
        sppd.wait_pids("sppd-dnsbl-cache", 1, exclude={victim})

        # Every worker holding some of the connections announces them to the new process.
        def reannounced():
            counts = re.findall(r"new dnsbl-cache channel: re-announced (\d+) client",
                                sppd.log()[log_before:])
            return sum(int(n) for n in counts) == 3
        wait_for(reannounced, START_TIMEOUT, "the workers to re-announce 3 connections")
        # The new process reads each worker's channel on its own: wait until it has all.
        wait_for(lambda: (client_counters(sppd) or {}).get("connections") == 3, START_TIMEOUT,
                 "the new dnsbl-cache to count 3 connections")
        expect_refused(sppd, ip, too_many(ip))
        held.pop().expect("QUIT", "221 2.0.0 mx.sppd.test")
        wait_for(lambda: admitted_now(sppd, ip, held), 15, "a slot after a QUIT")
    finally:
        close_all(held)


def test_fifty_per_ip_by_default(make_sppd):
    sppd = make_sppd(smtpd={"processes": "2", "sessions_per_worker": "50"})
    assert "max_connections_per_ip" not in sppd.config_text()
    ip = "127.0.0.10"
    held = open_sessions(sppd, ip, 50)
    try:
        expect_refused(sppd, ip, too_many(ip))
    finally:
        close_all(held)
