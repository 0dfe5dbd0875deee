# qmail-md's anti-spam controls over real sessions (issue 6; spec qmail-protocols.md §6):
# pattern files (regex(7), '!' inversion, vanilla entries, NO_<NAME> and <NAME>=path from
# tcprules), tarpitting as a timer that never holds up another session, maxrcpt,
# reqbrackets, DATA without a recipient, SMTPGREETING, datechecks and the smtp_in/smtp_out
# log with its TARPIT: decision lines. Each test asserts the replies, what reached the
# queue and the log.
import datetime
import threading
import time

from conftest import QUEUED_RE, wait_for

MESSAGE = "Subject: spam controls\r\n\r\nbody\r\n"


def session(sppd, source=None):
    c = sppd.connect(source=source)
    assert c.greeting.code == 220
    return c


def timed(c, line):
    start = time.monotonic()
    reply = c.cmd(line)
    return reply, time.monotonic() - start


def wait_log(sppd, text):
    return wait_for(lambda: text in sppd.log(), 10, f"log line containing {text!r}")


# ---- pattern files

def test_badhelo_regex_is_refused_after_the_tarpit(make_sppd):
    sppd = make_sppd(control={"badhelo": "^localhost$\n^[0-9.]+$\n", "tarpitdelay": "1"})
    with session(sppd) as c:
        reply, took = timed(c, "EHLO 192.0.2.1")
        assert reply.lines == ["553 5.7.1 sorry, your helo or ehlo is incorrect"]
        assert took >= 1.0
        c.expect("HELO LOCALHOST", "553 5.7.1 sorry, your helo or ehlo is incorrect")
        c.expect("HELO client.test", "250 mx.sppd.test")
    wait_log(sppd, "TARPIT: helo(192.0.2.1) | badhelo: ^[0-9.]+$")


def test_badmailfrom_regex_refuses_at_mail_and_vanilla_entries_at_rcpt(make_sppd):
    sppd = make_sppd(control={"badmailfrom": "^spam[0-9]+@\n@vanilla.test\n!@\n",
                              "tarpitdelay": "0"})
    with session(sppd) as c:
        c.expect("MAIL FROM:<Spam42@client.test>",
                 "553 5.7.1 sorry, your envelope sender has been denied")
        # A refused MAIL opens no transaction.
        c.expect("RCPT TO:<bob@example.com>", "503 5.5.1 MAIL first")
        # '!@': a sender without '@' is refused (the regex does not match it).
        c.expect("MAIL FROM:<postmaster>", "553 5.7.1 sorry, your envelope sender has been denied")
        # The null sender is never checked, '!@' or not.
        c.expect("MAIL FROM:<>", "250 2.1.0 ok")
        # A plain entry keeps qmail's meaning and place: accepted MAIL, refused RCPT.
        c.expect("MAIL FROM:<anyone@vanilla.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>",
                 "553 5.7.1 sorry, your envelope sender is in my badmailfrom list")
        # Not a substring match: "spam@" does not match ^spam[0-9]+@.
        assert c.transaction("spam@client.test", ["bob@example.com"], MESSAGE).code == 250
    (msg,) = sppd.wait_messages(1)
    assert msg.return_path == "spam@client.test"
    wait_log(sppd, "TARPIT: <Spam42@client.test> | helo() | badmailfrom: ^spam[0-9]+@")


def test_goodmailfrom_accepts_a_sender_badmailfrom_refuses(make_sppd):
    sppd = make_sppd(control={"badmailfrom": "@client\\.test$\n@vanilla.test\n",
                              "goodmailfrom": "^root@client\\.test$\n@vanilla.test\n",
                              "tarpitdelay": "0"})
    with session(sppd) as c:
        c.expect("MAIL FROM:<alice@client.test>",
                 "553 5.7.1 sorry, your envelope sender has been denied")
        assert c.transaction("root@client.test", ["bob@example.com"], MESSAGE).code == 250
        assert c.transaction("x@vanilla.test", ["bob@example.com"], MESSAGE).code == 250
    msgs = sppd.wait_messages(2)
    assert [m.return_path for m in msgs] == ["root@client.test", "x@vanilla.test"]
    wait_log(sppd, "goodmailfrom: <root@client.test> matches ^root@client\\.test$")


def test_badmailto_and_badrcptto_refuse_only_those_recipients(make_sppd):
    sppd = make_sppd(control={"badmailto": "^abuse-trap@\n", "badrcptto": "\\.example\\.net$\n",
                              "tarpitdelay": "0"})
    with session(sppd) as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<abuse-trap@example.com>",
                 "553 5.7.1 sorry, your envelope recipient has been denied")
        c.expect("RCPT TO:<carol@sub.example.net>",
                 "553 5.7.1 sorry, your envelope recipient has been denied")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(MESSAGE + ".\r\n")
        assert QUEUED_RE.match(c.read_reply().line)
    (msg,) = sppd.wait_messages(1)
    assert msg.recipients == ["bob@example.com"]
    wait_log(sppd, "TARPIT: <alice@client.test> to <abuse-trap@example.com> | helo() | "
                   "badmailto: ^abuse-trap@")


def test_environment_switches_pattern_files_per_client(make_sppd):
    # 127.0.0.2 has no badmailfrom check at all, 127.0.0.3 another file, the rest control/'s.
    sppd = make_sppd(
        control={"badmailfrom": "^alice@\n", "bmf.strict": "@client\\.test$\n",
                 "tarpitdelay": "0"},
        tcprules='127.0.0.2:allow,NO_BADMAILFROM=""\n'
                 '127.0.0.3:allow,BADMAILFROM="control/bmf.strict"\n')
    denied = "553 5.7.1 sorry, your envelope sender has been denied"
    with session(sppd) as c:
        c.expect("MAIL FROM:<alice@client.test>", denied)
        c.expect("MAIL FROM:<carol@client.test>", "250 2.1.0 ok")
    with session(sppd, source="127.0.0.2") as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
    with session(sppd, source="127.0.0.3") as c:
        c.expect("MAIL FROM:<carol@client.test>", denied)
        c.expect("MAIL FROM:<alice@other.test>", "250 2.1.0 ok")


def test_bad_regex_line_is_logged_and_skipped(make_sppd):
    sppd = make_sppd(control={"badmailfrom": "^bad[\n^alice@\n", "tarpitdelay": "0"})
    wait_log(sppd, "badmailfrom:1: bad regex \"^bad[\"")
    with session(sppd) as c:
        c.expect("MAIL FROM:<alice@client.test>",
                 "553 5.7.1 sorry, your envelope sender has been denied")
        c.expect("MAIL FROM:<bad[@client.test>", "250 2.1.0 ok")


# ---- tarpitting

def test_tarpit_delays_only_the_tarpitted_session(make_sppd):
    # One worker, so both sessions share one event loop: the delay must be a timer.
    sppd = make_sppd(smtpd={"processes": "1"},
                     control={"badhelo": "^spammer$\n", "tarpitdelay": "3"})
    tarpitted = session(sppd)
    done = {}

    def spammer():
        done["reply"], done["took"] = timed(tarpitted, "HELO spammer")
        done["at"] = time.monotonic()

    thread = threading.Thread(target=spammer)
    thread.start()
    wait_log(sppd, "TARPIT: helo(spammer)")
    with session(sppd) as c:
        c.cmd("EHLO client.test")
        assert c.transaction("alice@client.test", ["bob@example.com"], MESSAGE).code == 250
        honest_done = time.monotonic()
    thread.join(15)
    tarpitted.close()
    assert done["reply"].lines == ["553 5.7.1 sorry, your helo or ehlo is incorrect"]
    assert done["took"] >= 3.0
    assert honest_done < done["at"], "the honest session waited for the tarpitted one"
    sppd.wait_messages(1)


def test_tarpitcount_delays_each_250_from_the_nth_recipient(make_sppd):
    sppd = make_sppd(control={"tarpitcount": "2", "tarpitdelay": "1"})
    with session(sppd) as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        first, took_first = timed(c, "RCPT TO:<a@example.com>")
        second, took_second = timed(c, "RCPT TO:<b@example.com>")
        third, took_third = timed(c, "RCPT TO:<c@example.com>")
        assert [r.line for r in (first, second, third)] == ["250 2.1.5 ok"] * 3
        assert took_first < 0.9
        assert took_second >= 1.0 and took_third >= 1.0
        # MAIL starts the count again.
        c.expect("RSET", "250 2.0.0 flushed")
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        reply, took = timed(c, "RCPT TO:<a@example.com>")
        assert reply.line == "250 2.1.5 ok" and took < 0.9


def test_tarpit_environment_overrides(make_sppd):
    sppd = make_sppd(control={"badhelo": "^spammer$\n", "tarpitdelay": "30"},
                     tcprules='127.0.0.2:allow,NO_TARPITTING=""\n'
                              '127.0.0.3:allow,TARPITDELAY="1"\n'
                              '127.0.0.4:allow,TARPITCOUNT="1",TARPITDELAY="1"\n')
    with session(sppd, source="127.0.0.2") as c:
        reply, took = timed(c, "HELO spammer")
        assert reply.line == "553 5.7.1 sorry, your helo or ehlo is incorrect" and took < 0.9
    with session(sppd, source="127.0.0.3") as c:
        reply, took = timed(c, "HELO spammer")
        assert reply.line == "553 5.7.1 sorry, your helo or ehlo is incorrect"
        assert 1.0 <= took < 10
    with session(sppd, source="127.0.0.4") as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        reply, took = timed(c, "RCPT TO:<a@example.com>")
        assert reply.line == "250 2.1.5 ok" and 1.0 <= took < 10


# ---- limits

def test_maxrcpt_refuses_and_drops_the_extra_recipient(make_sppd):
    sppd = make_sppd(control={"maxrcpt": "3", "tarpitdelay": "0"})
    with session(sppd) as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        for rcpt in ("a", "b", "c"):
            c.expect(f"RCPT TO:<{rcpt}@example.com>", "250 2.1.5 ok")
        c.expect("RCPT TO:<d@example.com>", "452 4.5.3 sorry, too many recipients")
        c.expect("DATA", "354 go ahead")
        c.send(MESSAGE + ".\r\n")
        assert QUEUED_RE.match(c.read_reply().line)
    (msg,) = sppd.wait_messages(1)
    assert msg.recipients == ["a@example.com", "b@example.com", "c@example.com"]
    wait_log(sppd, "TARPIT: <alice@client.test> to <d@example.com> | helo() | maxrcpt 3")


def test_maxrcpt_does_not_limit_authenticated_sessions(make_sppd):
    sppd = make_sppd(control={"maxrcpt": "2", "auth/smtp": "3"},
                     passwords={"alice": "wonderland"})
    with session(sppd) as c:
        c.cmd("EHLO client.test")
        assert c.auth("PLAIN", "alice", "wonderland").code == 235
        rcpts = [f"r{i}@example.com" for i in range(5)]
        assert c.transaction("alice@client.test", rcpts, MESSAGE).code == 250
    (msg,) = sppd.wait_messages(1)
    assert msg.recipients == [f"r{i}@example.com" for i in range(5)]


def test_maxrcpt_from_tcprules(make_sppd):
    sppd = make_sppd(control={"tarpitdelay": "0"}, tcprules='127.0.0.2:allow,MAXRCPT="1"\n')
    with session(sppd, source="127.0.0.2") as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<a@example.com>", "250 2.1.5 ok")
        c.expect("RCPT TO:<b@example.com>", "452 4.5.3 sorry, too many recipients")


def test_reqbrackets(make_sppd):
    sppd = make_sppd()
    with session(sppd) as c:
        c.expect("MAIL FROM:alice@client.test",
                 "555 5.5.4 syntax error, the address must be in angle brackets")
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:bob@example.com",
                 "555 5.5.4 syntax error, the address must be in angle brackets")
    relaxed = make_sppd(control={"reqbrackets": "0"})
    with session(relaxed) as c:
        assert c.cmd("MAIL FROM:alice@client.test").line == "250 2.1.0 ok"
        assert c.cmd("RCPT TO:bob@example.com").line == "250 2.1.5 ok"


def test_long_address_and_long_command_are_tarpitted(make_sppd):
    sppd = make_sppd(control={"maxaddrlen": "50", "tarpitdelay": "1"})
    with session(sppd) as c:
        reply, took = timed(c, "MAIL FROM:<" + "a" * 60 + "@client.test>")
        assert reply.line == "555 5.5.4 syntax error" and took >= 1.0
        reply, took = timed(c, "NOOP " + "x" * 1000)
        assert reply.line == "500 5.5.2 line too long" and took >= 1.0
        c.expect("NOOP", "250 2.0.0 ok")
    wait_log(sppd, "| maxaddrlen")
    wait_log(sppd, "| maxcmdlen 1000")


def test_data_without_an_accepted_recipient_ends_the_session(make_sppd):
    sppd = make_sppd()
    with session(sppd) as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@elsewhere.test>",
                 "553 5.7.1 sorry, that domain isn't in my list of allowed rcpthosts")
        c.expect("DATA", "221 2.0.0 error: I can break rules, too. goodbye.")
        assert c.expect_closed() == b""
    assert sppd.new_files() == []


def test_smtpgreeting_variable_overrides_the_control_file(make_sppd):
    sppd = make_sppd(tcprules='127.0.0.2:allow,SMTPGREETING="welcome.example hello"\n')
    with session(sppd, source="127.0.0.2") as c:
        assert c.greeting.lines == ["220 welcome.example hello ESMTP"]
        c.expect("HELO client.test", "250 welcome.example hello")
        c.expect("QUIT", "221 2.0.0 welcome.example hello")
    with session(sppd) as c:
        assert c.greeting.lines == ["220 mx.sppd.test ESMTP"]


# ---- datechecks

def test_datechecks_at_the_boundary_days(make_sppd):
    sppd = make_sppd(control={"datechecks": "qmail-list-:7\n"})
    today = datetime.datetime.now(datetime.timezone.utc).date()
    # Around midnight UTC the worker's "today" could differ from ours: keep clear of it.
    now = datetime.datetime.now(datetime.timezone.utc)
    if now.hour == 23 and now.minute >= 59:
        wait_for(lambda: datetime.datetime.now(datetime.timezone.utc).hour == 0, 90, "midnight")
        today = datetime.datetime.now(datetime.timezone.utc).date()

    def dated(days_ago):
        return f"qmail-list-{(today - datetime.timedelta(days=days_ago)):%Y%m%d}@example.com"

    with session(sppd) as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect(f"RCPT TO:<{dated(7)}>", "250 2.1.5 ok")
        c.expect(f"RCPT TO:<{dated(-30)}>", "250 2.1.5 ok")
        c.expect(f"RCPT TO:<{dated(8)}>", "553 5.1.1 sorry, this address has expired")
        c.expect("RCPT TO:<qmail-list-xyz@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(MESSAGE + ".\r\n")
        assert QUEUED_RE.match(c.read_reply().line)
    (msg,) = sppd.wait_messages(1)
    assert msg.recipients == [dated(7), dated(-30), "qmail-list-xyz@example.com"]
    wait_log(sppd, f"datechecks: <{dated(8)}> has expired")


# ---- SMTP logging

def test_smtp_in_and_out_log_every_line_but_no_secrets_and_no_body(make_sppd):
    sppd = make_sppd(control={"log/smtp_in": "1", "log/smtp_out": "1", "auth/smtp": "3"},
                     passwords={"alice": "wonderland"})
    with session(sppd) as c:
        c.cmd("EHLO client.test")
        assert c.auth("PLAIN", "alice", "wonderland", initial=True).code == 235
        assert c.transaction("alice@client.test", ["bob@example.com"],
                             "Subject: secret body line\r\n\r\nbody\r\n").code == 250
        c.cmd("QUIT")
    wait_log(sppd, "S: 221 2.0.0 mx.sppd.test")
    log = sppd.log()
    for line in ("C: EHLO client.test", "S: 250-mx.sppd.test", "S: 250 ENHANCEDSTATUSCODES",
                 "C: AUTH PLAIN <hidden>", "C: MAIL FROM:<alice@client.test>",
                 "C: RCPT TO:<bob@example.com>", "C: DATA", "S: 354 go ahead", "C: QUIT"):
        assert line in log, line
    assert "wonderland" not in log
    assert "AGFsaWNl" not in log  # base64 of "\0alice"
    assert "secret body line" not in log


def test_no_smtp_log_by_default(sppd):
    with session(sppd) as c:
        c.cmd("EHLO client.test")
        c.cmd("QUIT")
    wait_log(sppd, "end (closed)")
    assert "C: EHLO" not in sppd.log()


# ---- routing variables

def test_blacklisted_session_feeds_the_trap_with_databytes_plus(make_sppd):
    sppd = make_sppd(control={"databytes+": "2000"},
                     tcprules='127.0.0.2:allow,BLACKLISTED="trap@example.com"\n')
    with session(sppd, source="127.0.0.2") as c:
        c.expect("EHLO client.test", "250-mx.sppd.test", "250-PIPELINING", "250-8BITMIME",
                 "250-SIZE 2000", "250 ENHANCEDSTATUSCODES")
        c.expect("MAIL FROM:<spammer@client.test>", "250 2.1.0 welcome spammer :)")
        # Any recipient, even one we would not relay for, becomes the trap, once.
        c.expect("RCPT TO:<victim@elsewhere.test>", "250 2.1.5 I feed spamassassin now!")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 I feed spamassassin now!")
        c.expect("DATA", "354 go ahead")
        c.send(MESSAGE + ".\r\n")
        assert QUEUED_RE.match(c.read_reply().line)
        c.expect("MAIL FROM:<spammer@client.test>", "250 2.1.0 welcome spammer :)")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 I feed spamassassin now!")
        c.expect("DATA", "354 go ahead")
        c.send("x" * 3000 + "\r\n.\r\n")
        assert c.read_reply().line == \
            "552 5.3.4 sorry, that message size exceeds my databytes limit"
    (msg,) = sppd.wait_messages(1)
    assert msg.return_path == "spammer@client.test"
    assert msg.recipients == ["trap@example.com"]
    # Everyone else is served as usual.
    with session(sppd) as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<victim@elsewhere.test>",
                 "553 5.7.1 sorry, that domain isn't in my list of allowed rcpthosts")


def test_blacklisted_is_ignored_after_auth(make_sppd):
    sppd = make_sppd(control={"auth/smtp": "3"}, passwords={"alice": "wonderland"},
                     tcprules='127.0.0.2:allow,BLACKLISTED="trap@example.com"\n')
    with session(sppd, source="127.0.0.2") as c:
        c.cmd("EHLO client.test")
        assert c.auth("PLAIN", "alice", "wonderland").code == 235
        assert c.transaction("alice@client.test", ["bob@example.com"], MESSAGE).code == 250
    (msg,) = sppd.wait_messages(1)
    assert msg.recipients == ["bob@example.com"]


def test_rcpttofixed_sends_everything_to_one_address(make_sppd):
    sppd = make_sppd(tcprules='127.0.0.2:allow,RCPTTOFIXED="archive@example.com"\n')
    with session(sppd, source="127.0.0.2") as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("RCPT TO:<carol@example.com>", "250 2.1.5 ok")
        # The relay rules still apply to what the client asked for.
        c.expect("RCPT TO:<x@elsewhere.test>",
                 "553 5.7.1 sorry, that domain isn't in my list of allowed rcpthosts")
        c.expect("DATA", "354 go ahead")
        c.send(MESSAGE + ".\r\n")
        assert QUEUED_RE.match(c.read_reply().line)
    (msg,) = sppd.wait_messages(1)
    assert msg.recipients == ["archive@example.com"]


def test_bigbrother_copies_mail_to_and_from_the_watched_address(make_sppd):
    sppd = make_sppd(control={"bigbrother": "Watched@Example.com:copy@example.com\n"})
    assert sppd.deliver(MESSAGE, mail_from="alice@client.test",
                        rcpts=("watched@example.com", "bob@example.com")).code == 250
    assert sppd.deliver(MESSAGE, mail_from="WATCHED@example.com",
                        rcpts=("bob@example.com",)).code == 250
    assert sppd.deliver(MESSAGE, mail_from="alice@client.test",
                        rcpts=("bob@example.com",)).code == 250
    # Already a recipient: no second copy.
    assert sppd.deliver(MESSAGE, mail_from="watched@example.com",
                        rcpts=("copy@example.com",)).code == 250
    msgs = sppd.wait_messages(4)
    assert [m.recipients for m in msgs] == [
        ["watched@example.com", "bob@example.com", "copy@example.com"],
        ["bob@example.com", "copy@example.com"],
        ["bob@example.com"],
        ["copy@example.com"]]
    wait_log(sppd, "bigbrother: mail from <WATCHED@example.com> involves <watched@example.com>, "
                   "copy to <copy@example.com>")
