# TLS and SMTP AUTH rows of the sppd benchmark (called by bench.py; bench/README.md):
#  - TLS handshakes/s, implicit TLS (the 465 listener) and STARTTLS, TLS 1.3 and 1.2, ECDHE
#    (X25519) with the harness's ECDSA P-256 certificate: each connection does the handshake,
#    reads the greeting, says QUIT and closes; server CPU per handshake.
#  - AUTH PLAIN transactions/s through a checkpassword program (sppd-test-checkpassword,
#    exec'ing /bin/true): connect, EHLO, AUTH PLAIN, MAIL, RCPT, DATA on the null queue,
#    QUIT; the same sessions without AUTH as the baseline, so the difference is what one
#    login costs (authd, the checkpassword spawn and its exec of /bin/true).
#  - smtpd memory per TLS session: N sessions held open after EHLO, the workers' VmRSS with
#    them minus without; the same for plaintext sessions.
# The clients are Python threads on the same two cores: read the rates as relative numbers
# and the CPU per operation as the figure that matters.
import shutil
import socket
from pathlib import Path

import conftest  # the integration harness (bench.py puts it on sys.path)
from parallel import THREADS, run_threads



def start(options, prepare=None):
    """A fresh sppd (the harness's temp dir); prepare(sppd) may edit it before the start."""
    sppd = conftest.Sppd({"glob": {"log_level": "warning", "drain_timeout": "30"},
                          "control": {"databytes": "0"}, **options})
    if prepare:
        prepare(sppd)
    return sppd.start()


def tls_rows(scale, tree_cpu_seconds):
    handshakes = max(50, int(2000 * scale))
    sppd = start({"tls": True, "queue": str(Path(conftest.BIN_DIR) / "sppd-null-queue"),
                  "smtpd": {"processes": "2", "sessions_per_worker": "50"},
                  "extra_listeners": {"smtps": {"address": "127.0.0.1:{free}",
                                                "control_dir": "control",
                                                "remote_host_lookup": "no",
                                                "implicit_tls": "yes"}}})
    rows = []
    try:
        for mode in ("465", "starttls"):
            for version in ("TLSv1.3", "TLSv1.2"):
                def handshake(_):
                    if mode == "465":
                        c = conftest.SmtpConnection(*sppd.addresses["smtps"], tls=True,
                                                    tls_version=version)
                    else:
                        c = conftest.SmtpConnection(*sppd.addresses["smtp"])
                        c.starttls(version)
                    with c:
                        assert c.sock.version() == version
                        c.send(b"QUIT\r\n")
                        assert c.read_reply().code == 221
                cpu_before = tree_cpu_seconds(sppd.pid)
                seconds = run_threads(handshakes, handshake)
                cpu = tree_cpu_seconds(sppd.pid) - cpu_before
                rows.append({"label": f"tls/{mode}/{version[4:]}", "count": handshakes,
                             "seconds": seconds, "rate": handshakes / seconds,
                             "cpu_us": cpu * 1e6 / handshakes, "unit": "handshakes"})
    finally:
        sppd.stop()
        shutil.rmtree(sppd.dir, ignore_errors=True)
    return rows


def session_rss_rows(scale, tree_cpu_seconds):
    """kB of smtpd RSS per open session, TLS (1.3, after the handshake and EHLO) and plain."""
    sessions = max(20, int(400 * scale))
    # All the sessions come from 127.0.0.1: no per-IP limit (the default is 50).
    sppd = start({"tls": True,
                  "smtpd": {"processes": "2", "sessions_per_worker": str(sessions)},
                  "listener": {"max_connections_per_ip": "0"},
                  "extra_listeners": {"smtps": {"address": "127.0.0.1:{free}",
                                                "control_dir": "control",
                                                "remote_host_lookup": "no",
                                                "implicit_tls": "yes",
                                                "max_connections_per_ip": "0"}}})

    def workers_rss_kib():
        total = 0
        for pid in sppd.pids("sppd-smtpd"):
            total += int(conftest.proc_status(pid)["VmRSS"].split()[0])
        return total

    rows = []
    try:
        # Plaintext first: memory the TLS sessions' freed buffers leave in malloc's pools
        # would otherwise hide the plaintext sessions' own.
        for listener, tls in (("smtp", False), ("smtps", True)):
            idle = workers_rss_kib()
            held = []
            try:
                for _ in range(sessions):
                    c = conftest.SmtpConnection(*sppd.addresses[listener], tls=tls)
                    held.append(c)
                    assert c.cmd("EHLO client.test").code == 250
                busy = workers_rss_kib()
                peak = sum(conftest.vm_hwm_kib(pid) for pid in sppd.pids("sppd-smtpd"))
            finally:
                for c in held:
                    c.close()
            rows.append({"label": f"rss/{'tls' if tls else 'plain'}", "sessions": sessions,
                         "per_session_kib": (busy - idle) / sessions, "idle_kib": idle,
                         "busy_kib": busy, "peak_kib": peak})
    finally:
        sppd.stop()
        shutil.rmtree(sppd.dir, ignore_errors=True)
    return rows


def auth_rows(scale, tree_cpu_seconds):
    transactions = max(50, int(1000 * scale))

    def checkpassword(sppd):  # the C program alone, without the tests' recording wrapper
        sppd.authd["checkpassword"] = (f"{conftest.TEST_CHECKPASSWORD} {sppd.passwords_path} "
                                       "/bin/true")

    sppd = start({"passwords": {"alice": "wonderland"},
                  "queue": str(Path(conftest.BIN_DIR) / "sppd-null-queue"),
                  "control": {"databytes": "0", "auth/smtp": "63"},
                  "smtpd": {"processes": "2", "sessions_per_worker": "50"}}, checkpassword)
    rows = []
    try:
        for label, login in (("auth/none", False), ("auth/plain", True)):
            def transaction(_):
                with conftest.SmtpConnection(sppd.host, sppd.port) as c:
                    # The harness sends the body and the final dot in two writes: without
                    # TCP_NODELAY, Nagle and delayed ACKs would add 40 ms to each.
                    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    assert c.cmd("EHLO client.test").code == 250
                    if login:
                        reply = c.auth("PLAIN", "alice", "wonderland", initial=True)
                        assert reply.code == 235, reply.line
                    reply = c.transaction("alice@client.test", ["bob@example.com"],
                                          b"Subject: bench\r\n\r\nx\r\n")
                    assert reply.code == 250, reply.line
                    c.send(b"QUIT\r\n")
                    c.read_reply()
            cpu_before = tree_cpu_seconds(sppd.pid)
            seconds = run_threads(transactions, transaction)
            cpu = tree_cpu_seconds(sppd.pid) - cpu_before
            rows.append({"label": label, "count": transactions, "seconds": seconds,
                         "rate": transactions / seconds, "cpu_us": cpu * 1e6 / transactions,
                         "unit": "sessions"})
    finally:
        sppd.stop()
        shutil.rmtree(sppd.dir, ignore_errors=True)
    return rows


def run(scale, only, tree_cpu_seconds):
    """The TLS/AUTH rows selected by `only` (empty: all); prints their table."""
    def wanted(group):  # --only tls,auth,rss or any of their row labels
        return not only or any(o == group or o.startswith(group + "/") for o in only)

    rates, rss = [], []
    if wanted("tls"):
        rates += tls_rows(scale, tree_cpu_seconds)
    if wanted("auth"):
        rates += auth_rows(scale, tree_cpu_seconds)
    if wanted("rss"):
        rss += session_rss_rows(scale, tree_cpu_seconds)
    if not rates and not rss:
        return
    print(f"\nTLS and SMTP AUTH ({THREADS} client threads; TLS: ECDHE X25519, ECDSA P-256 "
          f"certificate; AUTH: sppd-test-checkpassword + /bin/true, null queue):")
    if rates:
        header = f"{'row':18} {'count':>7} {'secs':>7} {'per s':>8} {'server CPU us each':>19}"
        print(header)
        print("-" * len(header))
        for r in rates:
            print(f"{r['label']:18} {r['count']:>7} {r['seconds']:>7.2f} {r['rate']:>8.0f} "
                  f"{r['cpu_us']:>19.0f}")
        by_label = {r["label"]: r for r in rates}
        if "auth/none" in by_label and "auth/plain" in by_label:
            extra = by_label["auth/plain"]["cpu_us"] - by_label["auth/none"]["cpu_us"]
            print(f"  one AUTH PLAIN login costs the sppd tree {extra:.0f} us CPU (auth/plain "
                  f"minus auth/none: authd, the checkpassword spawn, its exec of /bin/true)")
        print("  tls/465 = implicit TLS; tls/starttls = plaintext greeting, STARTTLS, handshake; "
              "each connection: handshake, greeting, QUIT")
    for r in rss:
        print(f"  smtpd RSS per {r['label'][4:]} session: {r['per_session_kib']:.1f} kB "
              f"({r['sessions']} sessions held after EHLO: workers {r['idle_kib']} kB idle -> "
              f"{r['busy_kib']} kB; peak VmHWM {r['peak_kib']} kB)")
