# SMTP AUTH (RFC 4954) through authd and a real checkpassword program: what EHLO offers per
# control/auth/smtp(s) and oldauth, every mechanism (PLAIN with and without initial
# response, LOGIN, CRAM-MD5, CRAM-SHA1, CRAM-RIPEMD) with raw sockets, swaks and smtplib,
# the exact error replies (538, 501, 503, 504, 535, 454), over-long lines, the failure
# delay, brute-force blocking without running checkpassword, authd killed and restarted,
# check timeouts, the [auth] plugins, and what success gives: relaying, SMTPAUTHUSER and
# friends, `(user@ip)` and ESMTPA/ESMTPSA in the Received line.
# checkpassword here is recordpw (tests/integration/auth: logs each run to
# out/checkpassword.log) in front of sppd-test-checkpassword over <dir>/passwords.
# Failures count per client IP and per user in authd, so each test that fails a login
# uses its own source address and user names.
import base64
import os
import re
import signal
import smtplib
import time

import pytest

from conftest import (QUEUED_RE, RELAY_REFUSED, Reply, b64, cram_response, expect_received,
                      swaks, tls_client_context, wait_for)

PASSWORDS = {"alice": "wonderland", "bob": "builder", "blocked": "blocked-password",
             "slowalice": "wonderland", "slowbob": "builder", "carol": "carol-password",
             "dave": "dave-password", "mallory": "mallory-password", "trudy": "trudy-password"}
CHECK_TIMEOUT = 2  # [service authd] check_timeout
DELAY = 2          # control-delay/auth/delay

EHLO_HEAD = ["250-mx.sppd.test", "250-PIPELINING", "250-8BITMIME", "250-SIZE 10485760"]
EHLO_TAIL = "250 ENHANCEDSTATUSCODES"
AUTH_PLAINTEXT = "250-AUTH CRAM-MD5 CRAM-SHA1 CRAM-RIPEMD"  # control/auth/smtp default 60
AUTH_ALL = "250-AUTH LOGIN PLAIN CRAM-MD5 CRAM-SHA1 CRAM-RIPEMD"  # smtps default 63
EHLO_SMTP = [*EHLO_HEAD, "250-STARTTLS", AUTH_PLAINTEXT, EHLO_TAIL]
EHLO_SMTP_TLS = [*EHLO_HEAD, AUTH_ALL, EHLO_TAIL]
EHLO_PLAINAUTH = [*EHLO_HEAD, AUTH_ALL, "250-AUTH=LOGIN PLAIN CRAM-MD5 CRAM-SHA1 CRAM-RIPEMD",
                  EHLO_TAIL]
EHLO_AUTHENTICATED = [*EHLO_HEAD, EHLO_TAIL]
OK = "235 2.7.0 ok, go ahead"
BAD = "535 5.7.8 authentication failed"
TEMP = "454 4.7.0 temporary authentication failure"
MALFORMED = "501 5.5.2 malformed auth input"
CANCELED = "501 5.0.0 auth exchange canceled"
NEED_TLS = "538 5.7.11 encryption required for requested authentication mechanism"
UNKNOWN = "504 5.5.4 auth type unimplemented"
BLOCKED = "554 5.7.1 account blocked by policy"
MECHANISMS = ["PLAIN", "LOGIN", "CRAM-MD5", "CRAM-SHA1", "CRAM-RIPEMD"]
MESSAGE = b"Subject: auth\r\n\r\nauthenticated\r\n"

AUTHGATE = f"""#!/bin/sh
# [auth] plugin of the AUTH tests: refuses the account "blocked".
[ "$SMTPAUTHUSER" = blocked ] && echo "E{BLOCKED}"
exit 0
"""
SMTPPLUGINS = "[auth]\nplugins/authgate\nplugins/authsay\n[mail]\nplugins/mailsay\n"


def control_dir(name, **auth):
    """Files of a second control directory: the defaults of conftest, the plugins and
    control/auth/*."""
    files = {f"{name}/me": "sppd.test\n", f"{name}/smtpgreeting": "mx.sppd.test\n",
             f"{name}/rcpthosts": "example.com\n.example.net\n",
             f"{name}/databytes": "10485760\n", f"{name}/smtpplugins": SMTPPLUGINS}
    files.update({f"{name}/auth/{key}": f"{value}\n" for key, value in auth.items()})
    return files


def listener(**settings):
    return {"address": "127.0.0.1:{free}", "control_dir": "control",
            "remote_host_lookup": "no", **settings}


@pytest.fixture(scope="module")
def auth(module_factory):
    """smtp: STARTTLS, default bitmasks; smtps: implicit TLS; plainauth: no TLS, every
    mechanism offered in plaintext (auth/smtp 63, with DIGEST-MD5's bit) and oldauth;
    delayed: as plainauth with auth/delay; submission: require_tls and require_auth."""
    return module_factory(
        tls=True, queue="envdump", passwords=PASSWORDS,
        authd={"check_timeout": str(CHECK_TIMEOUT)},
        home_files={**control_dir("control-plain", smtp=63, oldauth=1),
                    **control_dir("control-delay", smtp=63, delay=DELAY)},
        smtpplugins=SMTPPLUGINS,
        plugins={"authgate": AUTHGATE, "authsay": "say.c", "mailsay": "say.c"},
        extra_listeners={
            "smtps": listener(implicit_tls="yes"),
            "plainauth": listener(control_dir="control-plain", tls_certificate="nocert.pem"),
            "delayed": listener(control_dir="control-delay", tls_certificate="nocert.pem"),
            "submission": listener(require_tls="yes", require_auth="yes")})


@pytest.fixture
def instance(auth):
    auth.forget_records()
    return auth


def runs_of(instance, user):
    return [run for run in instance.checkpassword_runs() if run["user"] == user]


def authenticated(instance, listener="plainauth", mechanism="PLAIN", user="alice",
                  source=None):
    """A session on `listener` (TLS first on smtp/submission) that logged in."""
    c = instance.connect(listener, source=source, tls=listener == "smtps")
    if listener in ("smtp", "submission"):
        c.cmd("EHLO client.test")
        c.starttls()
    c.cmd("EHLO client.test")
    reply = c.auth(mechanism, user, PASSWORDS[user])
    assert reply.lines == [OK], f"{mechanism} {user}: {reply.line}"
    return c


# ---------------------------------------------------------------------------------------------
# What EHLO offers

def test_ehlo_offers_auth_per_bitmask_and_tls(instance):
    with instance.connect() as c:
        c.expect("EHLO client.test", *EHLO_SMTP)
        c.starttls()
        c.expect("EHLO client.test", *EHLO_SMTP_TLS)
        assert c.auth("PLAIN", "alice", "wonderland").lines == [OK]
        c.expect("EHLO client.test", *EHLO_AUTHENTICATED)  # nothing more to offer
    with instance.connect("smtps", tls=True) as c:
        c.expect("EHLO client.test", *EHLO_SMTP_TLS)
    with instance.connect("plainauth") as c:
        # 63 includes DIGEST-MD5's bit 32: never offered (RFC 6331), never accepted.
        c.expect("EHLO client.test", *EHLO_PLAINAUTH)
        c.expect("AUTH DIGEST-MD5", UNKNOWN)
    with instance.connect("submission") as c:
        c.expect("EHLO client.test", *EHLO_HEAD, "250-STARTTLS", EHLO_TAIL)  # no AUTH yet
        c.starttls()
        c.expect("EHLO client.test", *EHLO_SMTP_TLS)


# ---------------------------------------------------------------------------------------------
# Every mechanism, raw

@pytest.mark.parametrize("mechanism,initial", [
    ("PLAIN", True), ("PLAIN", False), ("LOGIN", False), ("LOGIN", True),
    ("CRAM-MD5", False), ("CRAM-SHA1", False), ("CRAM-RIPEMD", False)])
def test_mechanism(instance, mechanism, initial):
    with instance.connect("plainauth") as c:
        c.expect("EHLO client.test", *EHLO_PLAINAUTH)
        assert c.auth(mechanism, "bob", "builder", initial=initial).lines == [OK]
        # Authenticated users relay: RELAYCLIENT="" (any domain, nothing appended).
        c.expect("MAIL FROM:<bob@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<friend@elsewhere.test>", "250 2.1.5 ok")
    method = mechanism.lower()
    for plugin in ("authsay", "mailsay"):
        (run,) = instance.plugin_runs(plugin)
        assert run.env["SMTPAUTHUSER"] == "bob", plugin
        assert run.env["SMTPAUTHMETHOD"] == method, plugin
    (run,) = runs_of(instance, "bob")
    # checkpassword's fd 3 (DECISIONS.md): user\0password\0timestamp\0, or for CRAM
    # user\0response\0challenge\0 (vchkpw and cmd5checkpw 0.30 order, the default).
    assert run["ip"] == "127.0.0.1"
    user, secret, third = run["fields"]
    assert user == "bob"
    if mechanism.startswith("CRAM"):
        assert re.fullmatch(r"<[0-9a-f]+\.[0-9]+@mx\.sppd\.test>", third), third
        expected = cram_response(mechanism, b64(third), "bob", "builder")
        assert b64(f"bob {secret}") == expected
    else:
        assert secret == "builder"
        assert re.fullmatch(r"<[0-9]+\.[0-9]+\.[0-9]+@authd>", third), third


def test_plain_authzid_is_ignored(instance):
    with instance.connect("plainauth") as c:
        c.expect(f"AUTH PLAIN {b64('postmaster' + chr(0) + 'alice' + chr(0) + 'wonderland')}", OK)
    (run,) = instance.plugin_runs("authsay")
    assert run.env["SMTPAUTHUSER"] == "alice"
    assert [r["fields"][:2] for r in instance.checkpassword_runs()] == [["alice", "wonderland"]]


def test_cram_challenges_are_fresh(instance):
    challenges = set()
    with instance.connect("plainauth") as c:
        for _ in range(3):
            reply = c.cmd("AUTH CRAM-MD5")
            assert reply.code == 334
            challenge = base64.b64decode(reply.line[4:]).decode()
            assert re.fullmatch(r"<[0-9a-f]{16}\.[0-9]+@mx\.sppd\.test>", challenge), challenge
            challenges.add(challenge)
            c.expect("*", CANCELED)
    assert len(challenges) == 3


# ---------------------------------------------------------------------------------------------
# Real clients

@pytest.mark.parametrize("name,options,mechanism", [
    ("smtp", ["--tls"], "PLAIN"),
    ("smtp", ["--tls"], "LOGIN"),
    ("smtp", [], "CRAM-MD5"),
    ("smtps", ["--tlsc"], "CRAM-SHA1"),
    ("submission", ["--tls"], "PLAIN")])
def test_swaks(instance, name, options, mechanism):
    result = swaks(instance, name, *options, "--auth", mechanism, "--auth-user", "alice",
                   "--auth-password", "wonderland", "--to", "friend@elsewhere.test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert OK in result.stdout
    (msg,) = instance.wait_messages(1)
    assert msg.recipients == ["friend@elsewhere.test"]
    assert msg.received.group("ip") == b"alice@127.0.0.1"
    proto = msg.received.group("proto").decode()
    if options:
        assert re.fullmatch(r"ESMTPSA \(\S+ encrypted, authenticated\)", proto), proto
    else:
        assert proto == "ESMTPA"


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_smtplib_starttls_and_login(instance, mechanism):
    host, port = instance.addresses["smtp"]
    with smtplib.SMTP(host, port, local_hostname="client.test", timeout=15) as client:
        client.starttls(context=tls_client_context())
        client.ehlo()
        client.user, client.password = "alice", "wonderland"
        method = {"PLAIN": client.auth_plain, "LOGIN": client.auth_login,
                  "CRAM-MD5": client.auth_cram_md5}[mechanism]
        assert client.auth(mechanism, method) == (235, b"2.7.0 ok, go ahead")
        cipher = client.sock.cipher()
        assert client.mail("alice@client.test")[0] == 250
        assert client.rcpt("friend@elsewhere.test")[0] == 250
        code, text = client.data(MESSAGE)
    queued = Reply(code, [f"{code} {text.decode()}"])
    assert QUEUED_RE.match(queued.line), queued.line
    env = instance.env_of_queue(queued)
    assert env["SMTPAUTHUSER"] == "alice"
    assert env["SMTPAUTHMETHOD"] == mechanism.lower()
    assert env["TCPREMOTEINFO"] == "alice"
    assert env["RELAYCLIENT"] == ""
    assert env["SSL_CIPHER"] == cipher[0]
    (msg,) = instance.wait_messages(1)
    expect_received(msg, ip="alice@127.0.0.1",
                    proto=f"ESMTPSA ({cipher[0]} encrypted, authenticated)")


def test_smtplib_login_picks_a_mechanism(instance):
    # smtplib.login() tries CRAM-MD5, then PLAIN, then LOGIN: over TLS it takes CRAM-MD5.
    host, port = instance.addresses["smtps"]
    with smtplib.SMTP_SSL(host, port, local_hostname="client.test", timeout=15,
                          context=tls_client_context()) as client:
        assert client.login("alice", "wonderland") == (235, b"2.7.0 ok, go ahead")
        assert client.docmd("AUTH", "PLAIN " + b64("\0alice\0wonderland")) == \
            (503, b"5.5.1 you're already authenticated")
    (run,) = runs_of(instance, "alice")
    assert run["fields"][2].endswith("@mx.sppd.test>")  # a CRAM challenge


def test_esmtpa_without_tls(instance):
    with authenticated(instance, "plainauth", "CRAM-MD5") as c:
        reply = c.transaction("alice@client.test", ["friend@elsewhere.test"], MESSAGE)
        assert QUEUED_RE.match(reply.line), reply.line
    (msg,) = instance.wait_messages(1)
    expect_received(msg, ip="alice@127.0.0.1", proto="ESMTPA")


# ---------------------------------------------------------------------------------------------
# Error replies

def test_encryption_required(instance):
    with instance.connect() as c:
        c.expect("EHLO client.test", *EHLO_SMTP)
        c.expect(f"AUTH PLAIN {b64(chr(0) + 'alice' + chr(0) + 'wonderland')}", NEED_TLS)
        c.expect("AUTH LOGIN", NEED_TLS)
        c.expect("AUTH PLAIN", NEED_TLS)
        c.expect("NOOP", "250 2.0.0 ok")
    with instance.connect("submission") as c:
        c.expect("EHLO client.test", *EHLO_HEAD, "250-STARTTLS", EHLO_TAIL)
        c.expect("AUTH CRAM-MD5", NEED_TLS)  # require_tls: nothing before STARTTLS
        c.expect("MAIL FROM:<alice@client.test>", "530 5.7.0 must issue a STARTTLS command first")
    assert instance.checkpassword_runs() == []


def test_malformed_canceled_and_unknown(instance):
    with instance.connect("plainauth", source="127.0.1.3") as c:
        c.expect("EHLO client.test", *EHLO_PLAINAUTH)
        c.expect("AUTH PLAIN !!!not-base64!!!", MALFORMED)
        c.expect("AUTH PLAIN", "334 ")
        c.expect("@@@@", MALFORMED)
        c.expect("AUTH PLAIN", "334 ")
        c.expect("", MALFORMED)  # an empty answer
        c.expect(f"AUTH PLAIN {b64(chr(0) + 'alice' + chr(0))}", MALFORMED)  # no password
        c.expect(f"AUTH PLAIN {b64('alice wonderland')}", MALFORMED)  # no NULs
        c.expect("AUTH PLAIN", "334 ")
        c.expect("*", CANCELED)
        c.expect("AUTH LOGIN", "334 VXNlcm5hbWU6")
        c.expect("*", CANCELED)
        c.expect("AUTH LOGIN", "334 VXNlcm5hbWU6")
        c.expect(b64("alice"), "334 UGFzc3dvcmQ6")
        c.expect("*", CANCELED)
        assert c.cmd("AUTH CRAM-MD5").code == 334
        c.expect("*", CANCELED)
        c.expect(f"AUTH CRAM-MD5 {b64('alice 0123')}", MALFORMED)  # no initial response
        c.expect("AUTH", UNKNOWN)
        c.expect("AUTH FOO", UNKNOWN)
        c.expect("AUTH DIGEST-MD5", UNKNOWN)
        c.expect("AUTH NTLM", UNKNOWN)
        c.expect("NOOP", "250 2.0.0 ok")
        assert c.auth("LOGIN", "alice", "wonderland").lines == [OK]
    # Only the last exchange reached checkpassword.
    assert [run["user"] for run in instance.checkpassword_runs()] == ["alice"]


def test_overlong_auth_lines(instance):
    before = instance.wait_pids("sppd-smtpd", 2)
    with instance.connect("plainauth", source="127.0.1.5") as c:
        c.expect("EHLO client.test", *EHLO_PLAINAUTH)
        huge = "A" * 10240
        c.expect(f"AUTH PLAIN {huge}", "500 5.5.2 line too long")
        c.expect("NOOP", "250 2.0.0 ok")
        c.expect("AUTH PLAIN", "334 ")
        c.expect(huge, "500 5.5.2 line too long")
        c.expect("NOOP", "250 2.0.0 ok")  # the exchange ended: a command again
        c.expect("AUTH LOGIN", "334 VXNlcm5hbWU6")
        c.expect(b64("alice"), "334 UGFzc3dvcmQ6")
        c.expect(huge, "500 5.5.2 line too long")
        c.expect("NOOP", "250 2.0.0 ok")
        # Fits maxcmdlen, but not checkpassword's 512 bytes: authd refuses it unrun.
        c.expect(f"AUTH PLAIN {b64(chr(0) + 'alice' + chr(0) + 'x' * 600)}", MALFORMED)
        assert c.auth("PLAIN", "alice", "wonderland").lines == [OK]
    assert [run["user"] for run in instance.checkpassword_runs()] == ["alice"]
    assert instance.wait_pids("sppd-smtpd", 2) == before


def test_already_authenticated_and_auth_inside_a_transaction(instance):
    with authenticated(instance) as c:
        c.expect("AUTH PLAIN", "503 5.5.1 you're already authenticated")
        c.expect("RSET", "250 2.0.0 flushed")
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")  # RSET keeps the login
        c.expect("RCPT TO:<friend@elsewhere.test>", "250 2.1.5 ok")
    with instance.connect("plainauth") as c:
        c.expect("EHLO client.test", *EHLO_PLAINAUTH)
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("AUTH PLAIN", "503 5.5.1 no auth during mail transaction")
        c.expect("RSET", "250 2.0.0 flushed")
        assert c.auth("PLAIN", "alice", "wonderland", initial=True).lines == [OK]


def test_auth_before_starttls_is_forgotten(instance):
    # RFC 3207 4.2: after the handshake the server is back in its initial state; a login
    # made in plaintext (perhaps by a man in the middle) must not carry over into TLS.
    with instance.connect() as c:
        c.expect("EHLO client.test", *EHLO_SMTP)
        assert c.auth("CRAM-MD5", "alice", "wonderland").lines == [OK]
        c.starttls()
        c.expect("EHLO client.test", *EHLO_SMTP_TLS)
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<friend@elsewhere.test>", RELAY_REFUSED)


def test_wrong_password(instance):
    with instance.connect("plainauth", source="127.0.1.1") as c:
        c.expect("EHLO client.test", *EHLO_PLAINAUTH)
        for mechanism in ("PLAIN", "LOGIN", "CRAM-MD5"):
            assert c.auth(mechanism, "carol", "not-her-password").lines == [BAD], mechanism
        assert c.auth("PLAIN", "nosuchuser", "whatever").lines == [BAD]
        c.expect("EHLO client.test", *EHLO_PLAINAUTH)  # still offered
        c.expect("MAIL FROM:<carol@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<friend@elsewhere.test>", RELAY_REFUSED)
    assert instance.plugin_runs("authsay") == []
    assert "SMTPAUTHUSER" not in instance.plugin_runs("mailsay")[0].env


def test_failure_is_answered_after_the_delay(instance):
    with instance.connect("delayed", source="127.0.1.2") as c, \
            instance.connect("delayed", source="127.0.1.2") as other:
        c.expect("EHLO client.test", *EHLO_HEAD, AUTH_ALL, EHLO_TAIL)
        started = time.monotonic()
        c.send(f"AUTH PLAIN {b64(chr(0) + 'dave' + chr(0) + 'wrong')}\r\n".encode())
        wait_for(lambda: runs_of(instance, "dave"), 10, "checkpassword to run for dave")
        # The delay is a timer in authd, nobody else waits for it.
        other.expect("NOOP", "250 2.0.0 ok")
        assert other.auth("PLAIN", "alice", "wonderland").lines == [OK]
        assert time.monotonic() - started < DELAY
        assert c.read_reply().lines == [BAD]
        elapsed = time.monotonic() - started
        assert DELAY - 0.05 <= elapsed <= DELAY + 5, f"535 after {elapsed:.2f}s, delay {DELAY}s"
        started = time.monotonic()
        assert c.auth("PLAIN", "dave", "dave-password").lines == [OK]
        assert time.monotonic() - started < DELAY, "a success is not delayed"


# ---------------------------------------------------------------------------------------------
# Brute force: failures per IP and per user lead to 454 without running checkpassword

def test_eleven_rapid_failures_per_ip_and_user(instance):
    with instance.connect("plainauth", source="127.0.2.1") as c:
        for attempt in range(10):
            assert c.auth("PLAIN", "mallory", f"guess{attempt}").lines == [BAD], attempt
        assert c.auth("PLAIN", "mallory", "guess10").lines == [TEMP]
        # Blocked is blocked, even with the right password.
        assert c.auth("PLAIN", "mallory", "mallory-password").lines == [TEMP]
        assert c.auth("CRAM-MD5", "mallory", "mallory-password").lines == [TEMP]
    assert len(runs_of(instance, "mallory")) == 10
    assert "plain user=mallory ip=127.0.2.1: temp (checkpassword not run" in instance.log()


def test_failures_from_one_ip_block_every_user_there(instance):
    with instance.connect("plainauth", source="127.0.2.2") as c:
        for n in range(10):
            assert c.auth("PLAIN", f"nobody{n}", "guess").lines == [BAD], n
        assert c.auth("PLAIN", "alice", "wonderland").lines == [TEMP]
    assert runs_of(instance, "alice") == []
    with instance.connect("plainauth", source="127.0.2.3") as c:  # another IP: fine
        assert c.auth("PLAIN", "alice", "wonderland").lines == [OK]


def test_failures_for_one_user_block_it_from_every_ip(instance):
    for n in range(1, 11):
        with instance.connect("plainauth", source=f"127.0.3.{n}") as c:
            assert c.auth("LOGIN", "trudy", f"guess{n}").lines == [BAD], n
    with instance.connect("plainauth", source="127.0.3.11") as c:
        assert c.auth("LOGIN", "trudy", "trudy-password").lines == [TEMP]
        assert c.auth("LOGIN", "alice", "wonderland").lines == [OK]  # others are not blocked
    assert len(runs_of(instance, "trudy")) == 10


# ---------------------------------------------------------------------------------------------
# authd and checkpassword failing

def test_authd_killed_then_restarted(instance):
    (authd,) = instance.wait_pids("sppd-authd", 1)
    with instance.connect("plainauth", source="127.0.4.1") as c:
        c.expect("EHLO client.test", *EHLO_PLAINAUTH)
        c.send(f"AUTH PLAIN {b64(chr(0) + 'slowalice' + chr(0) + 'wonderland')}\r\n".encode())
        wait_for(lambda: runs_of(instance, "slowalice"), 10, "the check to be in flight")
        os.kill(authd, signal.SIGKILL)
        assert c.read_reply().lines == [TEMP]
        (instance.checkpassword_log.parent /
         f"{instance.checkpassword_log.name}.release-slowalice").touch()
        instance.wait_pids("sppd-authd", 1, exclude={authd})

        def works_again():
            reply = c.auth("PLAIN", "alice", "wonderland")
            assert reply.lines in ([OK], [TEMP]), reply.line
            return reply.lines == [OK]
        wait_for(works_again, 15, "AUTH to work with the new authd", interval=0.1)
    assert authd not in instance.pids("sppd-authd")
    assert "sppd-authd" in instance.log() and f"sppd-authd[{authd}]" in instance.log()


def test_checkpassword_that_hangs_is_timed_out(instance):
    with instance.connect("plainauth", source="127.0.4.2") as c:
        started = time.monotonic()
        assert c.auth("PLAIN", "slowbob", "builder").lines == [TEMP]
        elapsed = time.monotonic() - started
        assert CHECK_TIMEOUT - 0.5 <= elapsed <= CHECK_TIMEOUT + 10, elapsed
        assert c.auth("PLAIN", "bob", "builder").lines == [OK]
    (run,) = runs_of(instance, "slowbob")
    wait_for(lambda: not os.path.exists(f"/proc/{run['pid']}"), 10,
             "the hung checkpassword to be killed")


# ---------------------------------------------------------------------------------------------
# [auth] plugins

def test_auth_plugin_refusing_leaves_the_session_unauthenticated(instance):
    with instance.connect("plainauth") as c:
        c.expect("EHLO client.test", *EHLO_PLAINAUTH)
        assert c.auth("PLAIN", "blocked", "blocked-password").lines == [BLOCKED]
        c.expect("EHLO client.test", *EHLO_PLAINAUTH)  # AUTH still offered
        c.expect("MAIL FROM:<blocked@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<friend@elsewhere.test>", RELAY_REFUSED)
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(MESSAGE + b".\r\n")
        reply = c.read_reply()
        assert QUEUED_RE.match(reply.line), reply.line
    (run,) = instance.plugin_runs("mailsay")
    assert "SMTPAUTHUSER" not in run.env and "SMTPAUTHMETHOD" not in run.env
    env = instance.env_of_queue(reply)
    for name in ("SMTPAUTHUSER", "SMTPAUTHMETHOD", "RELAYCLIENT", "TCPREMOTEINFO"):
        assert name not in env, name
    (msg,) = instance.wait_messages(1)
    expect_received(msg, proto="ESMTP")
    # authgate ended the [auth] hook: the next plugin never saw the login.
    assert instance.plugin_runs("authsay") == []


def test_plugins_see_the_login(instance):
    with authenticated(instance, "smtps", "LOGIN") as c:
        reply = c.transaction("alice@client.test", ["friend@elsewhere.test"], MESSAGE)
        assert QUEUED_RE.match(reply.line), reply.line
    (auth_run,) = instance.plugin_runs("authsay")
    (mail_run,) = instance.plugin_runs("mailsay")
    for run in (auth_run, mail_run):
        assert run.env["SMTPAUTHUSER"] == "alice"
        assert run.env["SMTPAUTHMETHOD"] == "login"
        assert run.env["SSL_PROTOCOL"] in ("TLSv1.2", "TLSv1.3")
    assert mail_run.env["RELAYCLIENT"] == "" and mail_run.env["TCPREMOTEINFO"] == "alice"
