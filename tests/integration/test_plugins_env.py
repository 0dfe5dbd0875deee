# What a qmail-spp plugin process sees (spec/qmail-spp.md §3, §4): fd 0 closed, fd 1 a pipe,
# fd 2 the log, nothing else open, cwd = qmail home, its own process group, SIGPIPE ignored
# and nothing else; the session environment with the SMTP* variables at their exact values
# and times (trailing blanks of HELO, parsed addresses, recipients without the RELAYCLIENT
# suffix, the stale SMTPRCPTCOUNT at DATA), which qmail-queue inherits too; NOSPP and
# SPPCONFFILE from tcprules. One instance for the file; clients differ by source address.
import os

import pytest

from conftest import (EHLO_LINES, GREETING, QUEUED_RE, RELAY_REFUSED, SPP_CLIENTS,
                      start_plugin_instance, wait_for)

SIGPIPE_BIT = 1 << (13 - 1)
SESSION_VARIABLES = {"PROTO", "TCPLOCALIP", "TCPLOCALPORT", "TCPREMOTEIP", "TCPREMOTEPORT"}


@pytest.fixture(scope="module")
def spp(module_factory):
    return start_plugin_instance(module_factory)


def probes_everywhere():
    """A C say plugin in every section, recording only."""
    sections = ["connection", "helo", "mail", "rcpt", "data"]
    text = "".join(f"[{s}]\nplugins/{s}\n" for s in sections)
    return text, {s: "say.c" for s in sections}


def test_plugin_process_descriptors_directory_group_and_signals(spp):
    spp.use_plugins(*probes_everywhere())
    with spp.connect() as c:
        client_port = c.local_port
        c.expect("EHLO client.test", *EHLO_LINES)
        reply = c.transaction("alice@client.test", ["bob@example.com"], b"Subject: x\r\n\r\nx\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
    runners = set(spp.pids("sppd-pluginrunner"))
    assert runners, "no sppd-pluginrunner among the master's children"
    for section in ("connection", "helo", "mail", "rcpt", "data"):
        (run,) = spp.plugin_runs(section)
        what = f"[{section}] plugin"
        # fd 0 closed (not /dev/null), fd 1 and fd 2 two different pipes, nothing else.
        assert sorted(run.fds) == [1, 2], f"{what} has descriptors {run.fds}"
        assert run.fds[1].startswith("pipe:") and run.fds[2].startswith("pipe:"), run.fds
        assert run.fds[1] != run.fds[2], f"{what}: stdout and stderr are the same pipe"
        assert run.cwd == str(spp.dir), f"{what} runs in {run.cwd}, not qmail_home"
        assert run.argv == [f"plugins/{section}"]
        assert run.ids["ppid"] in runners, f"{what}: parent {run.ids['ppid']} is not a runner"
        assert run.ids["pgid"] == run.ids["pid"], f"{what} is not in its own process group"
        assert run.signals["SigIgn"] == SIGPIPE_BIT, \
            f"{what} ignores signal mask {run.signals['SigIgn']:#x}, expected SIGPIPE only"
        assert run.signals["SigBlk"] == 0, \
            f"{what} starts with blocked signals {run.signals['SigBlk']:#x}"
        assert run.env["TCPREMOTEPORT"] == str(client_port)
    # The session environment, and of sppd's own only where dnsbl-cache answers (rblspp
    # asks there), not SPPD_SERVICE and the like.
    conn = spp.plugin_runs("connection")[0].env
    assert set(conn) == SESSION_VARIABLES | {"PATH", "SPPD_DNSBL_SOCKET"}, sorted(conn)
    assert conn["SPPD_DNSBL_SOCKET"] == str(spp.dnsbl_socket)
    assert conn["PROTO"] == "TCP"
    assert conn["TCPREMOTEIP"] == "127.0.0.1"
    assert conn["TCPLOCALIP"] == "127.0.0.1"
    assert conn["TCPLOCALPORT"] == str(spp.port)
    assert conn["PATH"]


def test_smtp_variables_exact_values_and_timing(spp):
    spp.use_plugins(*probes_everywhere())
    with spp.connect() as c:
        # Leading blanks skipped, trailing blanks kept, case kept.
        c.expect("EHLO  Foo.Example ", *EHLO_LINES)
        c.expect('MAIL FROM:<"john doe"@Example.COM> SIZE=100', "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("RCPT TO:<carol@elsewhere.test>", RELAY_REFUSED)
        c.expect("RCPT TO:<@relay.test:dave@Mail.Example.NET>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: env\r\n\r\nx\r\n.\r\n")
        first = c.read_reply()
        assert QUEUED_RE.match(first.line), first.line
        # A second transaction: the counters start again; the null sender is "".
        c.expect("MAIL FROM:<>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: env 2\r\n\r\nx\r\n.\r\n")
        second = c.read_reply()
        assert QUEUED_RE.match(second.line), second.line

    (conn,) = spp.plugin_runs("connection")
    assert "SMTPHELOHOST" not in conn.env
    (helo,) = spp.plugin_runs("helo")
    assert helo.env["SMTPHELOHOST"] == "Foo.Example "
    assert "SMTPMAILFROM" not in helo.env
    mail1, mail2 = spp.plugin_runs("mail")
    assert mail1.env["SMTPMAILFROM"] == "john doe@Example.COM"
    assert "SMTPRCPTTO" not in mail1.env
    assert mail2.env["SMTPMAILFROM"] == ""

    def counters(run):
        return {k: run.env.get(k) for k in
                ("SMTPRCPTTO", "SMTPRCPTCOUNT", "SMTPRCPTCOUNTALL", "SMTPRCPTHOSTSOK")}
    rcpts = spp.plugin_runs("rcpt")
    assert [counters(r) for r in rcpts] == [
        # COUNT = recipients accepted before this one; COUNTALL includes this one and the
        # refused ones; HOSTSOK = the rcpthosts verdict for this one.
        {"SMTPRCPTTO": "bob@example.com", "SMTPRCPTCOUNT": "0", "SMTPRCPTCOUNTALL": "1",
         "SMTPRCPTHOSTSOK": "1"},
        {"SMTPRCPTTO": "carol@elsewhere.test", "SMTPRCPTCOUNT": "1", "SMTPRCPTCOUNTALL": "2",
         "SMTPRCPTHOSTSOK": "0"},
        {"SMTPRCPTTO": "dave@Mail.Example.NET", "SMTPRCPTCOUNT": "1", "SMTPRCPTCOUNTALL": "3",
         "SMTPRCPTHOSTSOK": "1"},
        {"SMTPRCPTTO": "bob@example.com", "SMTPRCPTCOUNT": "0", "SMTPRCPTCOUNTALL": "1",
         "SMTPRCPTHOSTSOK": "1"},
    ]
    data1, data2 = spp.plugin_runs("data")
    # At DATA the count is stale (2 accepted -> "1"), as plugins like bounce limiters expect.
    assert counters(data1) == {"SMTPRCPTTO": "dave@Mail.Example.NET", "SMTPRCPTCOUNT": "1",
                               "SMTPRCPTCOUNTALL": "3", "SMTPRCPTHOSTSOK": "1"}
    assert data1.env["SMTPHELOHOST"] == "Foo.Example "
    assert data1.env["SMTPMAILFROM"] == "john doe@Example.COM"
    assert counters(data2)["SMTPRCPTCOUNT"] == "0"
    # qmail-queue inherits the same variables.
    queue_env = spp.env_of_queue(first)
    for key, value in counters(data1).items():
        assert queue_env[key] == value, key
    assert queue_env["SMTPHELOHOST"] == "Foo.Example "
    assert queue_env["SMTPMAILFROM"] == "john doe@Example.COM"
    msg1, msg2 = spp.wait_messages(2)
    assert msg1.return_path == "john doe@Example.COM"
    assert msg1.recipients == ["bob@example.com", "dave@Mail.Example.NET"]
    assert msg2.return_path == ""


def test_recipient_without_relayclient_suffix(spp):
    # RELAYCLIENT="@fixme": qmail appends it to the envelope recipient after the plugins ran;
    # plugins see the address as given, and SMTPRCPTHOSTSOK=1 for a relay client.
    spp.use_plugins("[rcpt]\nplugins/rcpt\n", {"rcpt": "say.c"})
    with spp.connect(source=SPP_CLIENTS["relayclient"]) as c:
        reply = c.transaction("alice", ["bob", "carol@elsewhere.test"], b"Subject: r\r\n\r\nx\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
    runs = spp.plugin_runs("rcpt")
    assert [r.env["SMTPRCPTTO"] for r in runs] == ["bob", "carol@elsewhere.test"]
    assert [r.env["SMTPRCPTHOSTSOK"] for r in runs] == ["1", "1"]
    assert runs[0].env["RELAYCLIENT"] == "@fixme"
    (msg,) = spp.wait_messages(1)
    assert msg.recipients == ["bob@fixme", "carol@elsewhere.test@fixme"]


def test_nospp_set_but_empty_turns_plugins_off(spp):
    text, plugins = probes_everywhere()
    plugins["connection"] = ("say.c", "E554 5.7.1 plugins ran despite NOSPP\n")
    spp.use_plugins(text, plugins)
    with spp.connect(source=SPP_CLIENTS["nospp"]) as c:
        assert c.greeting.lines == GREETING
        c.expect("EHLO client.test", *EHLO_LINES)
        reply = c.transaction("alice@client.test", ["bob@example.com"], b"Subject: n\r\n\r\nx\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
    for section in plugins:
        assert spp.plugin_runs(section) == [], f"[{section}] plugin ran with NOSPP set"
    # The SMTP variables are exported all the same (qmail-queue sees them).
    env = spp.env_of_queue(reply)
    assert env["NOSPP"] == ""
    assert env["SMTPHELOHOST"] == "client.test"
    assert env["SMTPRCPTCOUNT"] == "0"
    assert env["SMTPRCPTCOUNTALL"] == "1"
    assert env["SMTPRCPTHOSTSOK"] == "1"


@pytest.mark.parametrize("client,expected", [
    ("other_file", "P220-from control/otherplugins"),
    ("absolute_file", "P220-from an absolute SPPCONFFILE"),
    ("empty_file", "P220-from control/smtpplugins"),  # SPPCONFFILE="": the default file
    (None, "P220-from control/smtpplugins"),
])
def test_sppconffile_from_tcprules_picks_the_file(spp, client, expected):
    spp.use_plugins("[connection]\nplugins/default\n",
                    {"default": ("say.c", "P220-from control/smtpplugins\n"),
                     "other": ("say.sh", "P220-from control/otherplugins\n"),
                     "absolute": ("say.py", "P220-from an absolute SPPCONFFILE\n")})
    spp.write_home_file("control/otherplugins", "[connection]\nplugins/other\n")
    spp.write_home_file("elsewhere/plugins.conf", "[connection]\nplugins/absolute\n")
    kwargs = {"source": SPP_CLIENTS[client]} if client else {}
    with spp.connect(**kwargs) as c:
        assert c.greeting.lines == [expected[1:], *GREETING]


def test_missing_plugin_file_means_no_plugins_and_a_warning(spp):
    spp.use_plugins(None)
    with spp.connect() as c:
        assert c.greeting.lines == GREETING
        reply = c.transaction("alice@client.test", ["bob@example.com"], b"Subject: m\r\n\r\nx\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
    with spp.connect(source=SPP_CLIENTS["missing_file"]) as c:  # used by this test only
        assert c.greeting.lines == GREETING
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")

    # A runner warns once per file (control/smtpplugins was missing when the instance
    # started, so that warning may be older than this test).
    def warned(name):
        return lambda: [line for line in spp.log().splitlines()
                        if "sppd-pluginrunner[" in line and "warning" in line and name in line]
    wait_for(warned("control/smtpplugins"), 10, "a warning naming control/smtpplugins")
    wait_for(warned("control/nosuchplugins"), 10, "a warning naming control/nosuchplugins")


def test_unreadable_plugin_file_is_421(spp):
    spp.use_plugins("[mail]\nplugins/none\n")
    (spp.dir / "control" / "plugindir").mkdir(exist_ok=True)  # reading a directory fails
    with spp.connect(source=SPP_CLIENTS["unreadable_file"]) as c:
        assert c.greeting.lines == ["421 4.3.0 unable to read controls"]
        assert c.expect_closed() == b""
    # Everybody else is fine.
    with spp.connect() as c:
        assert c.greeting.lines == GREETING


def test_set_variable_reaches_later_plugins_of_the_same_section(spp):
    # The runner applies S/U and C between the plugins of one request.
    first = "Sfirst=one\nUTCPREMOTEPORT\nCchanged@client.test\n"
    spp.use_plugins("[mail]\nplugins/first\nplugins/second\n",
                    {"first": ("say.sh", first), "second": "say.c"})
    with spp.connect() as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
    (second,) = spp.plugin_runs("second")
    assert second.env["first"] == "one"
    assert "TCPREMOTEPORT" not in second.env
    assert second.env["SMTPMAILFROM"] == "changed@client.test"
    assert os.path.basename(second.argv[0]) == "second"
