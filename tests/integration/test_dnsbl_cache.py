# dnsbl-cache as one cache for every connection, counted at a real DNS server (rbldnsd's
# query log): 200 connections from one IP over two workers make one query per zone; ten
# client addresses make one query per (address, zone); a DNS server that never answers ends
# in lookup_timeout and the -c/-C policy; dnsbl-cache SIGKILLed with a lookup in flight:
# sessions are served per policy at once, the master restarts it, and its cache refills.
import os
import selectors
import signal
import socket
import threading
import time

from conftest import (DNSBL_CLIENTS, START_TIMEOUT, SmtpConnection, dnsbl_listener, dnsbl_text,
                      wait_for)

C = DNSBL_CLIENTS
GREETING = ["220 mx.sppd.test ESMTP"]
TEMPORARY_ERROR = "451 temporary RBL lookup error"
CHECKS = "-a white.test -r bl.test"  # two zones for every client that is not anti-listed


def open_sessions(instance, sources, listener="smtp"):
    """Connects from every source address at once (the kernel completes the connections from
    the backlog before a worker accepts them), then reads each greeting."""
    host, port = instance.addresses[listener]
    sessions = [SmtpConnection(host, port, source=s, greet=False) for s in sources]
    for c in sessions:
        c.greeting = c.read_reply()
    return sessions


def quit_all(sessions, farewell):
    for c in sessions:
        c.send(b"QUIT\r\n")
    for c in sessions:
        assert c.read_reply().lines == [farewell]
        c.close()


def cache_sppd(make_sppd, rbldnsd, **options):
    return make_sppd(smtpd={"processes": "2", "sessions_per_worker": "50"},
                     dnsbl_cache={"resolver": rbldnsd.resolver, **options.pop("dnsbl_cache", {})},
                     # 100 sessions from one IP at once, more than the default per-IP limit.
                     listener={"rbl": options.pop("rbl", CHECKS),
                               "max_connections_per_ip": "1000"}, **options)


# ---------------------------------------------------------------------------------------------
# One query per (IP, zone) within the TTL

def test_200_connections_from_one_ip_one_query_per_zone(make_sppd, rbldnsd):
    sppd = cache_sppd(make_sppd, rbldnsd)
    ip = C["listed"]
    before = rbldnsd.mark()
    for _ in range(2):
        # 100 sessions open at once with 50 per worker: both workers hold half of them.
        sessions = open_sessions(sppd, [ip] * 100)
        assert {tuple(c.greeting.lines) for c in sessions} == {("220 rblsmtpd.local",)}
        quit_all(sessions, "221 rblsmtpd.local")
    assert rbldnsd.count(ip, "white.test", since=before) == 1
    assert rbldnsd.count(ip, "bl.test", since=before) == 1
    assert len(rbldnsd.queries()[before:]) == 2, rbldnsd.queries()[before:]

    # Proof that both workers asked: the master prefixes each worker's log lines with its pid.
    def blocked_lines():
        lines = [l for l in sppd.log().splitlines() if ip in l and dnsbl_text(ip) in l]
        return lines if len(lines) >= 200 else None
    lines = wait_for(blocked_lines, 15, "a log line for each of the 200 blocked sessions")
    workers = {l.split(":", 1)[0] for l in lines}
    assert len(workers) >= 2, f"all blocked sessions logged by {workers}"


def test_ten_ips_one_query_each_per_zone(make_sppd, rbldnsd):
    sppd = cache_sppd(make_sppd, rbldnsd)
    ips = [f"127.0.0.{n}" for n in range(40, 50)]  # in no zone
    before = rbldnsd.mark()
    for _ in range(2):
        sessions = open_sessions(sppd, ips * 5)
        assert {tuple(c.greeting.lines) for c in sessions} == {tuple(GREETING)}
        quit_all(sessions, "221 2.0.0 mx.sppd.test")
    queries = rbldnsd.queries()[before:]
    for ip in ips:
        for zone in ("white.test", "bl.test"):
            assert rbldnsd.count(ip, zone, since=before, sync=False) == 1, (ip, zone, queries)
    assert len(queries) == 20, queries


# ---------------------------------------------------------------------------------------------
# A DNS server that never answers

def test_silent_dns_server_times_out_into_the_fail_policy(make_sppd):
    # A UDP socket that reads queries and never answers.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.settimeout(5)
        resolver = f"127.0.0.1:{black_hole.getsockname()[1]}"
        sppd = make_sppd(
            dnsbl_cache={"resolver": resolver, "lookup_timeout": "1"},
            listener={"rbl": "-C -r bl.test"},
            extra_listeners={"closed": dnsbl_listener("-c -r bl.test"),
                             "closed_b": dnsbl_listener("-b -c -r bl.test")})
        started = time.monotonic()
        host, _ = sppd.addresses["smtp"]
        sessions = {name: SmtpConnection(host, sppd.addresses[name][1], greet=False,
                                         source=C["listed"])
                    for name in ("smtp", "closed", "closed_b")}
        for c in sessions.values():
            c.greeting = c.read_reply()
        waited = time.monotonic() - started
        assert black_hole.recv(4096), "no query reached the DNS server"
        try:
            assert sessions["smtp"].greeting.lines == GREETING  # -C: let in
            sessions["smtp"].expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
            sessions["smtp"].expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
            for name in ("closed", "closed_b"):  # -c: blocked; a DNS error is 451 even with -b
                c = sessions[name]
                assert c.greeting.lines == ["220 rblsmtpd.local"], name
                c.expect("RCPT TO:<bob@example.com>", TEMPORARY_ERROR)
        finally:
            for c in sessions.values():
                c.close()
        # One lookup_timeout (the three sessions wait together) plus slack for a loaded box.
        assert 0.8 <= waited < 6, f"greetings after {waited:.1f}s with lookup_timeout = 1"
        line = wait_for(lambda: next((l for l in sppd.log().splitlines()
                                      if C["listed"] in l and "temporary RBL lookup error" in l),
                                     None), 15, "the blocked session's log line")
        assert line


# ---------------------------------------------------------------------------------------------
# dnsbl-cache killed

class DnsRelay:
    """A UDP relay in front of a DNS server: forwards queries and answers, or while `hold`
    is set swallows queries (counted in `held`), so a lookup stays in flight on demand."""

    def __init__(self, upstream_port):
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.connect(("127.0.0.1", upstream_port))
        self.hold = False
        self.held = 0
        self.clients = {}  # DNS id -> the address that asked
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.front.getsockname()[1]}"

    def run(self):
        with selectors.DefaultSelector() as selector:
            selector.register(self.front, selectors.EVENT_READ)
            selector.register(self.back, selectors.EVENT_READ)
            while not self.stopping.is_set():
                for key, _ in selector.select(0.1):
                    try:
                        packet, sender = key.fileobj.recvfrom(4096)
                    except OSError:
                        continue
                    if len(packet) < 12:
                        continue
                    if key.fileobj is self.front:
                        if self.hold:
                            self.held += 1
                            continue
                        self.clients[packet[:2]] = sender
                        self.back.send(packet)
                    elif packet[:2] in self.clients:
                        self.front.sendto(packet, self.clients.pop(packet[:2]))

    def close(self):
        self.stopping.set()
        self.thread.join(5)
        self.front.close()
        self.back.close()


def test_killed_dnsbl_cache_policy_restart_and_refill(make_sppd, rbldnsd):
    relay = DnsRelay(rbldnsd.port)
    try:
        # lookup_timeout far above every deadline below: only the kill can end the lookup.
        sppd = make_sppd(dnsbl_cache={"resolver": relay.address, "lookup_timeout": "30"},
                         listener={"rbl": "-b -C -r bl.test"},
                         extra_listeners={"closed": dnsbl_listener("-b -c -r bl.test")})
        (victim,) = sppd.wait_pids("sppd-dnsbl-cache", 1)
        host, port = sppd.addresses["smtp"]
        closed_port = sppd.addresses["closed"][1]
        listed = C["listed"]
        before = rbldnsd.mark()
        with SmtpConnection(host, closed_port, source=listed) as c:  # lookups work
            assert c.greeting.lines == ["220 rblsmtpd.local"]
            c.expect("RCPT TO:<bob@example.com>", f"553 {dnsbl_text(listed)}")
        assert rbldnsd.count(listed, "bl.test", since=before) == 1

        # A lookup in flight (the relay swallows it) when dnsbl-cache dies.
        relay.hold = True
        pending = C["own_text"]
        open_one = SmtpConnection(host, port, source=pending, greet=False)
        closed_one = SmtpConnection(host, closed_port, source=pending, greet=False)
        wait_for(lambda: relay.held >= 1, 15, "the lookup to reach the DNS server")
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        with open_one, closed_one:
            open_one.greeting = open_one.read_reply()
            closed_one.greeting = closed_one.read_reply()
            waited = time.monotonic() - killed
            assert open_one.greeting.lines == GREETING  # -C: let in
            open_one.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
            open_one.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
            assert closed_one.greeting.lines == ["220 rblsmtpd.local"]  # -c: blocked, 451
            closed_one.expect("RCPT TO:<bob@example.com>", TEMPORARY_ERROR)
        assert waited < 10, f"sessions waited {waited:.1f}s after dnsbl-cache died"

        # The master restarts it; once the workers have the new channel, lookups work again
        # and the new process's cache starts empty: one more query, then none.
        relay.hold = False
        sppd.wait_pids("sppd-dnsbl-cache", 1, exclude={victim})

        def listed_again():
            with SmtpConnection(host, closed_port, source=pending) as c:
                assert c.greeting.lines == ["220 rblsmtpd.local"]
                reply = c.cmd("RCPT TO:<bob@example.com>").line
                if reply == TEMPORARY_ERROR:
                    return None  # a worker without the new channel yet
                assert reply == "553 Open relay 127.0.0.3 (see http://bl.test/relay)"
                return reply
        wait_for(listed_again, START_TIMEOUT, "lookups through the restarted dnsbl-cache", 0.1)
        for _ in range(2):
            with SmtpConnection(host, closed_port, source=listed) as c:
                c.expect("RCPT TO:<bob@example.com>", f"553 {dnsbl_text(listed)}")
        assert rbldnsd.count(listed, "bl.test", since=before) == 2, \
            "the restarted dnsbl-cache must ask once and then answer from its cache"
    finally:
        relay.close()
