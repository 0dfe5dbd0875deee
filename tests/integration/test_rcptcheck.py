# qmail-md's rcptcheck over real sessions (issue 6 item 4; spec qmail-protocols.md §6.4, seed
# README.antispam): control/rcptcheck or RCPTCHECK names a real program, run by pluginrunner
# for each RCPT with SENDER, RECIPIENT and the session environment; its exit status picks
# qmail-md's reply (each row of the table by a real script), refusals are tarpitted, a 421
# ends the session, failures (unknown codes, crashes, timeouts) are 451. Each test asserts
# the replies, what the script saw, what reached the queue and the log lines.
import pwd
import threading
import time

from conftest import IS_ROOT, QUEUED_RE, SERVICE_USERS, wait_for

MESSAGE = "Subject: rcptcheck\r\n\r\nbody\r\n"

# The check program: the exit status is in the recipient's local part ("code-11@..."),
# "sleep" sleeps, "crash" kills itself; it records what it saw in out/rcptcheck.<pid> (cwd is
# qmail_home) and logs a line like the seed's mysqlcheck script.
RCPTCHECK = r"""#!/bin/sh
{ env; echo "CWD=$(pwd -P)"; echo "UID=$(id -u)"; } > "out/rcptcheck.$$.tmp"
mv "out/rcptcheck.$$.tmp" "out/rcptcheck.$$"
local=${RECIPIENT%%@*}
case "$local" in
  code-*) code=${local#code-} ;;
  sleep) exec sleep 60 ;;
  slow) sleep 2; code=0 ;;
  crash) kill -9 $$ ;;
  *) code=0 ;;
esac
echo "mysqlcheck: pid $$ <$SENDER> to <$RECIPIENT> (code:$code)" >&2
exit "$code"
"""

# RCPTCHECK from tcprules names this one: it refuses everything (code 1), and says so.
OTHER = r"""#!/bin/sh
echo "other check: <$RECIPIENT>" >&2
exit 1
"""

# qmail-md's table (seed README.antispam), code -> the reply line.
TABLE = {
    1: "553 5.1.1 sorry, no mailbox here by that name.",
    2: "421 4.3.0 unable to verify recipient/sender (misuse)",
    3: "421 4.3.0 unable to verify recipient/sender (internal)",
    11: "451 4.1.1 bad destination mailbox address",
    12: "451 4.1.2 bad destination system address",
    13: "451 4.1.3 bad destination mailbox address syntax",
    14: "451 4.1.4 destination mailbox address ambiguous",
    16: "451 4.1.6 mailbox has moved",
    17: "451 4.1.7 bad sender's mailbox address syntax",
    18: "451 4.1.8 bad sender's system address",
    21: "452 4.2.1 mailbox disabled, not accepting messages",
    22: "452 4.2.2 mailbox full",
    111: "421 4.3.0 unable to verify recipient/sender (temporary)",
    112: "421 4.3.0 unable to verify recipient/sender (greylisting)",
}
FAILED = "451 4.3.0 unable to verify recipient/sender (failure)"
ACCEPTED = "250 2.1.5 ok"


def checked_instance(make_sppd, control=None, **options):
    """An instance whose control/rcptcheck names plugins/rcptcheck (RCPTCHECK above)."""
    return make_sppd(control={"rcptcheck": "plugins/rcptcheck", "tarpitdelay": "0",
                              **(control or {})},
                     plugins={"rcptcheck": RCPTCHECK, "other": OTHER}, **options)


def rcpt_once(sppd, recipient, source=None, sender="alice@client.test"):
    """A new session, MAIL and one RCPT; returns (reply line, whether the server closed)."""
    with sppd.connect(source=source) as c:
        c.cmd("EHLO client.test")
        c.expect(f"MAIL FROM:<{sender}>", "250 2.1.0 ok")
        reply = c.cmd(f"RCPT TO:<{recipient}>")
        if reply.code == 421:
            c.expect_closed()
            return reply.line, True
        c.expect("NOOP", "250 2.0.0 ok")
        return reply.line, False


def runs(sppd):
    """What the check program recorded, one dict per run (oldest first)."""
    found = []
    for path in sppd.out_dir.glob("rcptcheck.*"):
        if path.suffix == ".tmp":
            continue
        env = {}
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                env[key] = value
        found.append((path.stat().st_mtime_ns, env))
    return [env for _, env in sorted(found, key=lambda item: item[0])]


def wait_log(sppd, text):
    return wait_for(lambda: text in sppd.log(), 10, f"log line containing {text!r}")


def test_every_exit_code_of_qmail_mds_table(make_sppd):
    sppd = checked_instance(make_sppd)
    for code, expected in TABLE.items():
        reply, closed = rcpt_once(sppd, f"code-{code}@example.com")
        assert reply == expected, f"exit {code}"
        assert closed == expected.startswith("421 "), f"exit {code}: 421 closes, nothing else"
    for code in (0, 100):
        assert rcpt_once(sppd, f"code-{code}@example.com") == (ACCEPTED, False)
    # The seed's log lines: the script's own, the verdict, the tarpit.
    wait_log(sppd, "mysqlcheck: pid ")
    wait_log(sppd, "rcptcheck: <alice@client.test> to <code-1@example.com> not okay (code:1)")
    wait_log(sppd, "TARPIT: <alice@client.test> to <code-22@example.com> | helo(client.test) | "
                   "rcptcheck code 22")
    wait_log(sppd, "rcptcheck plugins/rcptcheck pid ")
    assert len(runs(sppd)) == len(TABLE) + 2


def test_only_accepted_recipients_reach_the_queue(make_sppd):
    sppd = checked_instance(make_sppd)
    with sppd.connect() as c:
        c.cmd("EHLO client.test")
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<code-0@example.com>", ACCEPTED)
        c.expect("RCPT TO:<code-1@example.com>", TABLE[1])
        c.expect("RCPT TO:<code-21@example.com>", TABLE[21])
        c.expect("RCPT TO:<code-100@example.com>", ACCEPTED)
        c.expect("DATA", "354 go ahead")
        c.send(MESSAGE + ".\r\n")
        assert QUEUED_RE.match(c.read_reply().line)
    (msg,) = sppd.wait_messages(1)
    assert msg.recipients == ["code-0@example.com", "code-100@example.com"]


def test_unknown_codes_crashes_and_timeouts_are_temporary_failures(make_sppd):
    sppd = checked_instance(make_sppd, pluginrunner={"plugin_timeout": "2"})
    for recipient in ("code-5@example.com", "code-120@example.com", "crash@example.com"):
        assert rcpt_once(sppd, recipient) == (FAILED, False), recipient
    start = time.monotonic()
    assert rcpt_once(sppd, "sleep@example.com") == (FAILED, False)
    assert 1.5 < time.monotonic() - start < 10, "plugin_timeout (2 s) ends a hanging check"
    wait_log(sppd, "exit code 5 is not in qmail-md's table")
    wait_log(sppd, "rcptcheck <alice@client.test> to <crash@example.com> failed:")
    # No TARPIT for our own failures: only the program's verdicts are the client's fault.
    assert "| rcptcheck code 5" not in sppd.log()


def test_the_program_sees_sender_recipient_and_the_session_environment(make_sppd):
    sppd = checked_instance(make_sppd, tcprules='127.0.0.2:allow,FOO="from tcprules"\n')
    with sppd.connect(source="127.0.0.2") as c:
        c.cmd("EHLO client.test")
        c.expect("MAIL FROM:<>", "250 2.1.0 ok")
        c.expect("RCPT TO:<Bob@Example.com>", ACCEPTED)
    (env,) = runs(sppd)
    assert env["SENDER"] == ""
    assert env["RECIPIENT"] == "Bob@Example.com"
    assert env["TCPREMOTEIP"] == "127.0.0.2"
    assert env["FOO"] == "from tcprules"
    assert env["PROTO"] == "TCP"
    assert env["CWD"] == str(sppd.dir)  # qmail_home, as plugins
    if IS_ROOT:
        assert env["UID"] == str(pwd.getpwnam(SERVICE_USERS["pluginrunner"]).pw_uid)


def test_rcptcheck_from_tcprules_and_relay_clients(make_sppd):
    sppd = checked_instance(
        make_sppd,
        tcprules='127.0.0.3:allow,RCPTCHECK="plugins/other"\n'
                 '127.0.0.4:allow,RCPTCHECK=""\n'
                 '127.0.0.5:allow,RELAYCLIENT=""\n'
                 '127.0.0.6:allow,RELAYCLIENT="",RCPTCHECKRELAYCLIENT=""\n')
    # RCPTCHECK wins over control/rcptcheck.
    assert rcpt_once(sppd, "code-0@example.com", source="127.0.0.3") == (TABLE[1], False)
    wait_log(sppd, "other check: <code-0@example.com>")
    assert runs(sppd) == []
    # Set but empty: no check for that client.
    assert rcpt_once(sppd, "code-1@example.com", source="127.0.0.4") == (ACCEPTED, False)
    # Relay clients are checked only with RCPTCHECKRELAYCLIENT.
    assert rcpt_once(sppd, "code-1@elsewhere.test", source="127.0.0.5") == (ACCEPTED, False)
    assert runs(sppd) == []
    assert rcpt_once(sppd, "code-1@elsewhere.test", source="127.0.0.6") == (TABLE[1], False)
    assert [env["RECIPIENT"] for env in runs(sppd)] == ["code-1@elsewhere.test"]


def test_without_a_program_nothing_runs(make_sppd):
    sppd = checked_instance(make_sppd, control={"rcptcheck": None})
    assert rcpt_once(sppd, "code-1@example.com") == (ACCEPTED, False)
    assert runs(sppd) == []


def test_refusal_is_tarpitted_and_a_slow_check_holds_up_no_other_session(make_sppd):
    sppd = checked_instance(make_sppd, control={"tarpitdelay": "1"})
    with sppd.connect() as c:
        c.cmd("EHLO client.test")
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        start = time.monotonic()
        c.expect("RCPT TO:<code-1@example.com>", TABLE[1])
        assert time.monotonic() - start >= 1.0
    slow = {}

    def slow_session():
        with sppd.connect() as c:
            c.cmd("EHLO client.test")
            c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
            c.expect("RCPT TO:<slow@example.com>", ACCEPTED)  # the program sleeps 2 s
            slow["done"] = time.monotonic()

    thread = threading.Thread(target=slow_session)
    thread.start()
    wait_for(lambda: any(env.get("RECIPIENT") == "slow@example.com" for env in runs(sppd)), 10,
             "the slow check to start")
    assert rcpt_once(sppd, "code-0@example.com") == (ACCEPTED, False)
    fast_done = time.monotonic()
    thread.join(15)
    assert slow.get("done"), "the slow session did not finish"
    assert fast_done < slow["done"], "the fast session waited for the slow check"
