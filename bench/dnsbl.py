# DNSBL rows of the sppd benchmark (called by bench.py; bench/README.md): connections per
# second through rblsmtpd-style checks of two zones at connect, and the DNS queries that
# reached the DNS server (rbldnsd on loopback, counted in its query log) next to the distinct
# (client IP, zone) pairs: with dnsbl-cache's shared cache and in-flight coalescing the two
# must be equal. Each row runs on a fresh sppd (an empty cache) against one rbldnsd.
# The clients are Python threads on the same two cores, each connection bound to its loopback
# source address: read the rates as relative numbers. Then the lookup latency of one verdict
# (row dnsbl/latency): a shared-memory hit, a socket hit and a miss, timed by the C++ helper
# build/bench/dnsbl_latency (bench/dnsbl_latency.cpp) against dnsbl-cache's local socket.
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

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


# Targets of issue 5 for one verdict (p50): a shared-memory hit, a socket hit. None: no target.
LATENCY_TARGETS_US = {"shm_hit": 2.0, "socket_hit": 50.0, "miss": None}
LATENCY_HELPER = Path(os.environ["SPPD_BIN_DIR"]).parent / "bench" / "dnsbl_latency"


class BusyCpus:
    """One nice-19 busy loop per CPU while it lives: the vCPUs never halt, as on a server with
    work to do, and sppd's processes still get the CPU whenever they want it."""

    def __enter__(self):
        self.loops = [subprocess.Popen(["nice", "-n", "19", "/bin/sh", "-c", "while :; do :; done"])
                      for _ in range(os.cpu_count() or 1)]
        return self

    def __exit__(self, *exc):
        for loop in self.loops:
            loop.kill()
            loop.wait()


def lookup_latency(server, scale):
    """Runs dnsbl_latency against a fresh sppd's dnsbl-cache: {kind: {"n", "p50_us", ...}}.
    The hit is about 127.0.0.4 in b.bench.test (listed, with a TXT text); misses ask about
    10.77.x.y, which nobody asked before (clear: NXDOMAIN from rbldnsd)."""
    sppd = conftest.Sppd({"glob": {"log_level": "warning", "drain_timeout": "30"},
                          "smtpd": {"processes": "2", "sessions_per_worker": "50"},
                          "dnsbl_cache": {"resolver": server.resolver},
                          "listener": {"rbl": RBL}})
    try:
        sppd.start()
        out = subprocess.run(
            [str(LATENCY_HELPER), "--socket", str(sppd.dnsbl_socket), "--zone", "b.bench.test",
             "--hit-ip", "127.0.0.4", "--hits", str(max(20000, int(200000 * scale))),
             "--socket-hits", str(max(2000, int(20000 * scale))),
             "--misses", str(max(100, int(500 * scale)))],
            capture_output=True, text=True, timeout=600, check=True).stdout
    finally:
        sppd.stop()
        shutil.rmtree(sppd.dir, ignore_errors=True)
    results = {}
    for line in out.splitlines():  # "shm_hit n=200000 p50_us=0.210 p99_us=0.400 mean_us=0.230"
        kind, *fields = line.split()
        results[kind] = {k: float(v) for k, v in (f.split("=") for f in fields)}
    return results


def print_latency(by_load):
    print("\nDNSBL lookup latency of one verdict (dnsbl_latency on dnsbl-cache's local socket; "
          "targets for p50):")
    header = (f"{'kind':12} {'CPUs':5} {'lookups':>8} {'p50 us':>8} {'p99 us':>8} {'mean us':>8}"
              "  target")
    print(header)
    print("-" * len(header))
    for kind, target in LATENCY_TARGETS_US.items():
        for load, results in by_load.items():
            r = results[kind]
            verdict = "" if target is None else f"< {target:g} us" + (
                "" if r["p50_us"] < target else "  MISSED")
            print(f"{kind:12} {load:5} {int(r['n']):>8} {r['p50_us']:>8.2f} {r['p99_us']:>8.2f} "
                  f"{r['mean_us']:>8.2f}  {verdict}")
    print("  shm_hit: DnsblTableReader::find on the mapped table, key made from the text address "
          "as a session does; socket_hit: a kDnsblQuery round trip answered from dnsbl-cache's "
          "cache; miss: one about a new address, through rbldnsd on loopback.")
    print("  CPUs idle: nothing else runs, so every wake-up of dnsbl-cache (and of the client) "
          "first wakes a halted vCPU, which on this VM takes tens of us of the hypervisor's; "
          "busy: a nice-19 busy loop per CPU keeps them running, as on a server with work to do.")


def run(scale, only, tree_cpu_seconds):
    """The dnsbl rows selected by `only` (empty or "dnsbl": all, dnsbl/latency included);
    prints their tables."""
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
    rows, latency = [], None
    try:
        for label, rbl, sources in rows_wanted:
            if only and "dnsbl" not in only and label not in only:
                continue
            print(f"running {label} ...", file=sys.stderr, flush=True)
            rows.append(one_row(label, server, rbl, sources, tree_cpu_seconds))
        if not only or "dnsbl" in only or "dnsbl/latency" in only:
            if LATENCY_HELPER.exists():
                print("running dnsbl/latency ...", file=sys.stderr, flush=True)
                latency = {"idle": lookup_latency(server, scale)}
                with BusyCpus():
                    latency["busy"] = lookup_latency(server, scale)
            else:
                print(f"\ndnsbl/latency skipped: {LATENCY_HELPER} is not built "
                      "(cmake --build build)")
    finally:
        server.cleanup()
    if rows:
        print_rows(rows, connections)
    if latency:
        print_latency(latency)


def print_rows(rows, connections):
    """The table of the connection rows."""
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
