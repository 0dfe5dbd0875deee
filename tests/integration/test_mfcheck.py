# qmail-md's sender checks (control/mfcheck) end to end: dnsbl-cache resolves the sender's
# domain at a real DNS server on loopback (dnsmasq, Debian package dnsmasq-base, serving MX
# and A records for *.mf.test and NXDOMAIN for every other name there) and, for mfcheck 2,
# calls the sender's exchanger back at a Python SMTP listener on a loopback port
# ([service dnsbl-cache] callback_port), which knows a few mailboxes and records what it was
# sent. Checked: the replies, the BounceTest:/TARPIT: log lines, control/mxblacklist, an
# exchanger that is down, the caches (counted at dnsmasq's query log and at the listener),
# and who is never checked (goodmailfrom, the null sender, AUTH, MFCHECK=0 from tcprules).
import shutil
import socketserver
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from conftest import QUEUED_RE, dns_query, stop_process, wait_for
from test_dns import free_dns_port

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
pytestmark = pytest.mark.skipif(not shutil.which(DNSMASQ),
                                reason="dnsmasq not installed (Debian package dnsmasq-base)")

LISTENER_IP = "127.0.0.1"    # where the call-back listener runs
BLACKLISTED_IP = "127.0.0.3"  # in control/mxblacklist
DEAD_IP = "127.0.0.5"        # nothing listens there

# (domain, exchanger or None for no MX, address of the exchanger or of the domain)
DOMAINS = [
    ("mxonly.mf.test", "mail.mxonly.mf.test", LISTENER_IP),  # an MX, no A on the domain
    ("aonly.mf.test", None, LISTENER_IP),                    # an A record, no MX
    ("cache.mf.test", "mail.cache.mf.test", LISTENER_IP),
    ("blk.mf.test", "mail.blk.mf.test", BLACKLISTED_IP),
    ("down.mf.test", "mail.down.mf.test", DEAD_IP),
]
KNOWN = {"known@mxonly.mf.test", "known@aonly.mf.test", "known@cache.mf.test",
         "known@down.mf.test", "known@blk.mf.test"}
REFUSAL = ["550-Sorry, no mailbox here by that name.", "550 5.1.1 Try another one."]
DOMAIN_MUST_EXIST = "553 5.1.8 sorry, your envelope sender domain must exist"
BLACKLISTED_MX = "451 4.1.8 bad sender's system address, your mx is blacklisted!"
OK = "250 2.1.0 ok"


def refused_mailbox(sender):
    return f"550 5.1.8 bad sender's mailbox address, RCPT TO:<{sender}> failed"


class Dnsmasq:
    """dnsmasq answering for mf.test only (--local: unknown names there are NXDOMAIN, nothing
    is forwarded), logging every query to a file we count in."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="sppd-dnsmasq-"))
        self.log_path = self.dir / "queries.log"
        self.process = None
        self.port = None
        self.syncs = 0

    def start(self):
        records = []
        for domain, exchanger, address in DOMAINS:
            if exchanger:
                records += [f"--mx-host={domain},{exchanger},10",
                            f"--host-record={exchanger},{address}"]
            else:
                records.append(f"--host-record={domain},{address}")
        for attempt in range(5):
            self.port = free_dns_port()
            self.log_path.write_text("")
            self.process = subprocess.Popen(
                [DNSMASQ, "--no-daemon", f"--port={self.port}", "--listen-address=127.0.0.1",
                 "--bind-interfaces", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
                 "--pid-file=", f"--log-facility={self.log_path}", "--log-queries",
                 "--local-ttl=60", "--local=/mf.test/", *records],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            wait_for(lambda: self.process.poll() is not None or dns_query(self.port, "probe.mf.test"),
                     15, "dnsmasq to answer")
            if self.process.poll() is None:
                return self
            error = self.process.stderr.read().decode(errors="replace")
            if "Address already in use" not in error or attempt == 4:
                pytest.fail(f"dnsmasq exited: {error}")
        return self

    def stop(self):
        stop_process(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def resolver(self):
        return f"127.0.0.1:{self.port}"

    def queries(self):
        """[(type, name)] dnsmasq logged, oldest first, once every query sent before this
        call is in the log (it answers in order: our own marker query logged means so are
        the earlier ones)."""
        self.syncs += 1
        marker = f"sync-{self.syncs}.mf.test"
        wait_for(lambda: dns_query(self.port, marker) is not None, 15, f"dnsmasq to answer {marker}")
        wait_for(lambda: f" {marker} " in self.log_path.read_text(errors="replace"), 15,
                 f"{marker} in dnsmasq's log")
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            # "Nov 21 08:49:49 dnsmasq[25370]: query[MX] mxonly.mf.test from 127.0.0.1"
            fields = line.split()
            for i, field in enumerate(fields[:-1]):
                if field.startswith("query[") and not fields[i + 1].startswith(("sync-", "probe.")):
                    found.append((field[6:-1], fields[i + 1]))
        return found

    def count(self, name, since=0):
        return sum(1 for _, asked in self.queries()[since:] if asked == name)


class CallbackTarget(socketserver.ThreadingTCPServer):
    """The senders' mail exchanger: greets, takes HELO/EHLO and MAIL, accepts RCPT for the
    KNOWN mailboxes and refuses the rest with a two-line 550; records every conversation."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__((LISTENER_IP, 0), CallbackHandler)
        self.port = self.server_address[1]
        self.lock = threading.Lock()
        self.conversations = []  # one list of command lines per connection
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def asked_for(self, mailbox):
        """How many conversations asked RCPT TO:<mailbox>."""
        with self.lock:
            return sum(1 for lines in self.conversations if f"RCPT TO:<{mailbox}>" in lines)


class CallbackHandler(socketserver.StreamRequestHandler):
    def handle(self):
        lines = []
        with self.server.lock:
            self.server.conversations.append(lines)
        self.say("220 exchanger.mf.test ESMTP")
        for raw in self.rfile:
            line = raw.decode(errors="replace").rstrip("\r\n")
            with self.server.lock:
                lines.append(line)
            verb = line.split(" ", 1)[0].split(":", 1)[0].upper()
            if verb in ("HELO", "EHLO", "MAIL"):
                self.say("250 exchanger.mf.test")
            elif verb == "RCPT":
                mailbox = line[line.find("<") + 1:line.rfind(">")]
                self.say("250 2.1.5 ok" if mailbox in KNOWN else "\r\n".join(REFUSAL))
            elif verb == "QUIT":
                self.say("221 exchanger.mf.test")
                return
            else:
                self.say("502 unimplemented")

    def say(self, reply):
        self.wfile.write(reply.encode() + b"\r\n")


@pytest.fixture(scope="module")
def dnsmasq():
    server = Dnsmasq().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def target():
    server = CallbackTarget()
    yield server
    server.shutdown()
    server.server_close()


def mfcheck_sppd(make_sppd, dnsmasq, target, level, **options):
    # No tarpit delay: the TARPIT: line is what these tests look at, not the wait.
    control = {"mfcheck": str(level), "mxblacklist": f"{BLACKLISTED_IP}\n", "tarpitdelay": "0",
               **options.pop("control", {})}
    return make_sppd(dnsbl_cache={"resolver": dnsmasq.resolver, "callback_port": str(target.port),
                                  "callback_timeout": "5"},
                     control=control, **options)


def mail(sppd, sender, source=None):
    """One session: EHLO, MAIL FROM:<sender>; returns the reply line to MAIL."""
    with sppd.connect(source=source) as c:
        assert c.cmd("EHLO client.test").code == 250
        reply = c.cmd(f"MAIL FROM:<{sender}>")
        c.cmd("QUIT")
        return reply.line


def log_has(sppd, text):
    return wait_for(lambda: text in sppd.log(), 10, f"{text!r} in the log")


# ---------------------------------------------------------------------------------------------
# mfcheck 1: the domain must exist

def test_mfcheck_1_accepts_a_domain_with_an_mx_or_an_address(make_sppd, dnsmasq, target):
    sppd = mfcheck_sppd(make_sppd, dnsmasq, target, 1)
    before = len(target.conversations)
    assert mail(sppd, "anyone@mxonly.mf.test") == OK
    assert mail(sppd, "anyone@aonly.mf.test") == OK
    assert len(target.conversations) == before, "mfcheck 1 makes no call-back"
    # The whole transaction goes through as before.
    with sppd.connect() as c:
        c.cmd("EHLO client.test")
        reply = c.transaction("anyone@mxonly.mf.test", ["bob@example.com"], "Subject: x\r\n\r\nx\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
    (msg,) = sppd.wait_messages(1)
    assert msg.return_path == "anyone@mxonly.mf.test"


def test_mfcheck_1_refuses_a_domain_that_does_not_exist(make_sppd, dnsmasq, target):
    sppd = mfcheck_sppd(make_sppd, dnsmasq, target, 1)
    with sppd.connect() as c:
        c.cmd("EHLO client.test")
        c.expect("MAIL FROM:<someone@nowhere.mf.test>", DOMAIN_MUST_EXIST)
        c.expect("RCPT TO:<bob@example.com>", "503 5.5.1 MAIL first")
    log_has(sppd, "TARPIT: <someone@nowhere.mf.test> | helo(client.test) | mfcheck no_domain: "
                  "nowhere.mf.test does not exist")


# ---------------------------------------------------------------------------------------------
# mfcheck 2: the call-back

def test_mfcheck_2_accepts_a_mailbox_the_exchanger_knows(make_sppd, dnsmasq, target):
    sppd = mfcheck_sppd(make_sppd, dnsmasq, target, 2)
    assert mail(sppd, "known@mxonly.mf.test") == OK
    assert mail(sppd, "known@aonly.mf.test") == OK  # no MX: the domain's own address
    with target.lock:
        conversation = next(lines for lines in target.conversations
                            if "RCPT TO:<known@mxonly.mf.test>" in lines)
    assert conversation == ["HELO sppd.test", "MAIL FROM:<>", "RCPT TO:<known@mxonly.mf.test>",
                            "QUIT"]
    assert target.asked_for("known@aonly.mf.test") == 1


def test_mfcheck_2_refuses_a_mailbox_the_exchanger_refuses(make_sppd, dnsmasq, target):
    sppd = mfcheck_sppd(make_sppd, dnsmasq, target, 2)
    sender = "nobody@mxonly.mf.test"
    assert mail(sppd, sender) == refused_mailbox(sender)
    # qmail-md's log: the exchanger's own lines, then the tarpit decision.
    log_has(sppd, "| mfcheck rejected: call-back refused by 127.0.0.1")
    lines = [line.split("session ", 1)[1].split(": ", 1)[1] for line in sppd.log().splitlines()
             if "BounceTest:" in line or "TARPIT:" in line]
    assert lines == [f"BounceTest: {REFUSAL[0]}", f"BounceTest: {REFUSAL[1]}",
                     f"TARPIT: <{sender}> | helo(client.test) | mfcheck rejected: "
                     "call-back refused by 127.0.0.1"], sppd.log_tail()


def test_mfcheck_2_refuses_an_exchanger_in_mxblacklist(make_sppd, dnsmasq, target):
    sppd = mfcheck_sppd(make_sppd, dnsmasq, target, 2)
    assert mail(sppd, "known@blk.mf.test") == BLACKLISTED_MX
    assert target.asked_for("known@blk.mf.test") == 0
    log_has(sppd, f"mfcheck mx_blacklisted: every mail exchanger address of blk.mf.test is in "
                  f"mxblacklist: {BLACKLISTED_IP}")


def test_mfcheck_2_accepts_when_the_exchanger_is_down(make_sppd, dnsmasq, target):
    sppd = mfcheck_sppd(make_sppd, dnsmasq, target, 2)
    assert mail(sppd, "known@down.mf.test") == OK
    log_has(sppd, f"mfcheck: <known@down.mf.test> accepted unverified: call-back failed: "
                  f"{DEAD_IP}: cannot connect")


def test_results_are_cached(make_sppd, dnsmasq, target):
    sppd = mfcheck_sppd(make_sppd, dnsmasq, target, 2)
    since = len(dnsmasq.queries())
    for _ in range(2):
        assert mail(sppd, "known@cache.mf.test") == OK
        assert mail(sppd, "nobody@cache.mf.test") == refused_mailbox("nobody@cache.mf.test")
    assert target.asked_for("known@cache.mf.test") == 1
    assert target.asked_for("nobody@cache.mf.test") == 1
    assert dnsmasq.count("cache.mf.test", since) == 1  # the MX, once for all four
    assert dnsmasq.count("mail.cache.mf.test", since) == 2  # its A and AAAA, once each
    # mfcheck 1's answers too, negative ones included.
    since = len(dnsmasq.queries())
    for _ in range(2):
        assert mail(sppd, "someone@gone.mf.test") == DOMAIN_MUST_EXIST
    assert dnsmasq.count("gone.mf.test", since) == 1


# ---------------------------------------------------------------------------------------------
# Who is never checked

def test_goodmailfrom_null_sender_auth_and_mfcheck_0_skip_the_checks(make_sppd, dnsmasq, target):
    sppd = mfcheck_sppd(make_sppd, dnsmasq, target, 2, passwords={"alice": "secret"},
                        control={"goodmailfrom": "^boss@", "auth/smtp": "63"},
                        tcprules='127.0.0.2:allow,MFCHECK="0"\n:allow\n')
    since = len(dnsmasq.queries())
    assert mail(sppd, "boss@skip1.mf.test") == OK
    assert mail(sppd, "") == OK
    assert mail(sppd, "someone@skip2.mf.test", source="127.0.0.2") == OK
    with sppd.connect() as c:
        c.cmd("EHLO client.test")
        assert c.auth("PLAIN", "alice", "secret").code == 235
        c.expect("MAIL FROM:<alice@skip3.mf.test>", OK)
    asked = [name for _, name in dnsmasq.queries()[since:]]
    assert not [name for name in asked if name.startswith("skip")], asked
    # The same client without the exemptions is checked.
    assert mail(sppd, "someone@skip2.mf.test") == DOMAIN_MUST_EXIST
