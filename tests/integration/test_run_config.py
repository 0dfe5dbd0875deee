# `make run`'s configuration as shipped (etc/): a copy of etc/ and a var/ laid out as the
# Makefile's run target does, on free ports instead of 2525/2465/2587, no PTR lookups, and
# the commented "try AUTH right here" checkpassword line switched on. Checks what the README
# promises: STARTTLS on the MX port, SMTPS with AUTH on 2465, submission with STARTTLS and
# AUTH required on 2587, the MSA plugins (authrequired, authlogger) on both.
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import (BIN_DIR, IS_ROOT, SANITIZER_PATTERNS, SOURCE_DIR, START_TIMEOUT,
                      SmtpConnection, free_port, make_certificate, swaks, wait_for)

PORTS = {"smtp": 2525, "smtps": 2465, "submission": 2587}
EHLO_HEAD = ["250-PIPELINING", "250-8BITMIME", "250-SIZE 20000000"]


class RunConfig:
    """etc/ copied to DIR/etc, var/ as `make run` makes it, DIR/build -> this build."""

    def __init__(self):
        self.dir = Path(os.path.realpath(tempfile.mkdtemp(prefix="sppd-test-run-")))
        os.chmod(self.dir, 0o755)
        shutil.copytree(SOURCE_DIR / "etc", self.dir / "etc", symlinks=True,
                        ignore=shutil.ignore_patterns("servercert.pem"))
        os.symlink(BIN_DIR.parent, self.dir / "build")
        var = self.dir / "var"
        for sub in ("Maildir/tmp", "Maildir/new", "Maildir/cur", "empty"):
            (var / sub).mkdir(parents=True)
        os.symlink("../etc/control", var / "control")
        os.symlink(BIN_DIR.parent / "plugins", var / "plugins")
        if IS_ROOT:
            queue = pwd.getpwnam("sppd-queue")
            for root, dirs, files in os.walk(var / "Maildir"):
                for name in [root, *[os.path.join(root, n) for n in dirs + files]]:
                    os.lchown(name, queue.pw_uid, queue.pw_gid)
        cert = self.dir / "etc/control/servercert.pem"
        cert.write_text(make_certificate("localhost"))
        os.chmod(cert, 0o600)
        self.addresses = {name: ("127.0.0.1", free_port()) for name in PORTS}
        conf = self.dir / "etc/sppd.conf"
        text = conf.read_text()
        for name, port in PORTS.items():
            assert f"address = 127.0.0.1:{port}\n" in text, f"etc/sppd.conf: no {name} on {port}"
            text = text.replace(f"address = 127.0.0.1:{port}\n",
                                f"address = 127.0.0.1:{self.addresses[name][1]}\n")
        text = text.replace("remote_host_lookup = yes", "remote_host_lookup = no")
        try_auth = "#checkpassword = ../build/test-bin/sppd-test-checkpassword " \
                   "../etc/passwords.example /bin/true\n"
        assert try_auth in text, "etc/sppd.conf: the 'try AUTH right here' line is gone"
        conf.write_text(text.replace(try_auth, try_auth[1:]))
        self.log_path = self.dir / "sppd.log"
        self.master = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.master = subprocess.Popen(
                [str(BIN_DIR / "sppd-master"), "--config", str(self.dir / "etc/sppd.conf")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.dir,
                start_new_session=True)

        def greeted():
            assert self.master.poll() is None, f"sppd-master exited:\n{self.log()}"
            try:
                with SmtpConnection(*self.addresses["smtp"], timeout=10) as c:
                    return c.greeting.code == 220
            except (OSError, EOFError):
                return False
        wait_for(greeted, START_TIMEOUT, "make run's config to greet", interval=0.05)

    def stop(self):
        if self.master and self.master.poll() is None:
            self.master.send_signal(signal.SIGTERM)
            try:
                self.master.wait(30)
            except subprocess.TimeoutExpired:
                self.master.kill()
                self.master.wait()

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def messages(self):
        return sorted((self.dir / "var/Maildir/new").iterdir())


@pytest.fixture(scope="module")
def run(request):
    if not (BIN_DIR.parent / "test-bin/sppd-test-checkpassword").exists():
        pytest.fail("build/test-bin/sppd-test-checkpassword is not built")
    instance = RunConfig()
    failed_before = request.session.testsfailed
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()
        reports = [line for line in instance.log().splitlines()
                   if any(p in line for p in SANITIZER_PATTERNS)]
        if reports or request.session.testsfailed > failed_before:
            print(f"\n===== {instance.log_path} =====\n{instance.log()[-20000:]}")
        else:
            shutil.rmtree(instance.dir, ignore_errors=True)
        assert not reports, reports


def test_mx_port_offers_starttls_and_cram(run):
    with SmtpConnection(*run.addresses["smtp"]) as c:
        reply = c.cmd("EHLO client.test")
        assert reply.lines[1:] == [*EHLO_HEAD, "250-STARTTLS",
                                   "250-AUTH CRAM-MD5 CRAM-SHA1 CRAM-RIPEMD",
                                   "250 ENHANCEDSTATUSCODES"]
        c.starttls()
        reply = c.cmd("EHLO client.test")
        assert "250-AUTH LOGIN PLAIN CRAM-MD5 CRAM-SHA1 CRAM-RIPEMD" in reply.lines
        # Port 25 policy: mail without TLS or AUTH, for the domains in rcpthosts.
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")


def test_smtps_wants_auth(run):
    with SmtpConnection(*run.addresses["smtps"], tls=True) as c:
        assert c.greeting.code == 220
        c.cmd("EHLO client.test")
        c.expect("MAIL FROM:<alice@client.test>", "530 5.7.0 authentication required")
    result = swaks(run, "smtps", "--tlsc", "--auth", "PLAIN", "--auth-user", "alice",
                   "--auth-password", "wonderland", "--to", "friend@elsewhere.test")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: len(run.messages()) == 1, 15, "the message in var/Maildir/new")


def test_submission_wants_starttls_then_auth(run):
    with SmtpConnection(*run.addresses["submission"]) as c:
        reply = c.cmd("EHLO client.test")
        assert "250-STARTTLS" in reply.lines
        assert not any(line[4:].startswith("AUTH") for line in reply.lines)
        c.expect("MAIL FROM:<alice@client.test>",
                 "530 5.7.0 must issue a STARTTLS command first")
    before = len(run.log())
    count = len(run.messages())
    result = swaks(run, "submission", "--tls", "--auth", "LOGIN", "--auth-user", "alice",
                   "--auth-password", "wonderland", "--to", "friend@elsewhere.test")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: len(run.messages()) == count + 1, 15, "the message in var/Maildir/new")
    wait_for(lambda: re.search(r"authlogger: pid [0-9]+ - user alice authenticated with login "
                               r"from 127\.0\.0\.1", run.log()[before:]), 10,
             "authlogger's line (etc/control/msaplugins [auth])")
