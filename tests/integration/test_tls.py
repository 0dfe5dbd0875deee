# TLS in the session: STARTTLS (RFC 3207) and implicit TLS (SMTPS) with a certificate made
# by `openssl req` at test time; what EHLO offers and when, the exact replies, plaintext
# pipelined behind STARTTLS thrown away (injection), the state reset after the handshake,
# require_tls, the SSL_* environment and the `with ESMTPS (<cipher> encrypted)` Received
# line, TLS 1.2/1.3 and nothing older, handshake timeouts and clients that vanish mid-TLS.
# Clients: raw sockets with Python's ssl, smtplib, swaks --tls/--tlsc, openssl s_client.
# One instance for the whole file; no AUTH here (no checkpassword: test_auth*.py has it).
import re
import smtplib
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import (QUEUED_RE, Reply, SmtpConnection, expect_received, swaks, tls_client_context,
                      wait_for)

HANDSHAKE_TIMEOUT = 2  # tls_handshake_timeout of every listener here (seconds)
EHLO_PLAIN = ["250-mx.sppd.test", "250-PIPELINING", "250-8BITMIME", "250-SIZE 10485760",
              "250 ENHANCEDSTATUSCODES"]
EHLO_STARTTLS = EHLO_PLAIN[:4] + ["250-STARTTLS", "250 ENHANCEDSTATUSCODES"]
MESSAGE = b"Subject: tls\r\n\r\nover TLS\r\n"


def listener(**settings):
    return {"address": "127.0.0.1:{free}", "control_dir": "control",
            "remote_host_lookup": "no", "tls_handshake_timeout": str(HANDSHAKE_TIMEOUT),
            **settings}


@pytest.fixture(scope="module")
def tls(module_factory):
    """smtp: STARTTLS (control/servercert.pem); smtps: implicit TLS; nocert: a listener
    whose certificate file does not exist; requiretls: no MAIL before STARTTLS."""
    return module_factory(
        tls=True, queue="envdump",
        listener={"tls_handshake_timeout": str(HANDSHAKE_TIMEOUT)},
        extra_listeners={"smtps": listener(implicit_tls="yes"),
                         "nocert": listener(tls_certificate="nosuchcert.pem"),
                         "requiretls": listener(require_tls="yes")})


@pytest.fixture
def instance(tls):
    tls.forget_records()
    return tls


def expect_ssl_env(env, protocol, cipher):
    """sslserver's variables as the session (here: qmail-queue) sees them."""
    name, version, bits = cipher
    assert env["SSL_PROTOCOL"] == protocol == version
    assert env["SSL_CIPHER"] == name
    assert env["SSL_CIPHER_USEKEYSIZE"] == str(bits)
    assert env["SSL_CIPHER_ALGKEYSIZE"] == str(bits)


def workers(instance):
    return instance.wait_pids("sppd-smtpd", 2)


# ---------------------------------------------------------------------------------------------
# What is offered, and the replies

def test_starttls_offered_only_with_a_certificate_and_before_tls(instance):
    with instance.connect() as c:
        c.expect("EHLO client.test", *EHLO_STARTTLS)
        c.starttls()
        c.expect("EHLO client.test", *EHLO_PLAIN)
    with instance.connect("nocert") as c:
        c.expect("EHLO client.test", *EHLO_PLAIN)
        c.expect("STARTTLS", "502 5.5.1 unimplemented")
        c.expect("NOOP", "250 2.0.0 ok")
    with instance.connect("smtps", tls=True) as c:
        assert c.greeting.lines == ["220 mx.sppd.test ESMTP"]
        c.expect("EHLO client.test", *EHLO_PLAIN)
        c.expect("STARTTLS", "503 5.5.1 TLS already active")


def test_starttls_argument_and_twice(instance):
    with instance.connect() as c:
        c.expect("EHLO client.test", *EHLO_STARTTLS)
        c.expect("STARTTLS now", "501 5.5.4 Syntax error (no parameters allowed)")
        c.starttls()
        c.expect("STARTTLS", "503 5.5.1 TLS already active")
        c.expect("EHLO client.test", *EHLO_PLAIN)
        c.expect("STARTTLS", "503 5.5.1 TLS already active")
        c.expect("NOOP", "250 2.0.0 ok")
        c.expect("QUIT", "221 2.0.0 mx.sppd.test")


def test_auth_not_available_without_checkpassword(instance):
    # [service authd] names no checkpassword here: no AUTH keyword, not even under TLS.
    with instance.connect() as c:
        c.expect("EHLO client.test", *EHLO_STARTTLS)
        c.expect("AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=", "503 5.3.3 auth not available")
        c.starttls()
        c.expect("EHLO client.test", *EHLO_PLAIN)
        c.expect("AUTH LOGIN", "503 5.3.3 auth not available")


# ---------------------------------------------------------------------------------------------
# Injection: plaintext behind STARTTLS is never read as a command (CVE-2011-0411 class)

@pytest.mark.parametrize("injected", ["RSET", "MAIL FROM:<evil@attacker.test>",
                                      "NOOP\r\nNOOP\r\nQUIT"])
def test_plaintext_pipelined_behind_starttls_is_discarded(instance, injected):
    with instance.connect() as c:
        c.expect("EHLO client.test", *EHLO_STARTTLS)
        c.send(f"STARTTLS\r\n{injected}\r\n".encode())
        assert c.read_reply().lines == ["220 2.0.0 ready for tls"]
        # Anything the server answered in plaintext would sit before its ServerHello and
        # break the handshake (start_tls also insists nothing is left unread).
        c.start_tls()
        # Had the injected line been kept and read under TLS, its reply would come first.
        c.expect("NOOP", "250 2.0.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "503 5.5.1 MAIL first")
        c.expect("EHLO client.test", *EHLO_PLAIN)
        reply = c.transaction("alice@client.test", ["bob@example.com"], MESSAGE)
        assert QUEUED_RE.match(reply.line), reply.line
    (msg,) = instance.wait_messages(1)
    assert msg.return_path == "alice@client.test"


def test_smtp_state_is_reset_after_starttls(instance):
    with instance.connect() as c:
        c.expect("EHLO before.test", *EHLO_STARTTLS)
        c.expect("MAIL FROM:<before@client.test>", "250 2.1.0 ok")
        c.starttls()
        # The transaction and the EHLO name are gone (RFC 3207 4.2).
        c.expect("RCPT TO:<bob@example.com>", "503 5.5.1 MAIL first")
        c.expect("EHLO after.test", *EHLO_PLAIN)
        reply = c.transaction("after@client.test", ["bob@example.com"], MESSAGE)
        assert QUEUED_RE.match(reply.line), reply.line
        cipher = c.cipher
    (msg,) = instance.wait_messages(1)
    assert msg.return_path == "after@client.test"
    expect_received(msg, helo="after.test", proto=f"ESMTPS ({cipher[0]} encrypted)")


# ---------------------------------------------------------------------------------------------
# Delivery over TLS: the Received line and the SSL_* environment

@pytest.mark.parametrize("version", ["TLSv1.3", "TLSv1.2"])
def test_starttls_with_smtplib(instance, version):
    host, port = instance.addresses["smtp"]
    with smtplib.SMTP(host, port, local_hostname="client.test", timeout=15) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        code, text = client.starttls(context=tls_client_context(version))
        assert (code, text) == (220, b"2.0.0 ready for tls")
        client.ehlo()
        assert not client.has_extn("starttls")
        cipher = client.sock.cipher()
        assert client.mail("alice@client.test")[0] == 250
        assert client.rcpt("bob@example.com")[0] == 250
        code, text = client.data(MESSAGE)
    queued = Reply(code, [f"{code} {text.decode()}"])
    assert QUEUED_RE.match(queued.line), queued.line
    assert cipher[1] == version
    (msg,) = instance.wait_messages(1)
    expect_received(msg, proto=f"ESMTPS ({cipher[0]} encrypted)")
    expect_ssl_env(instance.env_of_queue(queued), version, cipher)


@pytest.mark.parametrize("version", ["TLSv1.3", "TLSv1.2"])
def test_implicit_tls(instance, version):
    with instance.connect("smtps", tls=True, tls_version=version) as c:
        assert c.greeting.lines == ["220 mx.sppd.test ESMTP"]
        c.expect("EHLO client.test", *EHLO_PLAIN)
        reply = c.transaction("alice@client.test", ["bob@example.com"], MESSAGE)
        assert QUEUED_RE.match(reply.line), reply.line
        cipher = c.cipher
        c.expect("QUIT", "221 2.0.0 mx.sppd.test")
    assert cipher[1] == version
    expect_ssl_env(instance.env_of_queue(reply), version, cipher)
    (msg,) = instance.wait_messages(1)
    expect_received(msg, proto=f"ESMTPS ({cipher[0]} encrypted)")


@pytest.mark.parametrize("option,name", [("--tls", "smtp"), ("--tlsc", "smtps")])
def test_swaks(instance, option, name):
    result = swaks(instance, name, option, "--header", "Subject: swaks over TLS")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.6.0 ok" in result.stdout
    (msg,) = instance.wait_messages(1)
    assert msg.received.group("proto").startswith(b"ESMTPS (")
    assert msg.received.group("proto").endswith(b" encrypted)")
    assert b"Subject: swaks over TLS\n" in msg.body


def test_openssl_s_client_starttls(instance):
    host, port = instance.addresses["smtp"]
    result = subprocess.run(
        ["openssl", "s_client", "-starttls", "smtp", "-name", "client.test", "-connect",
         f"{host}:{port}", "-brief", "-crlf", "-ign_eof"],
        input="EHLO client.test\nSTARTTLS\nNOOP\nQUIT\n", capture_output=True, text=True,
        timeout=30)
    assert "CONNECTION ESTABLISHED" in result.stderr, result.stderr
    assert "Protocol version: TLSv1.3" in result.stderr
    assert result.stdout.splitlines() == [*EHLO_PLAIN, "503 5.5.1 TLS already active",
                                          "250 2.0.0 ok", "221 2.0.0 mx.sppd.test"]


def test_nothing_older_than_tls_1_2(instance):
    before = workers(instance)
    host, port = instance.addresses["smtps"]
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"{host}:{port}", "-tls1_1", "-cipher",
         "DEFAULT@SECLEVEL=0", "-brief"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    if "no protocols available" in result.stderr:
        pytest.skip("this openssl client cannot speak TLS 1.1 at all")
    assert result.returncode != 0
    assert "alert protocol version" in result.stderr, result.stderr
    assert "CONNECTION ESTABLISHED" not in result.stderr
    assert workers(instance) == before


def test_many_tls_sessions_at_once(instance):
    results = []

    def session(n):
        try:
            with SmtpConnection(*instance.addresses["smtps"], tls=True) as c:
                c.expect("EHLO client.test", *EHLO_PLAIN)
                reply = c.transaction("alice@client.test", [f"rcpt{n}@example.com"], MESSAGE)
                results.append(QUEUED_RE.match(reply.line) is not None)
        except Exception as e:  # reported below, with the thread's number
            results.append(f"session {n}: {e!r}")

    threads = [threading.Thread(target=session, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [True] * 20
    assert len(instance.wait_messages(20)) == 20


# ---------------------------------------------------------------------------------------------
# require_tls

def test_require_tls_refuses_mail_before_starttls(instance):
    with instance.connect("requiretls") as c:
        c.expect("EHLO client.test", *EHLO_STARTTLS)
        c.expect("MAIL FROM:<alice@client.test>", "530 5.7.0 must issue a STARTTLS command first")
        c.expect("RCPT TO:<bob@example.com>", "503 5.5.1 MAIL first")
        c.starttls()
        c.expect("EHLO client.test", *EHLO_PLAIN)
        reply = c.transaction("alice@client.test", ["bob@example.com"], MESSAGE)
        assert QUEUED_RE.match(reply.line), reply.line
    assert len(instance.wait_messages(1)) == 1


# ---------------------------------------------------------------------------------------------
# Handshakes that never finish, clients that are not TLS, and clients that vanish

def test_handshake_that_never_completes_is_timed_out(instance):
    before = workers(instance)
    log_before = len(instance.log())
    started = time.monotonic()
    silent_smtps = instance.connect("smtps", greet=False)
    partial_smtps = instance.connect("smtps", greet=False)
    partial_smtps.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello's start
    silent_starttls = instance.connect()
    silent_starttls.expect("STARTTLS", "220 2.0.0 ready for tls")
    for c in (silent_smtps, partial_smtps, silent_starttls):
        with c:
            assert c.expect_closed(timeout=HANDSHAKE_TIMEOUT + 10) == b""
            elapsed = time.monotonic() - started
            assert HANDSHAKE_TIMEOUT - 0.5 <= elapsed <= HANDSHAKE_TIMEOUT + 10, elapsed
    wait_for(lambda: instance.log()[log_before:].count("TLS handshake timed out") == 3, 10,
             "three 'TLS handshake timed out' log lines")
    assert workers(instance) == before
    with instance.connect("smtps", tls=True) as c:
        c.expect("NOOP", "250 2.0.0 ok")


def test_plaintext_client_on_the_smtps_port(instance):
    before = workers(instance)
    with instance.connect("smtps", greet=False) as c:
        c.send(b"EHLO client.test\r\n")
        data = c.expect_closed()
        assert b"220" not in data and b"250" not in data  # at most a TLS alert
    assert workers(instance) == before
    with instance.connect("smtps", tls=True) as c:
        c.expect("NOOP", "250 2.0.0 ok")


@pytest.mark.parametrize("when", ["after EHLO", "in DATA"])
def test_client_vanishing_mid_tls(instance, when):
    # The client drops the TCP connection without a TLS close_notify: an unexpected EOF for
    # OpenSSL 3, which must end the session like any EOF (and queue nothing).
    before = workers(instance)
    log_before = len(instance.log())
    c = instance.connect("smtps", tls=True)
    c.expect("EHLO client.test", *EHLO_PLAIN)
    if when == "in DATA":
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: cut\r\n\r\nhalf a messa")
    port = c.local_port
    c.sock.shutdown(socket.SHUT_RDWR)  # SSLSocket.shutdown: no close_notify, just FIN
    c.close()
    connect = re.compile(rf"(sppd-smtpd\[[0-9]+\]: session [0-9]+): connect from "
                         rf"127\.0\.0\.1:{port} on smtps\n")
    session = connect.search(instance.log()[log_before:]).group(1)
    wait_for(lambda: f"{session}: end (" in instance.log()[log_before:], 10,
             f"'{session}: end' in the log")
    assert workers(instance) == before
    assert instance.new_files() == []
    with instance.connect("smtps", tls=True) as c:
        c.expect("NOOP", "250 2.0.0 ok")


def test_quit_under_tls_closes_with_close_notify(instance):
    # RFC 8446 6.1: each side sends close_notify before closing its write side; a client
    # that reads strictly (no ragged EOFs) must see a clean TLS end after 221.
    context = tls_client_context()
    context.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)  # Python 3.10+ sets it
    raw = socket.create_connection(instance.addresses["smtps"], timeout=15)
    with context.wrap_socket(raw, suppress_ragged_eofs=False) as sock:

        def read_until(marker, data=b""):
            while marker not in data:
                chunk = sock.recv(4096)
                assert chunk, f"connection closed before {marker!r} (got {data!r})"
                data += chunk
            return data

        assert read_until(b"\r\n").startswith(b"220 mx.sppd.test ESMTP")
        sock.sendall(b"QUIT\r\n")
        assert read_until(b"\r\n") == b"221 2.0.0 mx.sppd.test\r\n"
        try:
            rest = sock.recv(4096)
        except ssl.SSLError as e:  # UNEXPECTED_EOF_WHILE_READING
            pytest.fail(f"sppd closed the connection without a TLS close_notify after QUIT ({e})")
        assert rest == b""
