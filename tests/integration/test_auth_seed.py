# The seed's submission setups (seeds/000) with real SMTP AUTH instead of the tcprules
# stand-in of test_plugins_seed.py, and `make run`'s submission listener:
#  I.   an MSA port whose tcprules set SPPCONFFILE=control/msaplugins ("[mail]
#       plugins/authrequired"): mail without AUTH is refused, a login lets it through;
#  II.  port 25 with "[rcpt] plugins/ifauthskip" before the RBL plugin: the RBL plugin runs
#       for anonymous clients only;
#  III. authlogger in [auth] logs who logged in;
#  IV.  etc/sppd.conf's 2587: require_tls and require_auth on the listener itself.
import re

import pytest

from conftest import QUEUED_RE, Reply, swaks, wait_for

RBLSPP = ":plugins/rblspp -r relays.ordb.org -r sbl.spamhaus.org -r bl.spamcop.net\n"
SMTPPLUGINS = "[rcpt]\nplugins/ifauthskip\n" + RBLSPP + "[auth]\nplugins/authlogger\n"
MSAPLUGINS = "[mail]\nplugins/authrequired\n[auth]\nplugins/authlogger\n"
LISTED = "553 5.7.1 sorry, your address is listed (test rblspp)"
PLUGINS = {"authrequired": "seed/authrequired", "ifauthskip": "seed/ifauthskip",
           "authlogger": "seed/authlogger", "rblspp": ("say.c", f"E{LISTED}\n")}
EHLO_HEAD = ["250-mx.sppd.test", "250-PIPELINING", "250-8BITMIME", "250-SIZE 10485760"]
AUTH_ALL = "250-AUTH LOGIN PLAIN CRAM-MD5 CRAM-SHA1 CRAM-RIPEMD"
MESSAGE = b"Subject: submitted\r\n\r\nx\r\n"


def listener(**settings):
    return {"address": "127.0.0.1:{free}", "control_dir": "control",
            "remote_host_lookup": "no", **settings}


@pytest.fixture(scope="module")
def seed(module_factory):
    return module_factory(
        tls=True, queue="envdump", passwords={"alice": "wonderland"},
        pluginrunner={"processes": "2"},
        home_files={"tcp.submission": ':allow,SPPCONFFILE="control/msaplugins"\n',
                    "control/msaplugins": MSAPLUGINS},
        smtpplugins=SMTPPLUGINS, plugins=PLUGINS,
        extra_listeners={
            "msa": listener(tcprules="tcp.submission"),
            "submission": listener(tcprules="tcp.submission", require_tls="yes",
                                   require_auth="yes")})


@pytest.fixture
def instance(seed):
    seed.use_plugins(SMTPPLUGINS, PLUGINS)
    return seed


def authlogger_lines(instance, since=0):
    pattern = re.compile(r"^sppd-pluginrunner\[[0-9]+\]: plugin plugins/authlogger session \S+: "
                         r"authlogger: pid [0-9]+ - user (\S+) authenticated with (\S+) from "
                         r"(\S+)$", re.MULTILINE)
    return pattern.findall(instance.log()[since:])


def test_msa_refuses_mail_without_auth(instance):
    with instance.connect("msa") as c:
        c.expect("EHLO client.test", *EHLO_HEAD, "250-STARTTLS",
                 "250-AUTH CRAM-MD5 CRAM-SHA1 CRAM-RIPEMD", "250 ENHANCEDSTATUSCODES")
        c.expect("MAIL FROM:<alice@client.test>", "550 SMTP AUTH required")


@pytest.mark.parametrize("options,method", [(["--tls", "--auth", "PLAIN"], "plain"),
                                            (["--auth", "CRAM-MD5"], "cram-md5")])
def test_msa_accepts_mail_after_auth(instance, options, method):
    before = len(instance.log())
    result = swaks(instance, "msa", *options, "--auth-user", "alice", "--auth-password",
                   "wonderland", "--to", "friend@elsewhere.test")
    assert result.returncode == 0, result.stdout + result.stderr
    (msg,) = instance.wait_messages(1)
    assert msg.recipients == ["friend@elsewhere.test"]
    queued = re.search(r"250 2\.6\.0 ok [0-9]+ qp [0-9]+", result.stdout).group(0)
    env = instance.env_of_queue(Reply(250, [queued]))
    assert env["SPPCONFFILE"] == "control/msaplugins"
    assert env["SMTPAUTHUSER"] == "alice" and env["SMTPAUTHMETHOD"] == method
    found = wait_for(lambda: authlogger_lines(instance, before), 10, "authlogger's line")
    assert found == [("alice", method, "127.0.0.1")]
    assert instance.plugin_runs("rblspp") == []


def test_port25_runs_the_rbl_plugin_for_anonymous_clients(instance):
    with instance.connect() as c:
        c.cmd("EHLO client.test")
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", LISTED)
    (run,) = instance.plugin_runs("rblspp")
    assert run.argv == ["plugins/rblspp", "-r", "relays.ordb.org", "-r", "sbl.spamhaus.org",
                        "-r", "bl.spamcop.net"]


def test_port25_skips_the_rbl_plugin_after_auth(instance):
    before = len(instance.log())
    with instance.connect() as c:
        c.cmd("EHLO client.test")
        assert c.auth("CRAM-MD5", "alice", "wonderland").lines == ["235 2.7.0 ok, go ahead"]
        reply = c.transaction("alice@client.test", ["bob@example.com", "friend@elsewhere.test"],
                              MESSAGE)
        assert QUEUED_RE.match(reply.line), reply.line
    assert instance.plugin_runs("rblspp") == []
    (msg,) = instance.wait_messages(1)
    assert msg.recipients == ["bob@example.com", "friend@elsewhere.test"]
    found = wait_for(lambda: authlogger_lines(instance, before), 10, "authlogger's line")
    assert found == [("alice", "cram-md5", "127.0.0.1")]


def test_submission_requires_tls_then_auth(instance):
    # etc/sppd.conf's 127.0.0.1:2587: nothing before STARTTLS, no MAIL before AUTH.
    with instance.connect("submission") as c:
        c.expect("EHLO client.test", *EHLO_HEAD, "250-STARTTLS", "250 ENHANCEDSTATUSCODES")
        c.expect("AUTH PLAIN", "538 5.7.11 encryption required for requested authentication "
                 "mechanism")
        c.expect("MAIL FROM:<alice@client.test>", "530 5.7.0 must issue a STARTTLS command first")
        c.starttls()
        c.expect("EHLO client.test", *EHLO_HEAD, AUTH_ALL, "250 ENHANCEDSTATUSCODES")
        c.expect("MAIL FROM:<alice@client.test>", "530 5.7.0 authentication required")
        assert c.auth("LOGIN", "alice", "wonderland").lines == ["235 2.7.0 ok, go ahead"]
        reply = c.transaction("alice@client.test", ["friend@elsewhere.test"], MESSAGE)
        assert QUEUED_RE.match(reply.line), reply.line
        cipher = c.cipher
    (msg,) = instance.wait_messages(1)
    assert msg.received.group("proto").decode() == \
        f"ESMTPSA ({cipher[0]} encrypted, authenticated)"
    assert msg.received.group("ip") == b"alice@127.0.0.1"


def test_submission_with_swaks(instance):
    result = swaks(instance, "submission", "--tls", "--auth", "PLAIN", "--auth-user", "alice",
                   "--auth-password", "wonderland", "--to", "friend@elsewhere.test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(instance.wait_messages(1)) == 1
    refused = swaks(instance, "submission", "--tls", "--to", "friend@elsewhere.test")
    assert refused.returncode != 0
    assert "530 5.7.0 authentication required" in refused.stdout
