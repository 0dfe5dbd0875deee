#!/usr/bin/python3
# sppd benchmark driver (run through bench/run.sh). Starts sppd from the build dir in a temp
# dir (the integration tests' harness, tests/integration/conftest.py) on loopback, drives it
# with Postfix's smtp-source (never Postfix itself) and a small latency client, and prints
# one table: msgs/s, per-transaction latency, server CPU per message, peak RSS per program,
# plus the cost of one spawn+wait of the null queue, and what one qmail-spp plugin run costs
# (rows spp0/spp6) next to a bare vfork+execve+waitpid loop of the same plugin, then the TLS
# and SMTP AUTH rows (bench/tls_auth.py) and the DNSBL rows (bench/dnsbl.py). Every count is
# bounded (BENCH_SCALE).
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE_DIR = HERE.parent
os.environ.setdefault("SPPD_BIN_DIR", str(SOURCE_DIR / "build" / "bin"))
sys.path.insert(0, str(SOURCE_DIR / "tests" / "integration"))
import conftest  # noqa: E402  (the integration harness: Sppd, /proc helpers)
import tls_auth  # noqa: E402  (the TLS and AUTH rows)
import dnsbl  # noqa: E402  (the DNSBL rows)
import patterns  # noqa: E402  (the pattern-file rows)
import virus_scan  # noqa: E402  (the clamd rows)

SMTP_SOURCE = "/usr/sbin/smtp-source"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(master_pid):
    """utime+stime+cutime+cstime of the master and every live descendant: the CPU the whole
    sppd tree used so far, including children already reaped (folded into their parent's
    cutime/cstime by wait)."""
    total = 0
    for pid in [master_pid, *conftest.descendants_of(master_pid)]:
        try:
            fields = conftest.proc_stat(pid)
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])
    return total / CLOCK_TICKS


class PeakRss:
    """{program: highest VmHWM in kB} over the master and its descendants, sampled every
    quarter second during a run (rarely, so the sampler costs the 2 cores next to nothing;
    short-lived qmail-queue processes are caught only by chance)."""

    def __init__(self, master_pid):
        self.master_pid = master_pid
        self.peaks = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def sample(self):
        for pid in [self.master_pid, *conftest.descendants_of(self.master_pid)]:
            name = conftest.proc_name(pid)
            kib = conftest.vm_hwm_kib(pid)
            if name and kib:
                self.peaks[name] = max(self.peaks.get(name, 0), kib)

    def run(self):
        while not self.stop.wait(0.25):
            self.sample()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.sample()


def run_smtp_source(sppd, sessions, messages, keep_connection, size, recipients=1):
    cmd = [SMTP_SOURCE, "-s", str(sessions), "-m", str(messages), "-l", str(size),
           "-M", "client.test", "-f", "alice@client.test", "-t", "bob@example.com",
           "-r", str(recipients)]
    if keep_connection:
        cmd.append("-d")
    cmd.append(f"inet:{sppd.host}:{sppd.port}")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): "
                           f"{result.stdout[-2000:]}{result.stderr[-2000:]}")


def run_latency_client(sppd, transactions, size):
    """One session, one pipelined transaction at a time; returns per-transaction seconds."""
    body = b"Subject: latency\r\n\r\n" + (b"x" * 62 + b"\r\n") * (size // 64) + b".\r\n"
    envelope = b"MAIL FROM:<alice@client.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n"
    latencies = []
    with conftest.SmtpConnection(sppd.host, sppd.port, timeout=60) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert c.cmd("EHLO client.test").code == 250
        for _ in range(transactions):
            started = time.perf_counter()
            c.send(envelope)
            replies = c.read_replies(3)
            assert [r.code for r in replies] == [250, 250, 354], replies
            c.send(body)
            reply = c.read_reply()
            latencies.append(time.perf_counter() - started)
            assert reply.code == 250, reply.line
        c.cmd("QUIT")
    return latencies


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def null_queue_program(workdir):
    return str(Path(os.environ["SPPD_BIN_DIR"]) / "sppd-null-queue")


def spawn_cost(workdir, program, runs, plugin=False, use_vfork=True):
    """One spawn+wait of program from a small process: with vfork + execve as sppd starts its
    children (common/spawn.cpp), or with posix_spawn."""
    binary = Path(workdir) / "spawn-cost"
    if not binary.exists():
        subprocess.run(["cc", "-O2", "-o", str(binary), str(HERE / "spawn_cost.c")], check=True)
    cmd = [str(binary), *(["-p"] if plugin else []), *(["-v"] if use_vfork else []), str(runs),
           program]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600).stdout
    return {k: float(v) for k, v in (kv.split("=") for kv in out.split())}


# The plugin rows: the same trivial C plugin (tests/integration/plugins/noop.c: no output,
# exit 0) three times at MAIL and three times at RCPT, so 6 plugin runs per transaction.
PLUGINS_PER_SECTION = 3
PLUGIN_RUNS_PER_TRANSACTION = 2 * PLUGINS_PER_SECTION


def noop_plugin(workdir):
    target = Path(workdir) / "noop-plugin"
    subprocess.run(["cc", "-O2", "-o", str(target),
                    str(SOURCE_DIR / "tests" / "integration" / "plugins" / "noop.c")], check=True)
    return str(target)


def plugin_options(noop, count):
    """Sppd options for the spp<N> rows: N noop plugins split over [mail] and [rcpt]."""
    if count == 0:
        return {"smtpplugins": "# no plugins\n"}
    names = [f"noop{i}" for i in range(1, count // 2 + 1)]
    text = "".join(f"[{section}]\n" + "".join(f"plugins/{n}\n" for n in names)
                   for section in ("mail", "rcpt"))
    return {"smtpplugins": text, "plugins": {n: noop for n in names}}


def one_run(label, queue_cmd, smtpd, workload, counts, size, plugins=None):
    """Starts a fresh sppd, runs one workload, returns a result row."""
    sppd = conftest.Sppd({"queue": queue_cmd, "smtpd": smtpd,
                          "glob": {"log_level": "warning", "drain_timeout": "30"},
                          "control": {"databytes": "0"},
                          "pluginrunner": {"processes": "2"},
                          "queue_bridge": {"processes": "2"}, **(plugins or {})})
    try:
        sppd.start()
        maildir_before = len(sppd.new_files())
        cpu_before = tree_cpu_seconds(sppd.pid)
        started = time.monotonic()
        latencies = []
        with PeakRss(sppd.pid) as peaks:
            if workload == "a":
                messages = counts["a_sessions"] * counts["a_per_session"]
                run_smtp_source(sppd, counts["a_sessions"], messages, True, size)
            elif workload == "b":
                messages = counts["b_connections"]
                run_smtp_source(sppd, 20, messages, False, size)
            else:
                messages = counts["c_transactions"]
                latencies = run_latency_client(sppd, messages, size)
            elapsed = time.monotonic() - started
            cpu = tree_cpu_seconds(sppd.pid) - cpu_before
        rss = peaks.peaks
        if "maildir" in label:
            delivered = len(sppd.new_files()) - maildir_before
            if delivered != messages:
                raise RuntimeError(f"{label}: {delivered} of {messages} messages in the Maildir")
        return {"label": label, "workload": workload, "messages": messages, "seconds": elapsed,
                "rate": messages / elapsed, "p50": percentile(latencies, 50),
                "p99": percentile(latencies, 99), "cpu_us": cpu * 1e6 / messages, "rss": rss}
    finally:
        sppd.stop()
        shutil.rmtree(sppd.dir, ignore_errors=True)


WORKLOADS = {
    "a": "{a_sessions} sessions x {a_per_session} msgs, kept connections (smtp-source -d)",
    "b": "{b_connections} connections, 1 msg each, 20 at a time (smtp-source)",
    "c": "1 session, {c_transactions} transactions one at a time (latency client)",
}


def scaled(base, scale):
    return {k: max(1, int(v * scale)) if k != "a_sessions" else v for k, v in base.items()}


def print_plugin_cost(bare, with_plugins, spawn, spawn_runs):
    """The qmail-spp plugin block: sppd's marginal cost per plugin run (the spp6 row minus the
    spp0 row, per plugin run) next to the bare spawn loop of the same binary."""
    runs = with_plugins["messages"] * PLUGIN_RUNS_PER_TRANSACTION
    cpu_us = (with_plugins["cpu_us"] - bare["cpu_us"]) / PLUGIN_RUNS_PER_TRANSACTION
    wall_us = (with_plugins["seconds"] - bare["seconds"] * with_plugins["messages"] /
               bare["messages"]) * 1e6 / runs
    spawn_cpu = spawn["child_cpu_us"] + spawn["parent_cpu_us"]
    print(f"\nqmail-spp plugins ({PLUGINS_PER_SECTION} noop plugins at MAIL and "
          f"{PLUGINS_PER_SECTION} at RCPT, 20 sessions, 2 pluginrunners, {runs} plugin runs):")
    print(f"  transactions/s: {bare['rate']:.0f} without plugins, {with_plugins['rate']:.0f} with "
          f"{PLUGIN_RUNS_PER_TRANSACTION} plugin runs each")
    print(f"  sppd per plugin run: {cpu_us:.0f} us CPU (whole sppd tree incl. the plugin, minus "
          f"the same transactions without plugins), {wall_us:.0f} us wall (2 cores)")
    print(f"  bare vfork+execve+waitpid of the same binary, one process, fd 0 closed, stdout a "
          f"pipe ({spawn_runs} runs): {spawn['wall_us']:.0f} us wall, {spawn_cpu:.0f} us CPU "
          f"({spawn['child_cpu_us']:.0f} child + {spawn['parent_cpu_us']:.0f} parent)")
    ratio = cpu_us / spawn_cpu if spawn_cpu else float("nan")
    verdict = "ok" if ratio <= 1.3 else "OVER TARGET"
    print(f"  CPU per plugin run / bare spawn CPU = {ratio:.2f} (target <= 1.3: {verdict}); "
          f"wall per plugin run / bare spawn wall = {wall_us / spawn['wall_us']:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the default counts")
    parser.add_argument("--size", type=int, default=4096, help="message payload bytes")
    parser.add_argument("--only", default="",
                        help="comma list of row labels to run (tls, auth, rss, dnsbl: those "
                             "groups)")
    args = parser.parse_args()
    scale = float(os.environ.get("BENCH_SCALE", "1")) * (0.1 if args.quick else 1)

    if not Path(SMTP_SOURCE).exists():
        sys.exit(f"{SMTP_SOURCE} missing: install the postfix package (scripts/install-deps.sh); "
                 "the benchmark only uses its smtp-source tool")
    if not (Path(os.environ["SPPD_BIN_DIR"]) / "sppd-master").exists():
        sys.exit(f"no sppd-master in {os.environ['SPPD_BIN_DIR']}: build first (make build)")

    workdir = tempfile.mkdtemp(prefix="sppd-bench-")
    try:
        null_queue = null_queue_program(workdir)
        maildir_queue = f"{os.environ['SPPD_BIN_DIR']}/sppd-maildir-queue Maildir"
        null_counts = scaled({"a_sessions": 20, "a_per_session": 5000, "b_connections": 5000,
                              "c_transactions": 1000}, scale)
        # The Maildir queue fsyncs every message: fewer of them, same shapes.
        maildir_counts = scaled({"a_sessions": 20, "a_per_session": 500, "b_connections": 2000,
                                 "c_transactions": 500}, scale)
        configs = [("2x50", {"processes": "2", "sessions_per_worker": "50"}),
                   ("20x1", {"processes": "20", "sessions_per_worker": "1"})]
        queues = [("null", null_queue, null_counts), ("maildir", maildir_queue, maildir_counts)]
        only = set(filter(None, args.only.split(",")))

        print(f"sppd benchmark: {os.environ['SPPD_BIN_DIR']}, {os.cpu_count()} CPUs, "
              f"{args.size}-byte messages, loopback; workers = processes x sessions_per_worker")
        for queue, _, counts in queues:
            for key, text in WORKLOADS.items():
                print(f"  {queue:8} ({key}) {text.format(**counts)}")
        plugin_counts = scaled({"a_sessions": 20, "a_per_session": 150}, scale)
        print(f"  spp0/spp6 (a) {plugin_counts['a_sessions']} sessions x "
              f"{plugin_counts['a_per_session']} msgs on the null queue, kept connections, with "
              f"0 or {PLUGIN_RUNS_PER_TRANSACTION} noop plugin runs per transaction "
              f"({PLUGINS_PER_SECTION} at MAIL, {PLUGINS_PER_SECTION} at RCPT)")
        rows = []
        for queue, queue_cmd, counts in queues:
            for config_name, smtpd in configs:
                for workload in WORKLOADS:
                    label = f"{queue}/{config_name}/{workload}"
                    if only and label not in only:
                        continue
                    print(f"running {label} ...", file=sys.stderr, flush=True)
                    rows.append(one_run(label, queue_cmd, smtpd, workload, counts, args.size))
        noop = noop_plugin(workdir)
        for runs in (0, PLUGIN_RUNS_PER_TRANSACTION):
            label = f"spp{runs}/2x50/a"
            if only and label not in only:
                continue
            print(f"running {label} ...", file=sys.stderr, flush=True)
            rows.append(one_run(label, null_queue, configs[0][1], "a", plugin_counts, args.size,
                                plugin_options(noop, runs)))

        tls_auth_rows = {o for o in only if o.split("/")[0] in ("tls", "auth", "rss")}
        dnsbl_rows = {o for o in only if o.split("/")[0] == "dnsbl"}
        pattern_rows = {o for o in only if o.split("/")[0] == "patterns"}
        clamd_rows = {o for o in only if o.split("/")[0] == "clamd"}

        def smtp_source_rcpts(sppd, sessions, messages):
            run_smtp_source(sppd, sessions, messages, True, args.size, patterns.RECIPIENTS)

        def smtp_source_kept(sppd, sessions, messages):
            run_smtp_source(sppd, sessions, messages, True, args.size)
        if only and not rows:  # only TLS/AUTH and DNSBL rows asked for
            if tls_auth_rows:
                tls_auth.run(scale, tls_auth_rows, tree_cpu_seconds)
            if dnsbl_rows:
                dnsbl.run(scale, dnsbl_rows, tree_cpu_seconds)
            if pattern_rows:
                patterns.run(scale, pattern_rows, smtp_source_rcpts, null_queue, tree_cpu_seconds)
            if clamd_rows:
                virus_scan.run(scale, clamd_rows, smtp_source_kept, null_queue, tree_cpu_seconds,
                               args.size)
            return
        print()
        header = (f"{'queue/workers/load':22} {'msgs':>7} {'secs':>7} {'msgs/s':>8} {'p50 ms':>7} "
                  f"{'p99 ms':>7} {'CPU us/msg':>10}  peak RSS kB (master smtpd bridge dns "
                  f"runner queue)")
        print(header)
        print("-" * len(header))
        for r in rows:
            rss = r["rss"]
            rss_text = " ".join(str(rss.get(p, "-")) for p in (
                "sppd-master", "sppd-smtpd", "sppd-queue-bridge", "sppd-dnsbl-cache",
                "sppd-pluginrunner",
                "sppd-maildir-queue" if r["label"].startswith("maildir") else "sppd-null-queue"))
            p50 = f"{r['p50'] * 1e3:.2f}" if r["p50"] is not None else "-"
            p99 = f"{r['p99'] * 1e3:.2f}" if r["p99"] is not None else "-"
            print(f"{r['label']:22} {r['messages']:>7} {r['seconds']:>7.2f} {r['rate']:>8.0f} "
                  f"{p50:>7} {p99:>7} {r['cpu_us']:>10.0f}  {rss_text}")

        runs = max(100, int(2000 * scale))
        print(f"\nspawn+wait of {Path(null_queue).name} from a small process ({runs} runs), "
              "the floor under CPU us/msg:")
        for use_vfork, how in ((True, "vfork+execve, as sppd starts it"), (False, "posix_spawn")):
            cost = spawn_cost(workdir, null_queue, runs, use_vfork=use_vfork)
            print(f"  {how:32} {cost['wall_us']:.0f} us wall, {cost['child_cpu_us']:.0f} us "
                  f"child CPU, {cost['parent_cpu_us']:.0f} us parent CPU per run")
        by_label = {r["label"]: r for r in rows}
        bare, with_plugins = by_label.get("spp0/2x50/a"), by_label.get(
            f"spp{PLUGIN_RUNS_PER_TRANSACTION}/2x50/a")
        if bare and with_plugins:
            print_plugin_cost(bare, with_plugins, spawn_cost(workdir, noop, runs, plugin=True),
                              runs)
        print("CPU us/msg = user+sys of sppd-master and all its descendants (live ones plus those "
              "reaped, via cutime/cstime) during the run, divided by the messages sent; it "
              "includes qmail-queue.")
        if not only or tls_auth_rows:
            tls_auth.run(scale, tls_auth_rows, tree_cpu_seconds)
        if not only or dnsbl_rows:
            dnsbl.run(scale, dnsbl_rows, tree_cpu_seconds)
        if not only or pattern_rows:
            patterns.run(scale, pattern_rows, smtp_source_rcpts, null_queue, tree_cpu_seconds)
        if not only or clamd_rows:
            virus_scan.run(scale, clamd_rows, smtp_source_kept, null_queue, tree_cpu_seconds,
                           args.size)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
