# Pattern-file rows of the sppd benchmark (called by bench.py; bench/README.md): the same
# kept-connection workload on the null queue with many recipients per message, once with no
# pattern files and once with 200 regex lines in control/badmailfrom and 200 in
# control/badmailto (none of them matching, so every line is tried for every MAIL and RCPT:
# the worst case). Target (issue 6): the CPU per RCPT with the patterns stays within 10% of
# the CPU per RCPT without them.
import shutil
import sys
import time

import conftest  # the integration harness (bench.py puts it on sys.path)

RECIPIENTS = 10  # per message (smtp-source -r): most of the checking is per RCPT
PATTERNS = 200   # per file


def pattern_lines(kind):
    """PATTERNS realistic regex lines (anchors, classes, alternations, '!' lines) that match
    none of smtp-source's addresses (alice@client.test, <n>bob@example.com)."""
    lines = []
    for i in range(PATTERNS):
        shape = i % 5
        if shape == 0:
            lines.append(f"^{kind}{i}[0-9]+@")
        elif shape == 1:
            lines.append(f"@(mail|smtp|mx)[0-9]*\\.spam{i}\\.example$")
        elif shape == 2:
            lines.append(f"^[a-z]+\\.{kind}{i}@.*\\.invalid$")
        elif shape == 3:
            lines.append(f"(viagra|casino|lottery){i}")
        elif i == 4:
            lines.append("!@")  # an address without '@': none here
        else:
            lines.append(f"^.+@[0-9.]+\\.spam{i}$")
    return "\n".join(lines) + "\n"


def one_row(label, control, smtp_source, null_queue, tree_cpu_seconds, sessions, messages):
    sppd = conftest.Sppd({"queue": null_queue,
                          "glob": {"log_level": "warning", "drain_timeout": "30"},
                          "smtpd": {"processes": "2", "sessions_per_worker": "50"},
                          "queue_bridge": {"processes": "2"},
                          "control": {"databytes": "0", "maxrcpt": "0", **control}})
    try:
        sppd.start()
        cpu_before = tree_cpu_seconds(sppd.pid)
        started = time.monotonic()
        smtp_source(sppd, sessions, messages)
        elapsed = time.monotonic() - started
        cpu = tree_cpu_seconds(sppd.pid) - cpu_before
        return {"label": label, "messages": messages, "seconds": elapsed,
                "rate": messages / elapsed, "rcpt_rate": messages * RECIPIENTS / elapsed,
                "cpu_us_msg": cpu * 1e6 / messages}
    finally:
        sppd.stop()
        shutil.rmtree(sppd.dir, ignore_errors=True)


def run(scale, only, smtp_source, null_queue, tree_cpu_seconds):
    """The patterns rows (empty `only`, "patterns" or a row label selects them)."""
    sessions = 20
    messages = max(200, int(20000 * scale))
    rows_wanted = [
        ("patterns/none", {}),
        ("patterns/200+200", {"badmailfrom": pattern_lines("from"),
                              "badmailto": pattern_lines("to")}),
    ]
    rows = []
    for label, control in rows_wanted:
        if only and "patterns" not in only and label not in only:
            continue
        print(f"running {label} ...", file=sys.stderr, flush=True)
        rows.append(one_row(label, control, smtp_source, null_queue, tree_cpu_seconds,
                            sessions, messages))
    if not rows:
        return
    print(f"\nPattern files ({sessions} sessions, kept connections, {RECIPIENTS} recipients per "
          f"message, null queue; {PATTERNS} regex lines each in badmailfrom and badmailto, none "
          "matching):")
    header = (f"{'row':18} {'msgs':>6} {'secs':>6} {'msgs/s':>7} {'RCPT/s':>7} "
              f"{'CPU us/msg':>10} {'CPU us/RCPT':>11}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['label']:18} {r['messages']:>6} {r['seconds']:>6.2f} {r['rate']:>7.0f} "
              f"{r['rcpt_rate']:>7.0f} {r['cpu_us_msg']:>10.0f} "
              f"{r['cpu_us_msg'] / RECIPIENTS:>11.1f}")
    if len(rows) == 2:
        extra = rows[1]["cpu_us_msg"] / rows[0]["cpu_us_msg"] - 1
        print(f"  CPU with the patterns: {extra * 100:+.1f}% per message (target: within +10%). "
              "CPU = the whole sppd tree, qmail-queue included.")
