# realrcptto over real sessions (issue 6 item 11; Paul Jarc's patch in qmail-md): against a
# scratch qmail home (the instance's qmail_home) with control/locals, control/virtualdomains,
# users/assign with exact and wildcard lines (a catch-all "+" line standing for the alias
# user), home directories owned by a test user, .qmail-ext and .qmail-default files, and a
# users/cdb made with tinycdb's cdb tool. A local address qmail would bounce gets 550 after a
# tarpit; other domains are untouched; NOREALRCPTTO and the listener switch turn it off; files
# are read afresh for every RCPT. Each test asserts replies, the queue and the log.
import os
import pwd
import shutil
import subprocess

import pytest

from conftest import IS_ROOT, QUEUED_RE, SERVICE_USERS, wait_for

MESSAGE = "Subject: realrcptto\r\n\r\nbody\r\n"
NO_MAILBOX = "550 5.1.1 sorry, no mailbox here by that name"
ACCEPTED = "250 2.1.5 ok"
UNABLE = "451 4.3.0 unable to verify recipient (temporary failure)"


def owner():
    """uid, gid the scratch homes belong to: pluginrunner's user when we are root."""
    if IS_ROOT:
        pw = pwd.getpwnam(SERVICE_USERS["pluginrunner"])
        return pw.pw_uid, pw.pw_gid
    return os.getuid(), os.getgid()


def assign_text(home, catch_all=True):
    """users/assign: exact lines (without and with an extension), a wildcard line for the
    virtual domain's prefix and (catch_all) "+:" for everything else, the alias user's job."""
    uid, gid = owner()
    lines = [f"=joe:joe:{uid}:{gid}:{home}/homes/joe:::",
             f"=info:lists:{uid}:{gid}:{home}/homes/lists:-:info:",
             f"+virt-:vmail:{uid}:{gid}:{home}/homes/virt:-::"]
    if catch_all:
        lines.append(f"+:alias:{uid}:{gid}:{home}/homes/alias:-::")
    return "\n".join(lines) + "\n.\n"


def make_home(sppd, name, dot_qmail=()):
    """qmail_home/homes/NAME owned by the test user, with .qmail-<ext> files."""
    uid, gid = owner()
    home = sppd.dir / "homes" / name
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o755)
    os.chown(home, uid, gid)
    for ext in dot_qmail:
        write_dot_qmail(home, ext)
    return home


def write_dot_qmail(home, ext):
    path = home / f".qmail-{ext}"
    path.write_text("./Maildir/\n")
    os.chown(path, *owner())


def realrcptto_instance(make_sppd, catch_all=True, **options):
    sppd = make_sppd(
        start=False,
        control={"locals": "local.test\n",
                 "virtualdomains": "virtual.test:virt\nremote.virtual.test:\n",
                 "rcpthosts": "example.com\nlocal.test\nvirtual.test\n.virtual.test\n",
                 "tarpitdelay": "0"},
        **options)
    sppd.write_home_file("users/assign", assign_text(sppd.dir, catch_all))
    make_home(sppd, "joe")
    make_home(sppd, "lists", ["info"])
    make_home(sppd, "virt", ["info", "sales-default"])
    make_home(sppd, "alias", ["postmaster"])
    return sppd.start()


def rcpt_replies(sppd, recipients, source=None, listener="smtp"):
    """One session: MAIL, then each RCPT; returns {recipient: reply line}."""
    out = {}
    with sppd.connect(listener=listener, source=source) as c:
        c.cmd("EHLO client.test")
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        for recipient in recipients:
            out[recipient] = c.cmd(f"RCPT TO:<{recipient}>").line
    return out


def wait_log(sppd, text):
    return wait_for(lambda: text in sppd.log(), 10, f"log line containing {text!r}")


def test_local_addresses_follow_qmails_delivery_rules(make_sppd):
    sppd = realrcptto_instance(make_sppd)
    expected = {
        "joe@local.test": ACCEPTED,              # =joe: exact line, no extension
        "JOE@Local.Test": ACCEPTED,              # case does not matter
        "info@local.test": ACCEPTED,             # =info: ~lists/.qmail-info
        "postmaster@local.test": ACCEPTED,       # +: the alias home's .qmail-postmaster
        "nobody@local.test": NO_MAILBOX,         # +: alias home, no .qmail-nobody or -default
        "joe-x@local.test": NO_MAILBOX,          # =joe is exact: joe-x falls to the alias
        "info@virtual.test": ACCEPTED,           # virt-info: +virt- -> ~virt/.qmail-info
        "sales-eu@virtual.test": ACCEPTED,       # ~virt/.qmail-sales-default
        "support@virtual.test": NO_MAILBOX,      # ~virt has no .qmail-support, no -default
        "anyone@remote.virtual.test": ACCEPTED,  # "remote.virtual.test:" is not local
        "bob@example.com": ACCEPTED,             # not local at all
    }
    with sppd.connect() as c:
        c.cmd("EHLO client.test")
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        for recipient, reply in expected.items():
            assert c.cmd(f"RCPT TO:<{recipient}>").line == reply, recipient
        c.expect("DATA", "354 go ahead")
        c.send(MESSAGE + ".\r\n")
        assert QUEUED_RE.match(c.read_reply().line)
    (msg,) = sppd.wait_messages(1)
    assert msg.recipients == [r for r, reply in expected.items() if reply == ACCEPTED]
    wait_log(sppd, "TARPIT: <alice@client.test> to <nobody@local.test> | helo(client.test) | "
                   "realrcptto: no mailbox")
    wait_log(sppd, f"realrcptto <support@virtual.test>: no mailbox: user vmail has neither "
                   f"{sppd.dir}/homes/virt/.qmail-support nor a matching .qmail-...default file")


def test_files_are_read_for_every_rcpt_and_users_cdb_wins(make_sppd):
    if not shutil.which("cdb"):
        pytest.fail("tinycdb's cdb tool is missing (Debian package tinycdb)", pytrace=False)
    sppd = realrcptto_instance(make_sppd)
    assert rcpt_replies(sppd, ["nobody@local.test"]) == {"nobody@local.test": NO_MAILBOX}
    # A .qmail-default in the alias home takes everything: no reload, no cache.
    alias = sppd.dir / "homes" / "alias"
    write_dot_qmail(alias, "default")
    assert rcpt_replies(sppd, ["nobody@local.test"]) == {"nobody@local.test": ACCEPTED}
    # users/cdb is what qmail-lspawn reads: once it exists, users/assign no longer counts.
    uid, gid = owner()
    records = {"": "", "!": f"alias\0{uid}\0{gid}\0{sppd.dir}/homes/strict\0-\0"}
    make_home(sppd, "strict", ["postmaster"])
    cdbmake = "".join(f"+{len(k.encode())},{len(v.encode())}:{k}->{v}\n"
                      for k, v in records.items()) + "\n"
    subprocess.run(["cdb", "-c", str(sppd.dir / "users" / "cdb")], input=cdbmake.encode(),
                   check=True, timeout=30)
    os.chmod(sppd.dir / "users" / "cdb", 0o644)
    assert rcpt_replies(sppd, ["nobody@local.test", "joe@local.test", "postmaster@local.test"]) \
        == {"nobody@local.test": NO_MAILBOX, "joe@local.test": NO_MAILBOX,
            "postmaster@local.test": ACCEPTED}
    (sppd.dir / "users" / "cdb").unlink()
    # A users/assign qmail-newu would refuse: the recipient can be neither accepted nor refused.
    sppd.write_home_file("users/assign", "=joe:joe:1:1:/nowhere:::\n")  # no final "."
    assert rcpt_replies(sppd, ["joe@local.test", "bob@example.com"]) == \
        {"joe@local.test": UNABLE, "bob@example.com": ACCEPTED}  # other domains: untouched
    wait_log(sppd, "realrcptto <joe@local.test>: unable to verify: bad format in users/assign")


def test_norealrcptto_and_the_listener_switch_turn_it_off(make_sppd):
    sppd = realrcptto_instance(
        make_sppd, tcprules='127.0.0.2:allow,NOREALRCPTTO=""\n',
        extra_listeners={"unchecked": {"address": "127.0.0.1:{free}", "control_dir": "control",
                                       "tcprules": "tcp.smtp", "remote_host_lookup": "no",
                                       "realrcptto": "no"}})
    recipients = ["nobody@local.test", "joe@local.test"]
    assert rcpt_replies(sppd, recipients) == \
        {"nobody@local.test": NO_MAILBOX, "joe@local.test": ACCEPTED}
    assert rcpt_replies(sppd, recipients, source="127.0.0.2") == \
        {"nobody@local.test": ACCEPTED, "joe@local.test": ACCEPTED}
    assert rcpt_replies(sppd, recipients, listener="unchecked") == \
        {"nobody@local.test": ACCEPTED, "joe@local.test": ACCEPTED}


def test_without_the_alias_user_only_assigned_and_passwd_addresses_exist(make_sppd):
    # No "+:" line and (on this host) no passwd user "alias": what no line takes is refused.
    # root is never a mailbox owner (qmail-getpw), nor is a user whose home does not exist.
    assert not any(pw.pw_name == "alias" for pw in pwd.getpwall()), "this host has an alias user"
    sppd = realrcptto_instance(make_sppd, catch_all=False)
    assert rcpt_replies(sppd, ["joe@local.test", "postmaster@local.test", "root@local.test",
                               "nobody@local.test"]) == \
        {"joe@local.test": ACCEPTED, "postmaster@local.test": NO_MAILBOX,
         "root@local.test": NO_MAILBOX, "nobody@local.test": NO_MAILBOX}
    wait_log(sppd, 'realrcptto <root@local.test>: no mailbox: no user for "root" and no user '
                   'alias')
