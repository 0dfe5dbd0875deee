# The seed's two qmail-spp setups, verbatim (seeds/000: Tomislav Randjic's page), with the
# plugins sppd ships (pluginrunner/plugins: authrequired, ifauthskip, authlogger):
#  I.  an MSA on its own port whose tcprules set SPPCONFFILE to control/msaplugins, which has
#      "[mail] plugins/authrequired": mail without SMTP AUTH is refused;
#  II. "[rcpt] plugins/ifauthskip" before ":plugins/rblspp -r ..." in control/smtpplugins: the
#      RBL plugin (here a recording stand-in) runs with those arguments unless the session is
#      authenticated. AUTH itself comes later: SMTPAUTHUSER is set through tcprules for now.
import os
import re
import subprocess

import pytest

from conftest import (EHLO_LINES, QUEUED_RE, SPP_CLIENTS, plugin_file, start_plugin_instance,
                      wait_for)

MSAPLUGINS = "[mail]\nplugins/authrequired\n"
SMTPPLUGINS = ("[rcpt]\n"
               "plugins/ifauthskip\n"
               ":plugins/rblspp -r relays.ordb.org -r list.dsbl.org -r dnsbl.njabl.org "
               "-r sbl.spamhaus.org -r bl.spamcop.net\n")
RBLSPP_ARGV = ["plugins/rblspp", "-r", "relays.ordb.org", "-r", "list.dsbl.org", "-r",
               "dnsbl.njabl.org", "-r", "sbl.spamhaus.org", "-r", "bl.spamcop.net"]
LISTED = "553 5.7.1 sorry, your address is listed (test rblspp)"


@pytest.fixture(scope="module")
def spp(module_factory):
    submission_rules = (
        '# the MSA: its own plugin file, as in the seed (SPPCONFFILE in the tcp.* rules)\n'
        f'{SPP_CLIENTS["authenticated"]}:allow,SPPCONFFILE="control/msaplugins",'
        'SMTPAUTHUSER="alice"\n'
        ':allow,SPPCONFFILE="control/msaplugins"\n')
    return start_plugin_instance(
        module_factory,
        extra_listeners={"submission": {"address": "127.0.0.1:{free}", "control_dir": "control",
                                        "tcprules": "tcp.submission",
                                        "remote_host_lookup": "no"}},
        home_files={"tcp.submission": submission_rules, "control/msaplugins": MSAPLUGINS},
        smtpplugins=SMTPPLUGINS,
        plugins={"authrequired": "seed/authrequired", "ifauthskip": "seed/ifauthskip",
                 "rblspp": ("say.c", f"E{LISTED}\n")})


def fresh(spp):
    """Forget earlier tests' records and messages, keep the seed's files."""
    spp.use_plugins(SMTPPLUGINS, {"authrequired": "seed/authrequired",
                                  "ifauthskip": "seed/ifauthskip",
                                  "rblspp": ("say.c", f"E{LISTED}\n")})


def test_msa_refuses_mail_without_auth(spp):
    fresh(spp)
    runners = set(spp.pids("sppd-pluginrunner"))
    log_before = len(spp.log())
    with spp.connect("submission") as c:
        c.expect("EHLO client.test", *EHLO_LINES)
        c.expect("MAIL FROM:<alice@client.test>", "550 SMTP AUTH required")
        c.expect("MAIL FROM:<alice@client.test>", "550 SMTP AUTH required")
        c.expect("QUIT", "221 2.0.0 mx.sppd.test")
    # authrequired logs on stderr with its parent's pid: the runner that spawned it.
    pattern = re.compile(r"sppd-pluginrunner\[([0-9]+)\]: plugin plugins/authrequired session "
                         r"\S+: authrequired: pid ([0-9]+) - message rejected, SMTP AUTH "
                         r"required\.$", re.MULTILINE)
    found = wait_for(lambda: pattern.findall(spp.log()[log_before:]), 10,
                     "authrequired's log line")
    for logged_by, ppid in found:
        assert logged_by == ppid and int(ppid) in runners, found
    assert spp.plugin_runs("rblspp") == []  # port 25's plugins do not apply here


def test_msa_accepts_authenticated_mail(spp):
    fresh(spp)
    with spp.connect("submission", source=SPP_CLIENTS["authenticated"]) as c:
        c.expect("EHLO client.test", *EHLO_LINES)
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: submitted\r\n\r\nx\r\n.\r\n")
        reply = c.read_reply()
        assert QUEUED_RE.match(reply.line), reply.line
    assert spp.env_of_queue(reply)["SPPCONFFILE"] == "control/msaplugins"
    (msg,) = spp.wait_messages(1)
    assert msg.recipients == ["bob@example.com"]


def test_rbl_plugin_runs_with_its_arguments_for_unauthenticated_clients(spp):
    fresh(spp)
    with spp.connect() as c:
        c.expect("EHLO client.test", *EHLO_LINES)
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", LISTED)
        c.expect("RCPT TO:<carol@example.com>", LISTED)
    runs = spp.plugin_runs("rblspp")
    assert [r.argv for r in runs] == [RBLSPP_ARGV, RBLSPP_ARGV]
    assert [r.env["SMTPRCPTTO"] for r in runs] == ["bob@example.com", "carol@example.com"]


def test_ifauthskip_skips_the_rbl_plugin_for_authenticated_clients(spp):
    fresh(spp)
    with spp.connect(source=SPP_CLIENTS["authenticated"]) as c:
        c.expect("EHLO client.test", *EHLO_LINES)
        reply = c.transaction("alice@client.test", ["bob@example.com"],
                              b"Subject: skipped\r\n\r\nx\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
    assert spp.plugin_runs("rblspp") == []
    (msg,) = spp.wait_messages(1)
    assert msg.recipients == ["bob@example.com"]


def run_seed_program(name, env):
    return subprocess.run([str(plugin_file(f"seed/{name}"))], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=10)


@pytest.mark.parametrize("user,refused", [(None, True), ("", True), ("alice", False)])
def test_authrequired_program(user, refused):
    # The shipped program on its own: no or an empty SMTPAUTHUSER is not authenticated.
    env = {"PATH": "/usr/bin:/bin"} if user is None else {"SMTPAUTHUSER": user}
    result = run_seed_program("authrequired", env)
    if refused:
        assert result.stdout == "E550 SMTP AUTH required\n"
        assert result.stderr == \
            f"authrequired: pid {os.getpid()} - message rejected, SMTP AUTH required.\n"
    else:
        assert result.stdout == ""
    assert result.returncode != 120


@pytest.mark.parametrize("user,stdout", [(None, ""), ("", ""), ("alice", "N\n")])
def test_ifauthskip_program(user, stdout):
    env = {"PATH": "/usr/bin:/bin"} if user is None else {"SMTPAUTHUSER": user}
    result = run_seed_program("ifauthskip", env)
    assert result.stdout == stdout
    assert result.returncode != 120


def test_authlogger_program():
    env = {"SMTPAUTHUSER": "alice", "SMTPAUTHMETHOD": "plain", "TCPREMOTEIP": "192.0.2.7"}
    result = run_seed_program("authlogger", env)
    assert result.stdout == ""
    assert result.stderr == f"authlogger: pid {os.getpid()} - user alice authenticated with " \
                            "plain from 192.0.2.7\n"
    assert result.returncode != 120
