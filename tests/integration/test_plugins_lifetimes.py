# How long what a qmail-spp plugin does lasts (spec/qmail-spp.md §5.1–§5.4, §6): L-queues
# until RSET (not MAIL), shown again and again, later appends invisible once shown; H lines
# per transaction after the Received line (from [connection]/[helo] only in the first
# message); S/U for the rest of the connection, seen by qmail-queue; C of the sender and of a
# recipient (rcpthosts already decided on the original); O skipping badmailfrom (sppd resets
# the verdict, DECISIONS.md) and rcpthosts; E in [mail] keeping the previous transaction.
import pytest

from conftest import (BADMAILFROM, EHLO_LINES, QUEUED_RE, RELAY_REFUSED, SPP_CLIENTS,
                      expect_received, start_plugin_instance)


@pytest.fixture(scope="module")
def spp(module_factory):
    return start_plugin_instance(module_factory, control={
        "badmailfrom": "spammer@evil.test\n@evil.test\n"})


def queued(c):
    reply = c.read_reply()
    assert QUEUED_RE.match(reply.line), reply.line
    return reply


# [mail] plugin: queues an RCPT error only for senders "late@...".
LATE_RCPT_ERROR = """#!/bin/sh
case "$SMTPMAILFROM" in late@*) echo "LR550 5.7.1 appended late" ;; esac
"""


def test_rcpt_error_queue_lives_until_rset_not_until_mail(spp):
    spp.use_plugins("[helo]\nplugins/helo\n[mail]\nplugins/late\n",
                    {"helo": ("say.c", "LR550-5.7.1 queued at HELO\nLR550 5.7.1 second line\n"),
                     "late": LATE_RCPT_ERROR})
    queued_error = ["550-5.7.1 queued at HELO", "550 5.7.1 second line"]
    with spp.connect() as c:
        c.expect("EHLO client.test", *EHLO_LINES)  # the queue is not shown at HELO
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", *queued_error)
        c.expect("RCPT TO:<bob@example.com>", *queued_error)  # shown again, not cleared
        # A new MAIL does not clear it, and what is appended after it was shown stays
        # invisible until the reset.
        c.expect("MAIL FROM:<late@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", *queued_error)
        c.expect("RSET", "250 2.0.0 flushed")
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("RSET", "250 2.0.0 flushed")
        # After the reset an append is shown.
        c.expect("MAIL FROM:<late@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "550 5.7.1 appended late")


def test_mail_and_data_error_queues(spp):
    # LM from [connection]: every MAIL is refused with it (before [mail] plugins, which do
    # not run) until RSET. LD from [rcpt]: DATA refused, the message never starts.
    spp.use_plugins("[connection]\nplugins/conn\n[mail]\nplugins/mail\n[rcpt]\nplugins/rcpt\n",
                    {"conn": ("say.sh", "LM451 4.7.1 queued at connect\n"),
                     "mail": "say.c",
                     "rcpt": ("say.py", "LD554 5.7.1 queued at RCPT\n")})
    with spp.connect() as c:
        c.expect("EHLO client.test", *EHLO_LINES)
        c.expect("MAIL FROM:<alice@client.test>", "451 4.7.1 queued at connect")
        c.expect("MAIL FROM:<alice@client.test>", "451 4.7.1 queued at connect")
        assert spp.plugin_runs("mail") == []
        c.expect("RSET", "250 2.0.0 flushed")
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "554 5.7.1 queued at RCPT")
        c.expect("DATA", "554 5.7.1 queued at RCPT")
        c.expect("RSET", "250 2.0.0 flushed")
    assert len(spp.plugin_runs("mail")) == 1
    assert spp.new_files() == []


def test_error_queues_apply_even_after_accept(spp):
    # A ends plugin runs for the connection; what was queued before it still refuses.
    spp.use_plugins("[connection]\nplugins/conn\n[mail]\nplugins/mail\n",
                    {"conn": ("say.c", "LM550 5.7.1 queued before A\nA\n"), "mail": "say.c"})
    with spp.connect() as c:
        c.expect("MAIL FROM:<alice@client.test>", "550 5.7.1 queued before A")
        c.expect("RSET", "250 2.0.0 flushed")
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
    assert spp.plugin_runs("mail") == []


# [rcpt] plugin: adds a header for every recipient it sees.
RCPT_HEADER = """#!/bin/sh
echo "HX-Rcpt: $SMTPRCPTTO"
"""


def test_header_lines_per_transaction_after_received(spp):
    plugins = {"conn": ("say.c", "HX-Connection: 1\n"), "helo": ("say.sh", "HX-Helo: 1\n"),
               "mail": ("say.py", "HX-Mail: 1\n"), "rcpt": RCPT_HEADER,
               "data": ("say.c", "HX-Data: 1\n")}
    spp.use_plugins("[connection]\nplugins/conn\n[helo]\nplugins/helo\n[mail]\nplugins/mail\n"
                    "[rcpt]\nplugins/rcpt\n[data]\nplugins/data\n", plugins)
    with spp.connect() as c:
        c.expect("EHLO client.test", *EHLO_LINES)
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        # A refused recipient's plugin header stays (qmail-spp appends as it reads).
        c.expect("RCPT TO:<carol@elsewhere.test>", RELAY_REFUSED)
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: first\r\n\r\nbody\r\n.\r\n")
        queued(c)
        # The second message of the connection: no [connection]/[helo] headers any more.
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<dave@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: second\r\n\r\nbody\r\n.\r\n")
        queued(c)
        # RSET throws the transaction's headers away.
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<erin@example.com>", "250 2.1.5 ok")
        c.expect("RSET", "250 2.0.0 flushed")
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<frank@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: third\r\n\r\nbody\r\n.\r\n")
        queued(c)
    first, second, third = spp.wait_messages(3)
    for msg in (first, second, third):
        expect_received(msg)  # our Received line first, plugin headers right after it
    assert first.body == (b"X-Connection: 1\nX-Helo: 1\nX-Mail: 1\nX-Rcpt: bob@example.com\n"
                          b"X-Rcpt: carol@elsewhere.test\nX-Data: 1\n"
                          b"Subject: first\n\nbody\n")
    assert second.body == (b"X-Mail: 1\nX-Rcpt: dave@example.com\nX-Data: 1\n"
                           b"Subject: second\n\nbody\n")
    assert third.body == (b"X-Mail: 1\nX-Rcpt: frank@example.com\nX-Data: 1\n"
                          b"Subject: third\n\nbody\n")


def test_set_and_unset_last_for_the_connection_and_reach_qmail_queue(spp):
    plugins = {"conn": ("say.c", "SSPP_CONNECTION=set at connect\nUSPPTEST\n"),
               "mail": ("say.sh", "SSPP_MAIL=set at MAIL\nSSPP_CONNECTION=overwritten\n"),
               "rcpt": "say.c"}
    spp.use_plugins("[connection]\nplugins/conn\n[mail]\nplugins/mail\n[rcpt]\nplugins/rcpt\n",
                    plugins)
    with spp.connect(source=SPP_CLIENTS["rule_variable"]) as c:  # SPPTEST="from tcprules"
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("RSET", "250 2.0.0 flushed")  # RSET clears no variable
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: env\r\n\r\nx\r\n.\r\n")
        reply = queued(c)
    (conn,) = spp.plugin_runs("conn")
    assert conn.env["SPPTEST"] == "from tcprules"
    mail1, _ = spp.plugin_runs("mail")
    assert mail1.env["SPP_CONNECTION"] == "set at connect"
    assert "SPPTEST" not in mail1.env
    for rcpt in spp.plugin_runs("rcpt"):
        assert rcpt.env["SPP_CONNECTION"] == "overwritten"
        assert rcpt.env["SPP_MAIL"] == "set at MAIL"
        assert "SPPTEST" not in rcpt.env
    env = spp.env_of_queue(reply)
    assert env["SPP_CONNECTION"] == "overwritten"
    assert env["SPP_MAIL"] == "set at MAIL"
    assert "SPPTEST" not in env


# [mail] plugin: rewrites two senders.
CHANGE_SENDER = """#!/bin/sh
case "$SMTPMAILFROM" in
  alias@client.test) echo "Creal@client.test" ;;
  innocent@client.test) echo "Cspammer@evil.test" ;;
esac
"""
# [rcpt] plugin: redirects a local recipient to a foreign domain, and a foreign one home.
CHANGE_RECIPIENT = """#!/bin/sh
case "$SMTPRCPTTO" in
  redirect@example.com) echo "Cother@elsewhere.test" ;;
  stranger@elsewhere.test) echo "Clocal@example.com" ;;
esac
"""


def test_change_sender_and_recipient(spp):
    spp.use_plugins("[helo]\nplugins/helo\n[mail]\nplugins/sender\nplugins/mail\n"
                    "[rcpt]\nplugins/recipient\nplugins/rcpt\n",
                    {"helo": ("say.c", "Cignored@helo.test\n"), "sender": CHANGE_SENDER,
                     "mail": "say.c", "recipient": CHANGE_RECIPIENT, "rcpt": "say.c"})
    with spp.connect() as c:
        c.expect("EHLO client.test", *EHLO_LINES)  # C outside [mail]/[rcpt]: ignored
        c.expect("MAIL FROM:<alias@client.test>", "250 2.1.0 ok")
        # rcpthosts was decided on the address the client gave: the redirect to a foreign
        # domain is accepted, the foreign address made local is still refused.
        c.expect("RCPT TO:<redirect@example.com>", "250 2.1.5 ok")
        c.expect("RCPT TO:<stranger@elsewhere.test>", RELAY_REFUSED)
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: changed\r\n\r\nx\r\n.\r\n")
        queued(c)
        # badmailfrom checks the changed sender.
        c.expect("MAIL FROM:<innocent@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", BADMAILFROM)
    (msg,) = spp.wait_messages(1)
    assert msg.return_path == "real@client.test"
    assert msg.recipients == ["other@elsewhere.test", "bob@example.com"]
    # Later plugins of the section see the new address.
    assert [r.env["SMTPMAILFROM"] for r in spp.plugin_runs("mail")] == \
        ["real@client.test", "spammer@evil.test"]
    assert [r.env["SMTPRCPTTO"] for r in spp.plugin_runs("rcpt")] == \
        ["other@elsewhere.test", "local@example.com", "bob@example.com"]
    assert [r.env["SMTPRCPTHOSTSOK"] for r in spp.plugin_runs("rcpt")] == ["1", "0", "1"]


# [mail] plugin: O (skip qmail's checks) for two senders.
OK_SENDER = """#!/bin/sh
case "$SMTPMAILFROM" in good@client.test|trusted@evil.test) echo O ;; esac
"""


def test_ok_in_mail_skips_badmailfrom_and_resets_the_verdict(spp):
    spp.use_plugins("[mail]\nplugins/ok\n", {"ok": OK_SENDER})
    with spp.connect() as c:
        c.expect("MAIL FROM:<spammer@evil.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", BADMAILFROM)
        # O skips badmailfrom for a listed sender...
        c.expect("MAIL FROM:<trusted@evil.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("RSET", "250 2.0.0 flushed")
        c.expect("MAIL FROM:<spammer@evil.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", BADMAILFROM)
        # ... and does not keep the previous MAIL's verdict (qmail-spp 0.42 would still say
        # 553 here: a stale flag; sppd resets it, DECISIONS.md).
        c.expect("MAIL FROM:<good@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: ok\r\n\r\nx\r\n.\r\n")
        queued(c)
    (msg,) = spp.wait_messages(1)
    assert msg.return_path == "good@client.test"


def test_ok_in_rcpt_skips_rcpthosts_next_does_not(spp):
    spp.use_plugins("[rcpt]\nplugins/verdict\n", {"verdict": """#!/bin/sh
case "$SMTPRCPTTO" in
  ok@elsewhere.test) echo O ;;
  next@elsewhere.test) echo N ;;
esac
"""})
    with spp.connect() as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<ok@elsewhere.test>", "250 2.1.5 ok")  # O: relaying allowed
        c.expect("RCPT TO:<next@elsewhere.test>", RELAY_REFUSED)
        c.expect("RCPT TO:<other@elsewhere.test>", RELAY_REFUSED)
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: relayed by O\r\n\r\nx\r\n.\r\n")
        queued(c)
    (msg,) = spp.wait_messages(1)
    assert msg.recipients == ["ok@elsewhere.test"]


def test_ok_in_rcpt_cannot_bypass_badmailfrom(spp):
    # badmailfrom refuses RCPT before [rcpt] plugins run at all.
    spp.use_plugins("[rcpt]\nplugins/ok\n", {"ok": ("say.c", "O\n")})
    with spp.connect() as c:
        c.expect("MAIL FROM:<spammer@evil.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", BADMAILFROM)
    assert spp.plugin_runs("ok") == []


# [mail] plugin: refuses senders "bad@...".
REFUSE_BAD_SENDER = """#!/bin/sh
case "$SMTPMAILFROM" in bad@*) echo "E550 5.7.1 not this sender" ;; esac
"""


def test_error_in_mail_keeps_the_previous_transaction(spp):
    spp.use_plugins("[mail]\nplugins/refuse\n", {"refuse": REFUSE_BAD_SENDER})
    with spp.connect() as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("MAIL FROM:<bad@client.test>", "550 5.7.1 not this sender")
        # Sender and recipients of the open transaction are untouched.
        c.expect("RCPT TO:<carol@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: kept\r\n\r\nx\r\n.\r\n")
        queued(c)
    (msg,) = spp.wait_messages(1)
    assert msg.return_path == "alice@client.test"
    assert msg.recipients == ["bob@example.com", "carol@example.com"]
