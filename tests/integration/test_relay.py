# Relay control and per-client rules: rcpthosts (and sppd's "no rcpthosts = no relay"),
# tcprules allow/deny and the environment they add (RELAYCLIENT and friends), badmailfrom.
from conftest import QUEUED_RE

RELAY_REFUSED = "553 5.7.1 sorry, that domain isn't in my list of allowed rcpthosts"
BADMAILFROM = "553 5.7.1 sorry, your envelope sender is in my badmailfrom list"


def test_rcpthosts_allows_listed_domains_only(sppd):
    # control/rcpthosts: "example.com" (only itself) and ".example.net" (its subdomains).
    with sppd.connect() as c:
        assert c.cmd("EHLO client.test").code == 250
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("RCPT TO:<bob@EXAMPLE.Com>", "250 2.1.5 ok")
        c.expect("RCPT TO:<bob@mail.example.net>", "250 2.1.5 ok")
        c.expect("RCPT TO:<bob@other.org>", RELAY_REFUSED)
        c.expect("RCPT TO:<bob@sub.example.com>", RELAY_REFUSED)
        c.expect("RCPT TO:<bob@example.net>", RELAY_REFUSED)
        c.expect("RCPT TO:<bob@notexample.com>", RELAY_REFUSED)
        # The host after the last @ counts.
        c.expect("RCPT TO:<\"bob@example.com\"@other.org>", RELAY_REFUSED)
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: partly refused\r\n\r\nbody\r\n.\r\n")
        assert QUEUED_RE.match(c.read_reply().line)
    (msg,) = sppd.wait_messages(1)
    assert msg.recipients == ["bob@example.com", "bob@EXAMPLE.Com", "bob@mail.example.net"]


def test_no_rcpthosts_file_means_no_relaying(make_sppd):
    sppd = make_sppd(control={"rcpthosts": None})
    with sppd.connect() as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", RELAY_REFUSED)
        c.expect("RCPT TO:<bob@other.org>", RELAY_REFUSED)


def test_relayclient_from_tcprules_allows_any_domain(make_sppd):
    sppd = make_sppd(tcprules='127.0.0.1:allow,RELAYCLIENT=""\n')
    with sppd.connect() as c:
        reply = c.transaction("alice@client.test", ["bob@other.org", "carol@example.com"],
                              b"Subject: relayed\r\n\r\nbody\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
    (msg,) = sppd.wait_messages(1)
    assert msg.recipients == ["bob@other.org", "carol@example.com"]


def test_relayclient_value_is_appended_to_recipients(make_sppd):
    # qmail FAQ 5.5: RELAYCLIENT="@fixme" plus a virtualdomains entry repairs bare recipients.
    sppd = make_sppd(tcprules='# fix unqualified recipients\n127.0.0.1:allow,RELAYCLIENT="@fixme"\n')
    with sppd.connect() as c:
        reply = c.transaction("alice", ["bob", "carol@other.org"], b"Subject: fixme\r\n\r\nx\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
    (msg,) = sppd.wait_messages(1)
    assert msg.return_path == "alice"
    assert msg.recipients == ["bob@fixme", "carol@other.org@fixme"]


def test_relayclient_prefix_rule(make_sppd):
    # An IPv4 prefix ending in '.' matches; the exact-IP rule for another address does not.
    sppd = make_sppd(tcprules='127.0.0.2:deny\n127.:allow,RELAYCLIENT=""\n:deny\n')
    with sppd.connect() as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@other.org>", "250 2.1.5 ok")


def test_tcprules_deny_closes_without_greeting(make_sppd):
    # The exact-IP rule wins over the default rule ("" key), whatever the file order.
    sppd = make_sppd(start=False, tcprules=":allow\n127.0.0.1:deny\n")
    sppd.start(wait=False)
    with sppd.connect(greet=False, timeout=30, wait_listening=True) as c:
        assert c.expect_closed(timeout=30) == b""
    # New rules apply after SIGHUP.
    sppd.write_tcprules(":deny\n127.0.0.1:allow\n")
    sppd.reload()
    sppd.wait_ready()


def test_tcprules_environment_reaches_qmail_queue(make_sppd):
    sppd = make_sppd(queue="envdump",
                     tcprules='127.0.0.1:allow,RELAYCLIENT="",SPPDTEST="rule value",'
                              'TCPREMOTEHOST="overridden.test"\n')
    with sppd.connect() as c:
        client_port = c.local_port
        assert c.cmd("EHLO client.test").code == 250
        reply = c.transaction("alice@client.test", ["bob@other.org"], b"Subject: env\r\n\r\nx\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
    env = sppd.env_of_queue(reply)
    assert env["PROTO"] == "TCP"
    assert env["TCPREMOTEIP"] == "127.0.0.1"
    assert env["TCPREMOTEPORT"] == str(client_port)
    assert env["TCPLOCALIP"] == "127.0.0.1"
    assert env["TCPLOCALPORT"] == str(sppd.port)
    assert "TCPLOCALHOST" not in env  # no local_host in the listener
    assert env["RELAYCLIENT"] == ""
    assert env["SPPDTEST"] == "rule value"
    assert env["TCPREMOTEHOST"] == "overridden.test"  # rule variables override tcpserver's
    assert "PATH" in env
    assert env["SPPD_TEST_CWD"] == str(sppd.dir)  # qmail-queue runs in qmail_home
    (msg,) = sppd.wait_messages(1)
    assert msg.recipients == ["bob@other.org"]


def test_local_host_sets_tcplocalhost(make_sppd):
    sppd = make_sppd(queue="envdump", listener={"local_host": "mx.example.com"})
    reply = sppd.deliver(b"Subject: env\r\n\r\nx\r\n")
    env = sppd.env_of_queue(reply)
    assert env["TCPLOCALHOST"] == "mx.example.com"
    assert "TCPREMOTEHOST" not in env  # remote_host_lookup = no


def test_badmailfrom(make_sppd):
    sppd = make_sppd(control={"badmailfrom": "spammer@evil.test\n# whole domain:\n@bad.test\n"})
    with sppd.connect() as c:
        for sender in ("spammer@evil.test", "SPAMMER@Evil.Test", "anyone@bad.test",
                       "Someone@BAD.test"):
            c.expect(f"MAIL FROM:<{sender}>", "250 2.1.0 ok")  # reported at RCPT, as qmail
            c.expect("RCPT TO:<bob@example.com>", BADMAILFROM)
            c.expect("RCPT TO:<carol@example.com>", BADMAILFROM)
            c.expect("RSET", "250 2.0.0 flushed")
        for sender in ("friend@evil.test", "spammer@sub.bad.test", "", "bad.test@example.com"):
            c.expect(f"MAIL FROM:<{sender}>", "250 2.1.0 ok")
            c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
            c.expect("RSET", "250 2.0.0 flushed")
