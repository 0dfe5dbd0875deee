# rblsmtpd semantics in smtpd against a real DNSBL server (rbldnsd on loopback, conftest's
# DNSBL_ZONES): listed and unlisted clients, the anti-list, -b/-B, -c/-C, the `-r zone:text`
# A-record form with %IP%, the order options are acted on, RBLSMTPD from tcprules, the fake
# conversation of a blocked client reply for reply and its -t timeout, texts cut and cleaned
# as rblsmtpd does, public-resolver refusal codes, an IPv6 client, and the check deferred to
# RCPT, where an authenticated session skips it. Expected behaviour: qmail-protocols.md §3.1
# (ucspi-tcp 0.88 rblsmtpd.c). One sppd shares the tests; each listener carries one option
# string, each client its own loopback source address (conftest.DNSBL_CLIENTS).
import socket
import time

import pytest

from conftest import (DNSBL_CLIENTS, DNSBL_LONG_TEXT, QUEUED_RE, REPLY_TIMEOUT, SmtpConnection,
                      dnsbl_listener, dnsbl_text, ipv6_loopback_available, wait_for)

C = DNSBL_CLIENTS
GREETING = ["220 mx.sppd.test ESMTP"]
TEMPORARY_ERROR = "temporary RBL lookup error"
SHORT_TIMEOUT = 2  # -t of the "short" listener
PASSWORDS = {"alice": "wonderland"}

# listener -> rblsmtpd options (and "rcpt" where the check waits for the first RCPT). The
# option string is split as a run file's shell splits it, so a text with blanks is quoted.
# nozone.test is a zone rbldnsd does not serve: it answers REFUSED, a DNS error.
LISTENERS = {
    "smtp": "-r bl.test",                            # defaults: -B (451), -C, -t 60
    "bounce": "-b -r bl.test",
    "late_b": "-r bl.test -b",                       # -b after the -r that decided: 451
    "anti": "-b -a white.test -r bl.test",
    "anti_late": "-b -r bl.test -a white.test",      # -r decides before -a is reached
    "a_form": '-b -r "al.test:Listed %IP% in al.test" -a white.test -C -t 60',
    "fail_closed": "-c -r nozone.test -r bl.test",
    "open_error": "-b -r nozone.test -r bl.test",    # an error on the way forces 451
    "pub_open": '-C -r "pub.test:Listed %IP%"',
    "pub_closed": '-c -r "pub.test:Listed %IP%"',
    "once": "-b -t 0 -r bl.test",
    "short": f"-t {SHORT_TIMEOUT} -r bl.test",
    "rcpt": ("-b -r bl.test", "rcpt"),
}
TCPRULES = (
    "# RBLSMTPD cases (qmail-protocols.md 3.1): set by tcprules before any lookup\n"
    f'{C["env_empty"]}:allow,RBLSMTPD=""\n'
    f'{C["env_permanent"]}:allow,RBLSMTPD="-Go away, see http://example.test/why"\n'
    f'{C["env_temporary"]}:allow,RBLSMTPD="Busy, try again later"\n'
    ":allow\n")


@pytest.fixture(scope="module")
def rbl(module_factory, rbldnsd):
    extra = {}
    for name, spec in LISTENERS.items():
        if name != "smtp":
            options, when = spec if isinstance(spec, tuple) else (spec, None)
            extra[name] = dnsbl_listener(options, when)
    if ipv6_loopback_available():
        extra["smtp6"] = dnsbl_listener("-r bl.test", address="[::1]:{free}")
    return module_factory(
        queue="envdump", tcprules=TCPRULES, passwords=PASSWORDS,
        control={"auth/smtp": "63"},  # AUTH PLAIN offered without TLS
        dnsbl_cache={"resolver": rbldnsd.resolver},
        listener={"rbl": LISTENERS["smtp"]}, extra_listeners=extra)


def connect(instance, listener, client, **kwargs):
    """A session on `listener` from the loopback address of DNSBL_CLIENTS[client]."""
    host, port = instance.addresses[listener]
    source = C.get(client, client)
    return SmtpConnection(host, port, source=None if ":" in host else source, **kwargs)


def expect_blocked(c, reply):
    """rblsmtpd's conversation after `220 rblsmtpd.local`: RCPT gets the error line."""
    assert c.greeting.lines == ["220 rblsmtpd.local"]
    c.expect("HELO client.test", "250 rblsmtpd.local")
    c.expect("MAIL FROM:<alice@client.test>", "250 rblsmtpd.local")
    c.expect("RCPT TO:<bob@example.com>", reply)
    c.expect("QUIT", "221 rblsmtpd.local")
    assert c.expect_closed() == b""


def expect_accepted(c):
    """The real SMTP server: greeting, EHLO, MAIL and RCPT accepted."""
    assert c.greeting.lines == GREETING
    assert c.cmd("EHLO client.test").code == 250
    c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
    c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
    c.expect("QUIT", "221 2.0.0 mx.sppd.test")


def wait_log(instance, *parts):
    """Waits for one log line containing every part; returns it."""
    def line():
        return next((l for l in instance.log().splitlines() if all(p in l for p in parts)), None)
    return wait_for(line, REPLY_TIMEOUT, f"a log line with {parts}")


# ---------------------------------------------------------------------------------------------
# Listed, unlisted, -b/-B, texts

def test_listed_client_gets_451_and_the_txt_text(rbl):
    ip = C["listed"]
    with connect(rbl, "smtp", "listed") as c:
        expect_blocked(c, f"451 {dnsbl_text(ip)}")
    wait_log(rbl, ip, dnsbl_text(ip))


def test_unlisted_client_gets_a_normal_session(rbl):
    with connect(rbl, "bounce", "unlisted") as c:
        assert c.greeting.lines == GREETING
        assert c.cmd("EHLO client.test").code == 250
        reply = c.transaction("alice@client.test", ["bob@example.com"],
                              b"Subject: unlisted\r\n\r\nnot on any list\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
    env = rbl.env_of_queue(reply)
    assert env["TCPREMOTEIP"] == C["unlisted"]
    assert "RBLSMTPD" not in env


def test_b_gives_553_with_the_entry_text(rbl):
    with connect(rbl, "bounce", "own_text") as c:
        expect_blocked(c, "553 Open relay 127.0.0.3 (see http://bl.test/relay)")
    wait_log(rbl, C["own_text"], "Open relay 127.0.0.3")


def test_b_after_the_deciding_r_does_not_apply(rbl):
    # Options act in command-line order: the -r decided (451) before -b was read.
    with connect(rbl, "late_b", "listed") as c:
        expect_blocked(c, f"451 {dnsbl_text(C['listed'])}")


def test_text_cut_to_200_bytes(rbl):
    with connect(rbl, "bounce", "long_text") as c:
        expect_blocked(c, f"553 {DNSBL_LONG_TEXT[:200]}")


def test_bytes_outside_printable_ascii_become_question_marks(rbl):
    # "Listed<TAB>here, café": the tab and both bytes of the UTF-8 é.
    with connect(rbl, "bounce", "odd_bytes") as c:
        expect_blocked(c, "553 Listed?here, caf??")


# ---------------------------------------------------------------------------------------------
# -a, -r zone:text

def test_anti_listed_client_is_accepted_though_on_the_r_list(rbl, rbldnsd):
    with connect(rbl, "anti", "anti") as c:
        expect_accepted(c)
    # The -a lookup decided, so the -r after it was never asked (the first test to look
    # this client up; test_r_before_a_decides_first asks bl.test later).
    assert rbldnsd.count(C["anti"], "white.test", "A") == 1
    assert rbldnsd.count(C["anti"], "bl.test") == 0


def test_r_before_a_decides_first(rbl):
    with connect(rbl, "anti_late", "anti") as c:
        expect_blocked(c, f"553 {dnsbl_text(C['anti'])}")


def test_r_zone_text_looks_up_an_a_record_and_fills_in_the_ip(rbl, rbldnsd):
    ip = C["a_only"]  # al.test has an A record for it and no TXT
    with connect(rbl, "a_form", "a_only") as c:
        expect_blocked(c, f"553 Listed {ip} in al.test")
    wait_log(rbl, ip, f"Listed {ip} in al.test")
    assert rbldnsd.count(ip, "al.test", "A") == 1
    assert rbldnsd.count(ip, "al.test", "TXT") == 0


def test_r_zone_text_and_anti_list_in_one_option_string(rbl):
    # The same listener: unlisted and anti-listed clients get the real server.
    with connect(rbl, "a_form", "unlisted") as c:
        expect_accepted(c)
    with connect(rbl, "a_form", "anti") as c:
        expect_accepted(c)


# ---------------------------------------------------------------------------------------------
# DNS errors: -c/-C, and an error forcing 451 even with -b

def test_fail_closed_on_a_dns_error(rbl):
    with connect(rbl, "fail_closed", "unlisted") as c:
        expect_blocked(c, f"451 {TEMPORARY_ERROR}")
    wait_log(rbl, C["unlisted"], TEMPORARY_ERROR)


def test_fail_open_error_then_listing_is_451_even_with_b(rbl):
    # -C: the REFUSED zone counts as not listed, the lookups go on; bl.test lists the client,
    # and rblsmtpd's flagmustnotbounce turns -b's 553 into 451.
    with connect(rbl, "open_error", "listed") as c:
        expect_blocked(c, f"451 {dnsbl_text(C['listed'])}")
    with connect(rbl, "open_error", "unlisted") as c:
        expect_accepted(c)


def test_public_resolver_refusal_code_is_an_error_not_a_listing(rbl):
    # pub.test answers 127.255.255.254: an error, so -C accepts and -c refuses with 451.
    with connect(rbl, "pub_open", "refusal") as c:
        expect_accepted(c)
    with connect(rbl, "pub_closed", "refusal") as c:
        expect_blocked(c, f"451 {TEMPORARY_ERROR}")


# ---------------------------------------------------------------------------------------------
# RBLSMTPD from tcprules: checked before any lookup

def test_rblsmtpd_empty_skips_the_lookups(rbl, rbldnsd):
    with connect(rbl, "bounce", "env_empty") as c:
        expect_accepted(c)
    assert rbldnsd.count(C["env_empty"], "bl.test") == 0


def test_rblsmtpd_leading_dash_is_553_with_the_rest(rbl, rbldnsd):
    with connect(rbl, "smtp", "env_permanent") as c:
        expect_blocked(c, "553 Go away, see http://example.test/why")
    wait_log(rbl, C["env_permanent"], "Go away, see http://example.test/why")
    assert rbldnsd.count(C["env_permanent"], "bl.test") == 0


def test_rblsmtpd_text_is_451_even_with_b(rbl, rbldnsd):
    with connect(rbl, "bounce", "env_temporary") as c:
        expect_blocked(c, "451 Busy, try again later")
    assert rbldnsd.count(C["env_temporary"], "bl.test") == 0


# ---------------------------------------------------------------------------------------------
# The fake conversation (rblsmtpd.c: quit, helo/ehlo/mail/rset/noop, everything else)

FAKE_DIALOGUE = [
    ("HELO client.test", "250 rblsmtpd.local"),
    ("ehlo client.test", "250 rblsmtpd.local"),
    ("MAIL FROM:<alice@client.test>", "250 rblsmtpd.local"),
    ("RCPT TO:<bob@example.com>", None),
    ("DATA", None),
    ("Rset", "250 rblsmtpd.local"),
    ("NOOP", "250 rblsmtpd.local"),
    ("AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=", None),
    ("STARTTLS", None),
    ("VRFY bob", None),
    ("HELP", None),
    ("BDAT 10 LAST", None),
    ("QUITTING", None),
    ("", None),
    ("noop with an argument", "250 rblsmtpd.local"),
]


def test_fake_conversation_reply_for_reply(rbl):
    error = f"451 {dnsbl_text(C['listed'])}"
    with connect(rbl, "smtp", "listed") as c:
        assert c.greeting.lines == ["220 rblsmtpd.local"]
        for line, reply in FAKE_DIALOGUE:
            c.expect(line, reply or error)
        c.expect("quit now", "221 rblsmtpd.local")
        assert c.expect_closed() == b""


def test_fake_conversation_pipelined_and_bare_lf(rbl):
    error = f"553 {dnsbl_text(C['listed'])}"
    with connect(rbl, "bounce", "listed") as c:
        assert c.greeting.lines == ["220 rblsmtpd.local"]
        c.send("".join(line + "\r\n" for line, _ in FAKE_DIALOGUE) + "NOOP\nRCPT TO:<a@b>\n"
               "QUIT\r\nNOOP\r\n")
        expected = [reply or error for _, reply in FAKE_DIALOGUE]
        expected += ["250 rblsmtpd.local", error, "221 rblsmtpd.local"]
        got = [c.read_reply().line for _ in expected]
        assert got == expected
        assert c.expect_closed() == b"", "nothing may follow QUIT's 221"


def test_fake_conversation_overlong_line_gets_the_error_line(rbl):
    # rblsmtpd reads lines with getln() and no limit: a line over maxcmdlen is just another
    # line that is not quit/helo/ehlo/mail/rset/noop, so it gets the error line.
    error = f"451 {dnsbl_text(C['listed'])}"
    with connect(rbl, "smtp", "listed") as c:
        assert c.greeting.lines == ["220 rblsmtpd.local"]
        c.expect("RCPT TO:<" + "x" * 1200 + "@example.com>", error)
        c.expect("NOOP", "250 rblsmtpd.local")


def test_t0_prints_the_error_once_and_closes(rbl):
    with connect(rbl, "once", "listed", greet=False) as c:
        assert c.expect_closed() == f"553 {dnsbl_text(C['listed'])}\r\n".encode()


def talk_until_closed(c, limit):
    """Sends NOOP, reads its reply, waits a quarter second for the server to close, and
    again, until it closes; returns the replies. Fails on any other byte or after `limit`."""
    replies = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        c.sock.settimeout(REPLY_TIMEOUT)
        try:
            c.send(b"NOOP\r\n")
            replies.append(c.read_reply().line)
            c.sock.settimeout(0.25)
            chunk = c.sock.recv(4096)
        except socket.timeout:
            continue
        except (EOFError, ConnectionError):
            return replies
        if not chunk:
            return replies
        raise AssertionError(f"unexpected bytes from the server: {chunk!r}")
    raise AssertionError(f"the server did not close within {limit}s")


def test_t_ends_the_conversation_silently(rbl):
    # The alarm counts from the start, not from the last command: a client that keeps talking
    # is cut off at -t seconds all the same, without a reply, as is one that says nothing.
    started = time.monotonic()
    with connect(rbl, "short", "listed") as talker, connect(rbl, "short", "listed") as silent:
        assert talker.greeting.lines == silent.greeting.lines == ["220 rblsmtpd.local"]
        replies = talk_until_closed(talker, SHORT_TIMEOUT + 10)
        talked = time.monotonic() - started
        assert silent.expect_closed(timeout=SHORT_TIMEOUT + 10) == b""
        quiet = time.monotonic() - started
    assert replies and set(replies) == {"250 rblsmtpd.local"}, replies
    for elapsed in (talked, quiet):
        assert SHORT_TIMEOUT - 0.5 <= elapsed < SHORT_TIMEOUT + 5, \
            f"closed after {elapsed:.1f}s with -t {SHORT_TIMEOUT}"


# ---------------------------------------------------------------------------------------------
# IPv6

@pytest.mark.skipif(not ipv6_loopback_available(), reason="::1 is not available")
def test_ipv6_client_listed_by_nibble_name(rbl, rbldnsd):
    rbl.wait_ready(listener="smtp6")
    with connect(rbl, "smtp6", "::1") as c:
        expect_blocked(c, "451 IPv6 ::1 listed in bl.test")
    assert rbldnsd.count("::1", "bl.test", "TXT") == 1


# ---------------------------------------------------------------------------------------------
# The check deferred to RCPT

def test_rcpt_mode_refuses_every_rcpt_of_a_listed_client(rbl):
    error = f"553 {dnsbl_text(C['listed'])}"
    with connect(rbl, "rcpt", "listed") as c:
        assert c.greeting.lines == GREETING
        assert c.cmd("EHLO client.test").code == 250
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", error)
        c.expect("RCPT TO:<carol@example.com>", error)
        c.expect("RSET", "250 2.0.0 flushed")
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", error)
        c.expect("QUIT", "221 2.0.0 mx.sppd.test")


def test_rcpt_mode_no_lookup_without_rcpt(rbl, rbldnsd):
    with connect(rbl, "rcpt", "rcpt_quiet") as c:
        assert c.greeting.lines == GREETING
        assert c.cmd("EHLO client.test").code == 250
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("QUIT", "221 2.0.0 mx.sppd.test")
    assert rbldnsd.count(C["rcpt_quiet"], "bl.test") == 0


def test_rcpt_mode_unlisted_and_rblsmtpd_from_tcprules(rbl):
    with connect(rbl, "rcpt", "unlisted") as c:
        expect_accepted(c)
    with connect(rbl, "rcpt", "env_permanent") as c:
        assert c.greeting.lines == GREETING
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "553 Go away, see http://example.test/why")
    with connect(rbl, "rcpt", "env_empty") as c:
        expect_accepted(c)


def test_rcpt_mode_authenticated_session_skips_the_check(rbl, rbldnsd):
    ip = C["rcpt_auth"]
    with connect(rbl, "rcpt", "rcpt_auth") as c:
        assert c.greeting.lines == GREETING
        assert c.cmd("EHLO client.test").code == 250
        assert c.auth("PLAIN", "alice", PASSWORDS["alice"]).lines == ["235 2.7.0 ok, go ahead"]
        reply = c.transaction("alice@client.test", ["bob@example.com", "carol@example.com"],
                              b"Subject: authenticated\r\n\r\nlisted but logged in\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
        c.expect("QUIT", "221 2.0.0 mx.sppd.test")
    assert rbl.env_of_queue(reply)["TCPREMOTEIP"] == ip
    assert rbldnsd.count(ip, "bl.test") == 0, "an authenticated session must not be looked up"
    # The same client without AUTH is listed: the check was skipped, not passed.
    with connect(rbl, "rcpt", "rcpt_auth") as c:
        assert c.cmd("EHLO client.test").code == 250
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", f"553 {dnsbl_text(ip)}")
    assert rbldnsd.count(ip, "bl.test", "TXT") == 1
