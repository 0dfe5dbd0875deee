# DNSBL rows of the sppd benchmark (called by bench.py; bench/README.md): connections per
# second through rblsmtpd-style checks of two zones at connect, and the DNS queries that
# reached the DNS server (rbldnsd on loopback, counted in its query log) next to the distinct
# (client IP, zone) pairs: with dnsbl-cache's shared cache and in-flight coalescing the two
# must be equal. Each row runs on a fresh sppd (an empty cache) against one rbldnsd.
# The clients are Python threads on the same two cores, each connection bound to its loopback
# source address: read the rates as relative numbers.
import os
import shutil
import sys
import time

import conftest  # the integration harness (bench.py puts it on sys.path)
from parallel import THREADS, run_threads

SOA = "$SOA 300 ns.bench.test hostmaster.bench.test 1 1h 1h 1d 300\n"
# Two zones, both asked about every client: the first lists nobody on loopback, the second
# every fourth address of 127.0.0.0/24 (those clients get rblsmtpd's fake conversation).
ZONES = {
    "a.bench.test": [("ip4set", SOA + "10.0.0.1\n")],
    "b.bench.test": [("ip4set", SOA + ":127.0.0.2:Listed in b.bench.test, see $\n" +
                      "".join(f"127.0.0.{n}\n" for n in range(4, 255, 4)))],
}
RBL = "-r a.bench.test -r b.bench.test"
DISTINCT_IPS = [f"127.0.0.{n}" for n in range(2, 255)]  # 253 addresses, cycled


def session(host, port, source):
    """connect from `source`, greeting, QUIT, 221, close; returns (greeting line, seconds
    from connect to greeting)."""
    started = time.perf_counter()
    with conftest.SmtpConnection(host, port, source=source, timeout=30) as c:
        greeted = time.perf_counter() - started
        c.send(b"QUIT\r\n")
        assert c.read_reply().code == 221
        return c.greeting.line, greeted


def run_sessions(host, port, sources):
    """One session per entry of `sources` on THREADS threads; returns (seconds, greetings,
    greeting latencies). The first exception ends the row."""
    greetings, latencies = [None] * len(sources), [0.0] * len(sources)

    def work(i):
        greetings[i], latencies[i] = session(host, port, sources[i])

    return run_threads(len(sources), work), greetings, latencies

def one_row(label, server, rbl, sources, tree_cpu_seconds):
    listener = {"rbl": rbl} if rbl else {}
    sppd = conftest.Sppd({"glob": {"log_level": "warning", "drain_timeout": "30"},
                          "smtpd": {"processes": "2", "sessions_per_worker": "50"},
                          "dnsbl_cache": {"resolver": server.resolver},
                          "listener": listener})
    # Counted from before the start: the harness's readiness probe (from 127.0.0.1) is the
    # first session and may be the one that asks about 127.0.0.1. Only queries about the
    # row's own (IP, zone) pairs count.
    pairs = {conftest.dnsbl_name(ip, zone) for ip in set(sources) for zone in ZONES} \
        if rbl else set()
    before = server.mark()
    try:
        sppd.start()
        cpu_before = tree_cpu_seconds(sppd.pid)
        seconds, greetings, latencies = run_sessions(sppd.host, sppd.port, sources)
        cpu = tree_cpu_seconds(sppd.pid) - cpu_before
        queries = sum(1 for name, _ in server.queries()[before:] if name in pairs)
    finally:
        sppd.stop()
        shutil.rmtree(sppd.dir, ignore_errors=True)
    ordered = sorted(latencies)
    return {"label": label, "connections": len(sources), "seconds": seconds,
            "rate": len(sources) / seconds, "queries": queries,
            "pairs": len(pairs),
            "blocked": sum(1 for g in greetings if g == "220 rblsmtpd.local"),
            "p50": ordered[len(ordered) // 2], "p99": ordered[int(len(ordered) * 0.99)],
            "cpu_us": cpu * 1e6 / len(sources)}


def run(scale, only, tree_cpu_seconds):
    """The dnsbl rows selected by `only` (empty or "dnsbl": all); prints their table."""
    if not os.path.exists(conftest.RBLDNSD):
        print("\nDNSBL rows skipped: rbldnsd is not installed (Debian package rbldnsd)")
        return
    connections = max(200, int(10000 * scale))
    rows_wanted = [
        ("dnsbl/none/one-ip", None, ["127.0.0.1"] * connections),
        ("dnsbl/one-ip", RBL, ["127.0.0.1"] * connections),
        ("dnsbl/distinct-ips", RBL,
         [DISTINCT_IPS[i % len(DISTINCT_IPS)] for i in range(connections)]),
    ]
    server = conftest.Rbldnsd(ZONES).start()
    rows = []
    try:
        for label, rbl, sources in rows_wanted:
            if only and "dnsbl" not in only and label not in only:
                continue
            print(f"running {label} ...", file=sys.stderr, flush=True)
            rows.append(one_row(label, server, rbl, sources, tree_cpu_seconds))
    finally:
        server.cleanup()
    if not rows:
        return
    print(f"\nDNSBL at connect ({THREADS} client threads, 2 workers x 50 sessions; rbl = "
          f"'{RBL}'; rbldnsd on loopback, queries counted in its log):")
    header = (f"{'row':20} {'conns':>6} {'secs':>6} {'conns/s':>8} {'greet p50/p99 ms':>17} "
              f"{'blocked':>7} {'DNS queries':>11} {'(IP,zone) pairs':>15} {'CPU us/conn':>11}")
    print(header)
    print("-" * len(header))
    for r in rows:
        verdict = "" if r["queries"] == r["pairs"] else "  MISMATCH"
        print(f"{r['label']:20} {r['connections']:>6} {r['seconds']:>6.2f} {r['rate']:>8.0f} "
              f"{r['p50'] * 1e3:>8.2f}/{r['p99'] * 1e3:<8.2f} {r['blocked']:>7} "
              f"{r['queries']:>11} {r['pairs']:>15} {r['cpu_us']:>11.0f}{verdict}")
    print("  one-ip: every connection from 127.0.0.1 (in neither zone); distinct-ips: "
          f"127.0.0.2-254 in turn ({len(DISTINCT_IPS)} addresses, each about "
          f"{connections // len(DISTINCT_IPS)} times); none: the same without rbl. Target: "
          "DNS queries = distinct (IP, zone) pairs. CPU = the whole sppd tree per connection.")
