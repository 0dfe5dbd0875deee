# Virus-scanning rows of the sppd benchmark (called by bench.py; bench/README.md): the same
# kept-connection workload on the null queue, 4 KiB messages, once without control/clamd and
# once with every message scanned by a real clamd (Debian's clamav-daemon, started in the
# foreground by the tests' harness, tests/integration/clamd_server.py: a one-signature
# database made at start, its Unix socket in a temp dir; no download). clamd's log (LogClean)
# counts the scans: a row whose scans differ from its messages is marked MISMATCH.
import os
import shutil
import sys
import time

import clamd_server  # the tests' clamd (bench.py puts tests/integration on sys.path)
import conftest  # the integration harness

SESSIONS = 20


def clamd_cpu_seconds(clamd):
    """utime+stime of the clamd process (its scanning threads included)."""
    fields = conftest.proc_stat(clamd.process.pid)
    return sum(int(x) for x in fields[11:13]) / os.sysconf("SC_CLK_TCK")


def one_row(label, clamd, smtp_source, null_queue, tree_cpu_seconds, messages):
    control = {"databytes": "0"}
    if clamd:
        control["clamd"] = clamd.socket_path
    sppd = conftest.Sppd({"queue": null_queue,
                          "glob": {"log_level": "warning", "drain_timeout": "30"},
                          "smtpd": {"processes": "2", "sessions_per_worker": "50"},
                          "queue_bridge": {"processes": "2"},
                          "control": control})
    try:
        sppd.start()
        scans_before = clamd.scans() if clamd else 0
        clamd_before = clamd_cpu_seconds(clamd) if clamd else 0.0
        cpu_before = tree_cpu_seconds(sppd.pid)
        started = time.monotonic()
        smtp_source(sppd, SESSIONS, messages)
        elapsed = time.monotonic() - started
        cpu = tree_cpu_seconds(sppd.pid) - cpu_before
        row = {"label": label, "messages": messages, "seconds": elapsed,
               "rate": messages / elapsed, "cpu_us": cpu * 1e6 / messages,
               "clamd_cpu_us": None, "scans": None}
        if clamd:
            row["clamd_cpu_us"] = (clamd_cpu_seconds(clamd) - clamd_before) * 1e6 / messages
            # clamd logs a scan after answering it: give the last lines a moment.
            deadline = time.monotonic() + 10
            while clamd.scans() - scans_before < messages and time.monotonic() < deadline:
                time.sleep(0.05)
            row["scans"] = clamd.scans() - scans_before
        if "CLAMD" in sppd.log():
            raise RuntimeError(f"{label}: sppd logged a clamd problem:\n{sppd.log_tail(20)}")
        return row
    finally:
        sppd.stop()
        shutil.rmtree(sppd.dir, ignore_errors=True)


def run(scale, only, smtp_source, null_queue, tree_cpu_seconds, size):
    """The clamd rows (empty `only`, "clamd" or a row label selects them)."""
    wanted = [label for label in ("clamd/none", "clamd/scan")
              if not only or "clamd" in only or label in only]
    if not wanted:
        return
    if not clamd_server.installed():
        print("\nclamd rows skipped: clamd not installed (Debian package clamav-daemon, "
              "scripts/install-deps.sh)")
        return
    messages = max(200, int(4000 * scale))
    clamd = clamd_server.Clamd(max_threads=SESSIONS).start()
    try:
        rows = []
        for label in wanted:
            print(f"running {label} ...", file=sys.stderr, flush=True)
            rows.append(one_row(label, clamd if label == "clamd/scan" else None, smtp_source,
                                null_queue, tree_cpu_seconds, messages))
        version = clamd_server.command(clamd.socket_path, b"VERSION")
    finally:
        clamd.cleanup()
    print(f"\nVirus scanning ({SESSIONS} sessions, kept connections, {size}-byte messages, null "
          f"queue; {(version or b'clamd').decode(errors='replace')} on its Unix socket, one "
          "signature, MaxThreads 20):")
    header = (f"{'row':12} {'msgs':>6} {'secs':>6} {'msgs/s':>7} {'sppd CPU us/msg':>15} "
              f"{'clamd CPU us/msg':>16} {'scans':>6}")
    print(header)
    print("-" * len(header))
    for r in rows:
        clamd_cpu = f"{r['clamd_cpu_us']:.0f}" if r["clamd_cpu_us"] is not None else "-"
        scans = "-" if r["scans"] is None else str(r["scans"])
        mark = "" if r["scans"] in (None, r["messages"]) else "  MISMATCH"
        print(f"{r['label']:12} {r['messages']:>6} {r['seconds']:>6.2f} {r['rate']:>7.0f} "
              f"{r['cpu_us']:>15.0f} {clamd_cpu:>16} {scans:>6}{mark}")
    if len(rows) == 2:
        bare, scanned = rows
        print(f"  with clamd: {scanned['rate'] / bare['rate'] * 100 - 100:+.0f}% msgs/s; sppd "
              f"CPU {scanned['cpu_us'] - bare['cpu_us']:+.0f} us per message (queue-bridge's "
              f"connect, the worker's INSTREAM), clamd {scanned['clamd_cpu_us']:.0f} us per "
              "scan. CPU = the whole sppd tree, qmail-queue included; clamd apart.")
