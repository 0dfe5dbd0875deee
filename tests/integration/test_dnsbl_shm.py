# The shared-memory fast path for DNSBL verdicts (issue 5 item 2), against a real DNS server
# (rbldnsd on loopback): once a verdict is cached, the workers read it from dnsbl-cache's
# shared table instead of asking over their channel, which the operators' counters prove
# (sppd-dnsbl-status over dnsbl-cache's local socket: the socket hits and misses stand still
# while hits_shm grows) and rbldnsd confirms (one query per (IP, zone)). The replies are the
# socket path's, word for word; an expired verdict goes back to the socket and is asked again;
# a dnsbl-cache SIGKILLed and restarted by the master gives the workers a new table, and the
# hits come from shared memory again. Workers map the table under their seccomp filter (the
# default, KILL): none of them may die on the way.
import os
import signal
import subprocess
import time

from conftest import (BIN_DIR, DNSBL_CLIENTS, START_TIMEOUT, Rbldnsd, SmtpConnection,
                      dnsbl_listener, dnsbl_text, wait_for)

C = DNSBL_CLIENTS
UNLISTED = "127.0.0.40"  # in no zone, and not the harness's readiness probe (127.0.0.1)
MAPPED = "mapped dnsbl-cache's DNSBL table"
BLOCKED = ["220 rblsmtpd.local", "250 rblsmtpd.local"]
ACCEPTED = ["220 mx.sppd.test ESMTP", "250 2.1.0 ok", "250 2.1.5 ok"]

# (listener, client, the conversation the verdict must give): a listing with the zone's TXT
# text, one with a text of its own, a clear answer, an anti-listing that lets a listed client
# in, and the A-record form `-r zone:text`.
CASES = [
    ("smtp", C["listed"], BLOCKED + [f"451 {dnsbl_text(C['listed'])}", "221 rblsmtpd.local"]),
    ("smtp", C["own_text"],
     BLOCKED + ["451 Open relay 127.0.0.3 (see http://bl.test/relay)", "221 rblsmtpd.local"]),
    ("smtp", UNLISTED, ACCEPTED + ["221 2.0.0 mx.sppd.test"]),
    ("anti", C["anti"], ACCEPTED + ["221 2.0.0 mx.sppd.test"]),
    ("a_form", C["a_only"], BLOCKED + ["553 Listed 127.0.0.5 in al.test", "221 rblsmtpd.local"]),
]
# The (zone, record type) each case asks about: the first answer decides.
CASE_LOOKUPS = {C["listed"]: [("bl.test", "TXT")], C["own_text"]: [("bl.test", "TXT")],
                UNLISTED: [("bl.test", "TXT")], C["anti"]: [("white.test", "A")],
                C["a_only"]: [("al.test", "A")]}


def shm_sppd(make_sppd, rbldnsd, processes=2):
    sppd = make_sppd(
        smtpd={"processes": str(processes), "sessions_per_worker": "50"},
        dnsbl_cache={"resolver": rbldnsd.resolver},
        # 100 sessions from one IP at once, more than the default per-IP limit.
        listener={"rbl": "-r bl.test", "max_connections_per_ip": "1000"},
        extra_listeners={"anti": dnsbl_listener("-b -a white.test -r bl.test"),
                         "a_form": dnsbl_listener('-b -r "al.test:Listed %IP% in al.test"')})
    wait_tables_mapped(sppd, processes)
    return sppd


def mapping_workers(sppd):
    """The log prefix (program and pid) of every "table mapped" line, in order."""
    return [l.split(":", 1)[0] for l in sppd.log().splitlines() if MAPPED in l]


def wait_tables_mapped(sppd, count):
    """Waits until the log holds at least count "table mapped" lines."""
    return wait_for(lambda: len(mapping_workers(sppd)) >= count, START_TIMEOUT,
                    f"{count} DNSBL table mappings in the log")


def status(sppd):
    """dnsbl-cache's counters as sppd-dnsbl-status prints them: {name: value}."""
    out = subprocess.run([str(BIN_DIR / "sppd-dnsbl-status"), "--socket", str(sppd.dnsbl_socket)],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return {name: int(value) for name, value in (line.split() for line in out.splitlines())}


def converse(sppd, listener, source):
    """The reply lines of a whole session: greeting, MAIL, RCPT, QUIT."""
    host, port = sppd.addresses[listener]
    with SmtpConnection(host, port, source=source) as c:
        lines = [c.greeting.line]
        lines.append(c.cmd("MAIL FROM:<alice@client.test>").line)
        lines.append(c.cmd("RCPT TO:<bob@example.com>").line)
        lines.append(c.cmd("QUIT").line)
    return lines


def changed(before, after):
    """The DNSBL counters that moved from before to after, with how much."""
    return {k: after[k] - before.get(k, 0) for k in after
            if k.startswith("dnsbl.") and after[k] != before.get(k, 0)}


def open_sessions(sppd, listener, sources):
    """Connects from every source at once (the kernel completes the connections from the
    backlog before a worker accepts them, so with 50 sessions per worker 100 of them land on
    both workers), then reads each greeting."""
    host, port = sppd.addresses[listener]
    sessions = [SmtpConnection(host, port, source=s, greet=False) for s in sources]
    for c in sessions:
        c.greeting = c.read_reply()
    return sessions


def assert_no_worker_died(sppd, workers):
    assert set(sppd.pids("sppd-smtpd")) == set(workers), sppd.log_tail()
    assert "seccomp" not in sppd.log(), sppd.log_tail()


def test_verdicts_after_the_first_come_from_shared_memory(make_sppd, rbldnsd):
    sppd = shm_sppd(make_sppd, rbldnsd)
    workers = sppd.pids("sppd-smtpd")
    before, mark = status(sppd), rbldnsd.mark()

    # The first session of each client asks dnsbl-cache over the channel (a miss, one query).
    for listener, ip, expected in CASES:
        assert converse(sppd, listener, ip) == expected, (listener, ip)
    first = status(sppd)
    assert changed(before, first) == {"dnsbl.misses": 5, "dnsbl.queries": 5,
                                      "dnsbl.entries": 5}, changed(before, first)

    # Four more each: the same replies, from shared memory.
    for _ in range(4):
        for listener, ip, expected in CASES:
            assert converse(sppd, listener, ip) == expected, (listener, ip)
    # And 100 at once from the listed client, which both workers serve: the table is shared.
    sessions = open_sessions(sppd, "smtp", [C["listed"]] * 100)
    for c in sessions:
        assert c.greeting.line == "220 rblsmtpd.local"
        c.expect("RCPT TO:<bob@example.com>", CASES[0][2][2])
        c.send(b"QUIT\r\n")
        assert c.read_reply().line == "221 rblsmtpd.local"
        c.close()
    # Workers report their hits at most once a second.
    wait_for(lambda: status(sppd)["dnsbl.hits_shm"] >= 120, 15, "120 shared-memory hits")
    assert changed(first, status(sppd)) == {"dnsbl.hits_shm": 120}
    for ip, lookups in CASE_LOOKUPS.items():
        for zone, qtype in lookups:
            assert rbldnsd.count(ip, zone, qtype, since=mark, sync=False) == 1, (ip, zone)
    assert len(rbldnsd.queries()[mark:]) == 5, rbldnsd.queries()[mark:]
    # A blocked session logs "rblsmtpd: IP pid PID: ..." with its worker's pid.
    blocked_pids = {l.split(" pid ", 1)[1].split(":", 1)[0]
                    for l in sppd.log().splitlines() if f"rblsmtpd: {C['listed']} pid " in l}
    assert blocked_pids == {str(p) for p in workers}, blocked_pids
    assert_no_worker_died(sppd, workers)


def test_an_expired_verdict_is_asked_again_over_the_socket(make_sppd):
    # TTL 1 s is clamped to dnsbl-cache's minimum of 60 s: the verdict lives a minute.
    server = Rbldnsd(ttl=1).start()
    try:
        sppd = shm_sppd(make_sppd, server, processes=1)
        ip = C["listed"]
        expected = CASES[0][2]
        before, mark = status(sppd), server.mark()
        stored = time.monotonic()
        assert converse(sppd, "smtp", ip) == expected
        sessions = 0

        def asked_again():
            nonlocal sessions
            assert converse(sppd, "smtp", ip) == expected
            sessions += 1
            return server.count(ip, "bl.test", since=mark) == 2
        wait_for(asked_again, 120, "the verdict to expire and be asked again", interval=1)
        waited = time.monotonic() - stored
        assert waited >= 59, f"asked again after {waited:.0f}s, the TTL is 60s"
        # Before it expired, every session read it from shared memory; the last one missed in
        # the table and in dnsbl-cache's cache alike (they expire together), and asked rbldnsd.
        wait_for(lambda: status(sppd)["dnsbl.hits_shm"] - before["dnsbl.hits_shm"] >=
                 sessions - 1, 15, "the shared-memory hits of the minute")
        again = status(sppd)
        delta = changed(before, again)
        assert delta.get("dnsbl.hits_shm") == sessions - 1, (delta, sessions)
        assert delta["dnsbl.misses"] == 2 and delta["dnsbl.queries"] == 2, delta
        assert "dnsbl.hits" not in delta, delta
        # And the fresh verdict is in shared memory again.
        assert converse(sppd, "smtp", ip) == expected
        wait_for(lambda: status(sppd)["dnsbl.hits_shm"] > again["dnsbl.hits_shm"], 15,
                 "a shared-memory hit on the fresh verdict")
        assert server.count(ip, "bl.test", since=mark) == 2
        assert changed(again, status(sppd)).keys() == {"dnsbl.hits_shm"}
    finally:
        server.cleanup()


def test_a_restarted_dnsbl_cache_gives_the_workers_a_new_table(make_sppd, rbldnsd):
    sppd = shm_sppd(make_sppd, rbldnsd)
    workers = sppd.pids("sppd-smtpd")
    ip = C["own_text"]
    expected = CASES[1][2]
    mark = rbldnsd.mark()
    for _ in range(3):
        assert converse(sppd, "smtp", ip) == expected
    wait_for(lambda: status(sppd)["dnsbl.hits_shm"] >= 2, 15, "shared-memory hits")

    (victim,) = sppd.pids("sppd-dnsbl-cache")
    mapped = len(mapping_workers(sppd))
    os.kill(victim, signal.SIGKILL)
    sppd.wait_pids("sppd-dnsbl-cache", 1, exclude={victim})
    # Every worker gets a channel to the new process, asks for its table and maps it.
    wait_tables_mapped(sppd, mapped + len(workers))
    fresh = status(sppd)
    assert fresh["dnsbl.hits_shm"] == 0 and fresh["dnsbl.entries"] == 0, fresh

    # The old table is gone with the old process: the first session asks the new one (one more
    # query), the next ones read its new table.
    for _ in range(5):
        assert converse(sppd, "smtp", ip) == expected
    wait_for(lambda: status(sppd)["dnsbl.hits_shm"] >= 4, 15, "hits from the new table")
    delta = changed(fresh, status(sppd))
    assert delta == {"dnsbl.misses": 1, "dnsbl.queries": 1, "dnsbl.entries": 1,
                     "dnsbl.hits_shm": 4}, delta
    assert rbldnsd.count(ip, "bl.test", since=mark) == 2
    assert set(sppd.pids("sppd-smtpd")) == set(workers), "a worker died on the way"
