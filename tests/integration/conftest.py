# Integration test harness: builds a hermetic sppd instance in a temp dir (sppd.conf on a
# free loopback port, control/, tcprules, a Maildir, fake qmail-queue scripts), starts the
# real sppd-master from SPPD_BIN_DIR, and gives tests an SMTP client, the Maildir, the
# process table and signals. Every wait is a condition with a deadline, never a bare sleep.
# TLS and AUTH: a self-signed certificate made with `openssl req` at test time, a password
# file for the test checkpassword program, [service authd] settings, TLS-capable clients.
# DNSBLs: rbldnsd (Debian) on a loopback port serving test zones, its query log for counting
# what reached the DNS server (Rbldnsd, the rbldnsd fixture, DNSBL_ZONES, DNSBL_CLIENTS).
# On teardown the master gets SIGTERM; its log is printed when a test failed, and any
# sanitizer report in the log fails the test.
import base64
import dataclasses
import datetime
import functools
import hmac
import ipaddress
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

SOURCE_DIR = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("SPPD_BIN_DIR") or SOURCE_DIR / "build" / "bin").resolve()
IS_ROOT = os.geteuid() == 0

# Service -> the system user it runs as when the master is root (scripts/install-deps.sh).
# authd has none: it stays root, as checkpassword programs may need root (DESIGN.md).
SERVICE_USERS = {"smtpd": "sppd-smtpd", "queue-bridge": "sppd-queue", "dnsbl-cache": "sppd-dns",
                 "pluginrunner": "sppd-plugin", "authd": "root"}
PROGRAMS = {"smtpd": "sppd-smtpd", "queue-bridge": "sppd-queue-bridge",
            "dnsbl-cache": "sppd-dnsbl-cache", "pluginrunner": "sppd-pluginrunner",
            "authd": "sppd-authd"}

START_TIMEOUT = 30.0    # master start until the first 220 (generous for ASan builds)
REPLY_TIMEOUT = 15.0    # one SMTP reply
MESSAGE_TIMEOUT = 15.0  # a message to appear in Maildir/new
EXIT_TIMEOUT = 30.0     # processes to exit after a signal

SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                      "SUMMARY: UndefinedBehaviorSanitizer", "runtime error:")

# The Received line sppd writes first into every message (BRIEF "Received line").
MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
RECEIVED_RE = re.compile(
    rb"Received: from (?P<host>[^ \n]+)(?: \(HELO (?P<helo>[^\n]*?)\))? \((?P<ip>[^)\n]*)\)\n"
    rb"  by (?P<local>[^ \n]+) with (?P<proto>[A-Z]+(?: \([^)\n]*\))?); "
    rb"(?P<date>(?:[1-9]|[12][0-9]|3[01]) (?:" + MONTHS.encode() + rb") [0-9]{4} "
    rb"[0-2][0-9]:[0-5][0-9]:[0-6][0-9]) -0000\n")
QUEUED_RE = re.compile(r"^250 2\.6\.0 ok (?P<time>[0-9]+) qp (?P<pid>[0-9]+)$")

# qmail-spp plugins for the tests: sh and Python sources here, C ones built by the test build
# (tests/integration/CMakeLists.txt) into <build>/test-plugins, the seed's plugins
# (pluginrunner/plugins) into <build>/plugins.
PLUGIN_SOURCE_DIR = Path(__file__).resolve().parent / "plugins"
TEST_PLUGIN_DIR = Path(os.environ.get("SPPD_TEST_PLUGIN_DIR") or BIN_DIR.parent / "test-plugins")
SEED_PLUGIN_DIR = Path(os.environ.get("SPPD_PLUGIN_DIR") or BIN_DIR.parent / "plugins")
# Test programs built by the test build into <build>/test-bin: the checkpassword-compatible
# sppd-test-checkpassword PASSWORDFILE SUBPROGRAM... (PLAIN/LOGIN and the CRAM conventions;
# exit 1 mismatch, 2 malformed, 111 unreadable file, else execs the rest of argv).
TEST_BIN_DIR = Path(os.environ.get("SPPD_TEST_BIN_DIR") or BIN_DIR.parent / "test-bin")
TEST_CHECKPASSWORD = TEST_BIN_DIR / "sppd-test-checkpassword"
# Helper programs of the AUTH tests (recordpw, a recording wrapper; multicheckpw), copied
# into the bin/ of every instance that has [service authd] settings.
AUTH_PROGRAM_DIR = Path(__file__).resolve().parent / "auth"


def wait_for(predicate, timeout, what, interval=0.02):
    """Polls predicate until it returns something truthy; fails the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def free_port(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_loopback_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def asan_build():
    """True if the programs under test were built with AddressSanitizer."""
    try:
        return b"__asan_init" in (BIN_DIR / "sppd-master").read_bytes()
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# /proc helpers

def proc_stat(pid):
    """Fields of /proc/PID/stat after the command name: [0] = state, [1] = ppid, ..."""
    data = Path(f"/proc/{pid}/stat").read_text()
    return data[data.rindex(")") + 2:].split()


def proc_status(pid):
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def proc_name(pid):
    """Basename of argv[0]; '' for a zombie or a process that is gone."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return ""
    return os.path.basename(argv0.decode(errors="replace"))


def process_table():
    """pid -> ppid for every live process."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                table[int(entry)] = int(proc_stat(entry)[1])
            except (OSError, ValueError, IndexError):
                pass
    return table


def children_of(pid):
    return sorted(p for p, parent in process_table().items() if parent == pid)


def descendants_of(pid):
    table = process_table()
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in table.items() if pp == parent]
        found.extend(kids)
        frontier.extend(kids)
    return sorted(found)


def alive(pid):
    try:
        return proc_stat(pid)[0] != "Z"
    except OSError:
        return False


def vm_hwm_kib(pid):
    try:
        return int(proc_status(pid).get("VmHWM", "0 kB").split()[0])
    except (OSError, ValueError):
        return 0


# ---------------------------------------------------------------------------------------------
# TLS and SMTP AUTH helpers

@functools.lru_cache(maxsize=None)
def make_certificate(name="mx.sppd.test"):
    """PEM text of a fresh self-signed certificate (ECDSA P-256) followed by its key, as
    qmail's control/servercert.pem holds them; made with `openssl req` once per test run."""
    directory = Path(tempfile.mkdtemp(prefix="sppd-test-cert-"))
    try:
        cert, key = directory / "cert.pem", directory / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
                        "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True, timeout=30)
        return cert.read_text() + key.read_text()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def tls_client_context(version=None):
    """A client context that takes the tests' self-signed certificate. version pins the
    protocol: "TLSv1.2" or "TLSv1.3"; None = whatever both sides prefer."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if version:
        pinned = getattr(ssl.TLSVersion, version.replace(".", "_"))
        context.minimum_version = context.maximum_version = pinned
    return context


def b64(data):
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


# The CRAM mechanisms and their HMAC hash (RFC 2195; qmail's AUTH patches for SHA1, RIPEMD).
CRAM_HASHES = {"CRAM-MD5": "md5", "CRAM-SHA1": "sha1", "CRAM-RIPEMD": "ripemd160"}


def cram_response(mechanism, challenge_b64, user, password):
    """The client's answer to `334 <challenge_b64>`: base64 of "user hexdigest"."""
    challenge = base64.b64decode(challenge_b64)
    digest = hmac.new(password.encode(), challenge, CRAM_HASHES[mechanism]).hexdigest()
    return b64(f"{user} {digest}")


@functools.lru_cache(maxsize=None)
def swaks_supports_tls():
    result = subprocess.run(["swaks", "--support"], capture_output=True, text=True, timeout=30)
    return "=== TLS supported" in result.stdout + result.stderr


def swaks(instance, listener, *args, source=None, timeout=60):
    """Runs swaks against a listener (--server, --helo client.test, from alice@client.test
    to bob@example.com unless args say otherwise); returns the CompletedProcess."""
    if ("--tls" in args or "--tlsc" in args) and not swaks_supports_tls():
        pytest.fail("swaks cannot do TLS here: it needs Perl's Net::SSLeay (Debian package "
                    "libnet-ssleay-perl, see scripts/install-deps.sh)", pytrace=False)
    host, port = instance.addresses[listener]
    command = ["swaks", "--server", f"{host}:{port}", "--helo", "client.test",
               "--from", "alice@client.test", "--to", "bob@example.com", *args]
    if source:
        command += ["--local-interface", source]
    return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


# ---------------------------------------------------------------------------------------------
# SMTP client for raw dialogues

@dataclasses.dataclass
class Reply:
    code: int
    lines: list  # full reply lines without CRLF, e.g. ["250-sppd.test", "250 8BITMIME"]

    @property
    def line(self):
        """The reply as one string (lines joined with \\n)."""
        return "\n".join(self.lines)

    def __str__(self):
        return self.line


class SmtpConnection:
    """A raw SMTP client: bytes in, replies out. Reads the greeting on connect by default."""

    def __init__(self, host, port, timeout=REPLY_TIMEOUT, greet=True, source=None, tls=False,
                 tls_version=None):
        """tls: implicit TLS (SMTPS): the handshake comes before the greeting."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buffer = b""
        if tls:
            self.start_tls(tls_version)
        self.greeting = self.read_reply() if greet else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def start_tls(self, version=None):
        """The client side of a TLS handshake on the connection as it stands (after the
        server's 220 to STARTTLS, or at once for SMTPS). Nothing may be buffered unread."""
        assert self.buffer == b"", f"plaintext left unread before the handshake: {self.buffer!r}"
        self.sock = tls_client_context(version).wrap_socket(self.sock)

    def starttls(self, version=None):
        """STARTTLS, its exact 220 and the handshake; returns the 220 reply."""
        reply = self.expect("STARTTLS", "220 2.0.0 ready for tls")
        self.start_tls(version)
        return reply

    @property
    def cipher(self):
        """(cipher name, protocol version, secret bits) of the TLS session."""
        return self.sock.cipher()

    def auth(self, mechanism, user, password, initial=False):
        """A whole AUTH exchange as a client does it; returns the server's last reply.
        initial: send the PLAIN credentials / LOGIN user name on the AUTH line."""
        if mechanism == "PLAIN":
            response = b64(f"\0{user}\0{password}")
            if initial:
                return self.cmd(f"AUTH PLAIN {response}")
            reply = self.cmd("AUTH PLAIN")
            assert reply.lines == ["334 "], reply.line
            return self.cmd(response)
        if mechanism == "LOGIN":
            if initial:
                reply = self.cmd(f"AUTH LOGIN {b64(user)}")
            else:
                reply = self.cmd("AUTH LOGIN")
                assert reply.lines == ["334 VXNlcm5hbWU6"], reply.line
                reply = self.cmd(b64(user))
            assert reply.lines == ["334 UGFzc3dvcmQ6"], reply.line
            return self.cmd(b64(password))
        reply = self.cmd(f"AUTH {mechanism}")
        assert reply.code == 334, reply.line
        return self.cmd(cram_response(mechanism, reply.line[4:], user, password))

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buffer += chunk

    def recv_chunk(self):
        """The next bytes as the socket delivers them (for checking batched replies)."""
        if self.buffer:
            chunk, self.buffer = self.buffer, b""
            return chunk
        self._fill()
        chunk, self.buffer = self.buffer, b""
        return chunk

    def read_line(self):
        while b"\r\n" not in self.buffer:
            self._fill()
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line.decode("utf-8", errors="replace")

    def read_reply(self):
        lines = []
        while True:
            line = self.read_line()
            lines.append(line)
            assert len(line) >= 3 and line[:3].isdigit(), f"not an SMTP reply line: {line!r}"
            if len(line) == 3 or line[3] == " ":
                return Reply(int(line[:3]), lines)
            assert line[3] == "-", f"bad continuation in reply line: {line!r}"

    def read_replies(self, n):
        return [self.read_reply() for _ in range(n)]

    def cmd(self, line):
        """Sends one command line (CRLF added) and returns its reply."""
        self.send(line.encode() + b"\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.read_reply()

    def expect(self, line, *expected):
        """Sends a command and asserts the reply lines are exactly `expected`."""
        reply = self.cmd(line)
        shown = line if len(line) < 80 else line[:60] + f"...({len(line)} bytes)"
        assert reply.lines == list(expected), f"after {shown!r}"
        return reply

    def expect_closed(self, timeout=REPLY_TIMEOUT):
        """Waits for the server to close; returns whatever bytes came before the close."""
        self.sock.settimeout(timeout)
        data, self.buffer = self.buffer, b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return data
                data += chunk
        except (ConnectionResetError, ssl.SSLError):
            return data  # a reset, or a TLS session cut without close_notify
        except socket.timeout:
            raise AssertionError(f"server did not close the connection within {timeout}s "
                                 f"(got {data!r})") from None

    def transaction(self, mail_from, rcpts, message, mail_params=""):
        """MAIL, RCPT..., DATA, message (CRLF lines, dot-stuffed by the caller), '.';
        asserts the envelope is accepted and returns the reply to the final dot."""
        self.expect(f"MAIL FROM:<{mail_from}>{mail_params}", "250 2.1.0 ok")
        for rcpt in rcpts:
            self.expect(f"RCPT TO:<{rcpt}>", "250 2.1.5 ok")
        self.expect("DATA", "354 go ahead")
        self.send(message if isinstance(message, bytes) else message.encode())
        self.send(b".\r\n")
        return self.read_reply()


# ---------------------------------------------------------------------------------------------
# Maildir messages written by sppd-maildir-queue

@dataclasses.dataclass
class Message:
    path: Path
    return_path: str     # sender, "" for <>
    recipients: list     # Delivered-To values in order
    data: bytes          # the bytes qmail-queue got on fd 0: Received line + message

    @property
    def received(self):
        m = RECEIVED_RE.match(self.data)
        assert m, f"message does not start with a Received line: {self.data[:200]!r}"
        return m

    @property
    def body(self):
        """The client's message after CRLF->LF and dot-unstuffing (without our Received)."""
        return self.data[self.received.end():]


def parse_message(path):
    raw = Path(path).read_bytes()
    first, _, rest = raw.partition(b"\n")
    m = re.fullmatch(rb"Return-Path: <(.*)>", first)
    assert m, f"{path}: does not start with Return-Path: {raw[:100]!r}"
    recipients = []
    while rest.startswith(b"Delivered-To: "):
        line, _, rest = rest.partition(b"\n")
        recipients.append(line[len(b"Delivered-To: "):].decode())
    return Message(Path(path), m.group(1).decode(), recipients, rest)


def expect_received(message, helo="client.test", host="unknown", ip="127.0.0.1",
                    local="127.0.0.1", proto="ESMTP"):
    """Asserts the exact Received line (date checked to be now, in UTC)."""
    m = message.received
    date = m.group("date").decode()
    helo_part = f" (HELO {helo})" if helo is not None else ""
    expected = f"Received: from {host}{helo_part} ({ip})\n  by {local} with {proto}; {date} -0000\n"
    assert message.data[:m.end()].decode() == expected
    when = datetime.datetime.strptime(date, "%d %b %Y %H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    skew = abs(when.timestamp() - time.time())
    assert skew < 300, f"Received date {date} is {skew:.0f}s away from now (must be UTC)"


# ---------------------------------------------------------------------------------------------
# Fake qmail-queue programs (shell scripts in <dir>/queue/, output in <dir>/out/)

SCRIPTED_QUEUE = r"""#!/bin/sh
# Fake qmail-queue steered by headers in the message it receives:
#   X-Exit: N       read message and envelope, exit N;  X-Exit: kill  -> SIGKILL itself
#   X-Error: text   first write text to fd 6 (or X-Error-Fd: n), for exit 82/88
#   X-Sleep: N      sleep N seconds after reading the message
# Without X-Exit the message goes to the bundled Maildir queue.
out=@OUT@
msg=$(mktemp "$out/msg.XXXXXX") || exit 53
cat > "$msg"
: > "$out/started.$$"
field() { sed -n "s/^$1: //p" "$msg" | head -n 1; }
code=$(field X-Exit)
error=$(field X-Error)
errfd=$(field X-Error-Fd)
pause=$(field X-Sleep)
[ -n "$pause" ] && sleep "$pause"
if [ -z "$code" ]; then
  exec 0< "$msg"
  rm -f "$msg"
  exec @MAILDIRQUEUE@ Maildir
fi
rm -f "$msg"
cat <&1 > /dev/null
[ -n "$error" ] && eval "printf '%s' \"\$error\" >&${errfd:-6}"
[ "$code" = kill ] && kill -9 $$
exit "$code"
"""

HANG_QUEUE = """#!/bin/sh
# Fake qmail-queue that never finishes (reads nothing, keeps its pid).
exec sleep 60
"""

ENVDUMP_QUEUE = """#!/bin/sh
# Fake qmail-queue: records its environment, uid and cwd in @OUT@/env.<pid>, then queues the
# message with the bundled Maildir queue (exec keeps the pid, so "qp <pid>" names the file).
env > "@OUT@/env.$$.tmp"
echo "SPPD_TEST_UID=$(id -u)" >> "@OUT@/env.$$.tmp"
echo "SPPD_TEST_CWD=$(pwd -P)" >> "@OUT@/env.$$.tmp"
mv "@OUT@/env.$$.tmp" "@OUT@/env.$$"
exec @MAILDIRQUEUE@ Maildir
"""


# ---------------------------------------------------------------------------------------------
# qmail-spp plugins: installed into <dir>/plugins/ (qmail_home is <dir>, so config lines say
# plugins/NAME as on a qmail host); the "say" plugins record what they saw in <dir>/out/.

@dataclasses.dataclass
class PluginRun:
    """One run of a say plugin (plugins/say.c, say.sh, say.py), from out/NAME.N.
    C fills everything; sh and Python fill argv, env and cwd only."""
    path: Path
    argv: list
    env: dict
    cwd: str
    fds: dict      # {fd: readlink target} of the descriptors open when the plugin started
    ids: dict      # pid, ppid, pgid, sid, uid, gid (ints)
    signals: dict  # SigIgn, SigBlk: masks as ints (bit n-1 = signal n), from /proc/self/status


def parse_plugin_run(path):
    argv, env, fds, ids, signals, cwd = [], {}, {}, {}, {}, None
    for record in Path(path).read_bytes().split(b"\0"):
        if not record:
            continue
        key, _, value = record.decode("utf-8", errors="surrogateescape").partition("=")
        if key == "argv":
            argv.append(value)
        elif key == "env":
            name, _, val = value.partition("=")
            env[name] = val
        elif key == "cwd":
            cwd = value
        elif key == "fd":
            number, _, target = value.partition(" ")
            fds[int(number)] = target
        elif key in ("SigIgn", "SigBlk"):
            signals[key] = int(value, 16)
        elif key in ("pid", "ppid", "pgid", "sid", "uid", "gid"):
            ids[key] = int(value)
    return PluginRun(Path(path), argv, env, cwd, fds, ids, signals)


def plugin_file(source):
    """The file behind a plugin source name: NAME.sh / NAME.py from tests/integration/plugins,
    NAME.c = the C plugin the test build made, seed/NAME = a plugin sppd ships, or an
    absolute path."""
    if os.path.isabs(source):
        path = Path(source)
        hint = "no such file"
    elif source.startswith("seed/"):
        path = SEED_PLUGIN_DIR / source[len("seed/"):]
        hint = "sppd's plugins (pluginrunner/plugins) are not built"
    elif source.endswith(".c"):
        path = TEST_PLUGIN_DIR / source[:-2]
        hint = "the C test plugins (tests/integration/plugins/*.c) are not built"
    else:
        path = PLUGIN_SOURCE_DIR / source
        hint = "no such test plugin"
    if not path.exists():
        pytest.fail(f"{path}: {hint}", pytrace=False)
    return path


# Plugin tests share one instance per file and tell clients apart by their loopback source
# address: the tcprules below give each address the environment a test needs.
SPP_CLIENTS = {
    "nospp": "127.0.0.2",          # NOSPP="" (set but empty): plugins off
    "other_file": "127.0.0.3",     # SPPCONFFILE relative to qmail_home
    "relayclient": "127.0.0.4",    # RELAYCLIENT="@fixme"
    "authenticated": "127.0.0.5",  # SMTPAUTHUSER="alice" (until AUTH lands)
    "absolute_file": "127.0.0.6",  # SPPCONFFILE absolute
    "rule_variable": "127.0.0.7",  # SPPTEST="from tcprules"
    "empty_file": "127.0.0.8",     # SPPCONFFILE="" (empty: the default file)
    "missing_file": "127.0.0.9",   # SPPCONFFILE naming a file that does not exist
    "unreadable_file": "127.0.0.10",  # SPPCONFFILE naming a directory
}
# Reply lines the plugin tests compare against (conftest's default control files).
GREETING = ["220 mx.sppd.test ESMTP"]
EHLO_LINES = ["250-mx.sppd.test", "250-PIPELINING", "250-8BITMIME", "250-SIZE 10485760",
              "250 ENHANCEDSTATUSCODES"]
RELAY_REFUSED = "553 5.7.1 sorry, that domain isn't in my list of allowed rcpthosts"
BADMAILFROM = "553 5.7.1 sorry, your envelope sender is in my badmailfrom list"


def spp_tcprules(instance_dir):
    c = SPP_CLIENTS
    return (
        "# tcprules of the plugin tests (conftest.spp_tcprules): one source address per case\n"
        f'{c["nospp"]}:allow,NOSPP=""\n'
        f'{c["other_file"]}:allow,SPPCONFFILE="control/otherplugins"\n'
        f'{c["relayclient"]}:allow,RELAYCLIENT="@fixme"\n'
        f'{c["authenticated"]}:allow,SMTPAUTHUSER="alice"\n'
        f'{c["absolute_file"]}:allow,SPPCONFFILE="{instance_dir}/elsewhere/plugins.conf"\n'
        f'{c["rule_variable"]}:allow,SPPTEST="from tcprules"\n'
        f'{c["empty_file"]}:allow,SPPCONFFILE=""\n'
        f'{c["missing_file"]}:allow,SPPCONFFILE="control/nosuchplugins"\n'
        f'{c["unreadable_file"]}:allow,SPPCONFFILE="control/plugindir"\n'
        ":allow\n")


def start_plugin_instance(factory, **options):
    """A started instance for plugin tests: the spp_tcprules clients, a pluginrunner pool of
    2, the env-recording queue (messages still land in the Maildir) unless told otherwise."""
    options.setdefault("queue", "envdump")
    options["pluginrunner"] = {"processes": "2", **options.get("pluginrunner", {})}
    options.setdefault("smtpplugins", None)
    instance = factory(start=False, **options)
    instance.tcprules = spp_tcprules(instance.dir)
    return instance.start()


# ---------------------------------------------------------------------------------------------
# A real DNSBL server for the DNSBL tests and the benchmark: Debian's rbldnsd (package
# rbldnsd) in the foreground, a child of the test, on a free loopback UDP port, serving zone
# files written to a temp dir. It logs every query it answers to its stdout (`-l +-`,
# unbuffered) into a file, which is how the tests count the queries that reached the server
# (dnsbl-cache's resolver points at it). As root it runs as its own user rbldns.

RBLDNSD = shutil.which("rbldnsd") or "/usr/sbin/rbldnsd"
DNS_TYPES = {"A": 1, "NS": 2, "SOA": 6, "PTR": 12, "TXT": 16, "AAAA": 28}
DNSBL_TTL = 300  # positive TTL (-t) and negative TTL (SOA minimum) of every test zone

# The DNSBL tests' clients: loopback source addresses (a client binds 127.0.0.x before it
# connects), each with its role in the zones below.
DNSBL_CLIENTS = {
    "unlisted": "127.0.0.1",      # in no zone
    "listed": "127.0.0.2",        # bl.test, the zone's default text
    "own_text": "127.0.0.3",      # bl.test with a text of its own
    "anti": "127.0.0.4",          # bl.test and the anti-list white.test
    "a_only": "127.0.0.5",        # al.test: an A record, no TXT
    "refusal": "127.0.0.6",       # pub.test answers 127.255.255.254 (a public resolver's "no")
    "rcpt_auth": "127.0.0.7",     # bl.test; looked up only by the RCPT/AUTH test
    "long_text": "127.0.0.8",     # bl.test, a 235-byte text
    "odd_bytes": "127.0.0.9",     # bl.test, a text with a tab and UTF-8
    "env_empty": "127.0.0.20",    # bl.test, but tcprules set RBLSMTPD=""
    "env_permanent": "127.0.0.21",  # bl.test, RBLSMTPD="-..."
    "env_temporary": "127.0.0.22",  # bl.test, RBLSMTPD="..."
    "rcpt_quiet": "127.0.0.23",   # bl.test; rcpt mode, a session without RCPT
}
DNSBL_LONG_TEXT = "Long " + "0123456789" * 23
DNSBL_ODD_TEXT = "Listed\there, caf\u00e9"


def dnsbl_soa(zone):
    return f"$SOA {DNSBL_TTL} ns.{zone} hostmaster.{zone} 1 1h 1h 1d {DNSBL_TTL}\n"


def dnsbl_text(ip):
    """The TXT text bl.test gives a client listed with the zone's default text."""
    return f"Listed in bl.test, see http://bl.test/{ip}"


# {zone: [(rbldnsd dataset type, file text), ...]}
DNSBL_ZONES = {
    "bl.test": [
        ("ip4set", dnsbl_soa("bl.test") +
         ":127.0.0.2:Listed in bl.test, see http://bl.test/$\n"
         "127.0.0.2\n"
         "127.0.0.3 :127.0.0.3:Open relay $ (see http://bl.test/relay)\n"
         "127.0.0.4\n"
         "127.0.0.7\n"
         f"127.0.0.8 {DNSBL_LONG_TEXT}\n"
         f"127.0.0.9 {DNSBL_ODD_TEXT}\n"
         "127.0.0.20-23\n"),
        ("ip6trie", ":127.0.0.2:IPv6 $ listed in bl.test\n::1\n"),
    ],
    "white.test": [("ip4set", dnsbl_soa("white.test") + "127.0.0.4\n")],
    "al.test": [("ip4set", dnsbl_soa("al.test") + "127.0.0.5 :2:\n")],
    "pub.test": [("ip4set", dnsbl_soa("pub.test") + "127.0.0.6 :127.255.255.254:\n")],
}


def dnsbl_name(ip, zone):
    """The DNSBL query name: reversed octets (IPv4) or nibbles (IPv6), then the zone."""
    pointer = ipaddress.ip_address(ip).reverse_pointer
    return pointer.rsplit(".", 2)[0] + "." + zone


def stop_process(process, timeout=10):
    """SIGTERM to a helper server the tests started (rbldnsd, dnsmasq, clamd), SIGKILL if it
    is not gone within timeout seconds; nothing if it already exited."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def dns_query(port, name, qtype="A", host="127.0.0.1", timeout=0.5):
    """One DNS query over UDP; returns (rcode, raw answer), or None without an answer."""
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    txid = int.from_bytes(os.urandom(2), "big")
    packet = struct.pack(">HHHHHH", txid, 0x0100, 1, 0, 0, 0) + question + \
        struct.pack(">HH", DNS_TYPES.get(qtype, qtype), 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, (host, port))
        try:
            answer = s.recv(4096)
        except socket.timeout:
            return None
    return answer[3] & 0x0F, answer


class Rbldnsd:
    """rbldnsd serving `zones` ({zone: [(type, text)]}) on 127.0.0.1:port; start() waits
    until it answers. queries() are the (name, type) pairs it has logged, oldest first."""

    def __init__(self, zones=None, ttl=DNSBL_TTL):
        self.zones = zones or DNSBL_ZONES
        self.ttl = ttl
        self.dir = Path(os.path.realpath(tempfile.mkdtemp(prefix="sppd-rbldnsd-")))
        os.chmod(self.dir, 0o755)  # rbldnsd reads the files as rbldns when we are root
        self.log_path = self.dir / "queries.log"
        self.process = None
        self.port = None
        self.syncs = 0
        self.specs = []
        for zone, datasets in self.zones.items():
            for i, (kind, text) in enumerate(datasets):
                path = self.dir / f"{zone}.{i}"
                path.write_text(text)
                os.chmod(path, 0o644)
                self.specs.append(f"{zone}:{kind}:{path.name}")

    def start(self):
        for attempt in range(3):
            self.port = free_udp_port()
            log = open(self.log_path, "wb")
            self.process = subprocess.Popen(
                [RBLDNSD, "-n", "-b", f"127.0.0.1/{self.port}", "-w", str(self.dir),
                 "-t", str(self.ttl), "-c", "0", "-l", "+-", *self.specs],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            log.close()
            probe = f"probe.{next(iter(self.zones))}"

            def answering():
                if self.process.poll() is not None:
                    return "exited"
                return dns_query(self.port, probe, "TXT") is not None
            if wait_for(answering, 15, "rbldnsd to answer") is True:
                return self
            if attempt == 2 or "in use" not in self.log():
                raise AssertionError(f"rbldnsd exited with {self.process.returncode}:\n"
                                     f"{self.log()}")
        return self

    def stop(self):
        stop_process(self.process)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def resolver(self):
        """The [service dnsbl-cache] resolver value that points at this server."""
        return f"127.0.0.1:{self.port}"

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def sync(self):
        """Waits until every query sent to the server before this call is in its log: the
        server is one process answering in order, so a query of ours logged means the
        earlier ones are too."""
        self.syncs += 1
        name = f"sync-{self.syncs}.{next(iter(self.zones))}"
        wait_for(lambda: dns_query(self.port, name, "A") is not None, 15,
                 f"rbldnsd to answer {name}")
        wait_for(lambda: f" {name} " in self.log(), 15, f"{name} in rbldnsd's log")

    def queries(self, sync=True):
        """[(name in lower case, type)] of the queries the server got, oldest first, without
        the harness's own probes."""
        if sync:
            self.sync()
        found = []
        for line in self.log().splitlines():
            fields = line.split()
            # "1700000000 127.0.0.1 2.0.0.127.bl.test TXT IN: NOERROR/1/95"
            if len(fields) >= 5 and fields[0].isdigit() and fields[4] == "IN:":
                name = fields[2].lower().rstrip(".")
                if not name.startswith(("sync-", "probe.")):
                    found.append((name, fields[3]))
        return found

    def mark(self):
        """A position in the query log, for count(since=...)."""
        return len(self.queries())

    def count(self, ip, zone, qtype=None, since=0, sync=True):
        """How many queries about ip in zone (of qtype, if given) reached the server."""
        name = dnsbl_name(ip, zone)
        return sum(1 for n, t in self.queries(sync)[since:]
                   if n == name and (qtype is None or t == qtype))


def free_udp_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def dnsbl_listener(rbl, when=None, address="127.0.0.1:{free}", **settings):
    """Settings of a listener that checks DNSBLs: rbl = an rblsmtpd option string,
    when = "connect" | "rcpt" (None: sppd's default)."""
    out = {"address": address, "control_dir": "control", "tcprules": "tcp.smtp",
           "remote_host_lookup": "no", "rbl": rbl, **settings}
    if when:
        out["rbl_when"] = when
    return out


# ---------------------------------------------------------------------------------------------
# The instance

class Sppd:
    """One hermetic sppd: a temp dir with sppd.conf, control/, tcprules, Maildir, queue/.

    Options (all optional):
      glob, smtpd, queue_bridge, dnsbl_cache: dicts merged into that sppd.conf section;
      listener: dict merged into [listener smtp]; extra_listeners: {name: dict};
        an address may contain "{free}", replaced by a free port on that host;
      control: {file: text or None} merged into control/ (None removes the file);
      tcprules: text of the tcprules file;
      queue: "maildir" (bundled), "scripted", "hang", "envdump" or a full qmail_queue value;
      run_as: user name to run the master as (only when the tests run as root);
      pluginrunner: dict merged into [service pluginrunner] (processes, plugin_timeout, ...);
      plugins: {name: source or (source, output bytes)} installed as plugins/NAME (see
        install_plugin); smtpplugins: raw text of control/smtpplugins (None: no file);
      home_files: {path relative to qmail_home: raw text} (e.g. control/msaplugins);
      tls: True installs a self-signed certificate (make_certificate) as
        control/servercert.pem, so STARTTLS is offered and implicit_tls listeners work;
      authd: dict merged into [service authd];
      passwords: {user: password} written to <dir>/passwords; unless authd names a
        checkpassword, authd then runs recordpw (which logs every run to
        out/checkpassword.log) in front of sppd-test-checkpassword over that file.
    """

    def __init__(self, options=None):
        options = dict(options or {})
        self.dir = Path(os.path.realpath(tempfile.mkdtemp(prefix="sppd-test-")))
        os.chmod(self.dir, 0o755)
        self.run_as = options.pop("run_as", None)
        if self.run_as and not IS_ROOT:
            self.run_as = None
        self.master = None
        self.exit_code = None
        self.failed_start = None
        self.log_path = self.dir / "sppd.log"
        self.conf_path = self.dir / "sppd.conf"
        self.control_dir = self.dir / "control"
        self.maildir = self.dir / "Maildir"
        self.out_dir = self.dir / "out"
        self.tcprules_path = self.dir / "tcp.smtp"
        self.known_pids = set()

        drop_privileges = IS_ROOT and not self.run_as
        self.glob = {"qmail_home": str(self.dir), "drain_timeout": "10", "log_level": "info"}
        self.smtpd = {"processes": "2", "sessions_per_worker": "50", "chroot": str(self.dir / "empty")}
        self.queue_bridge = {}
        # dnsbl-cache's local socket (rblspp, sppd-dnsbl-status): one per instance, so tests
        # running side by side do not share /run/sppd/dnsbl-cache.sock. The master makes run/.
        self.dnsbl_cache = {"socket": str(self.dir / "run" / "dnsbl-cache.sock")}
        self.pluginrunner = {}
        self.authd = {}
        if drop_privileges:
            self.smtpd["user"] = SERVICE_USERS["smtpd"]
            self.queue_bridge["user"] = SERVICE_USERS["queue-bridge"]
            self.dnsbl_cache["user"] = SERVICE_USERS["dnsbl-cache"]
            self.pluginrunner["user"] = SERVICE_USERS["pluginrunner"]
        # No PTR lookups by default: loopback has no reverse zone here, and tests must not
        # depend on the machine's resolver. test_dns.py turns them on against its own server.
        self.listeners = {"smtp": {"address": "127.0.0.1:{free}", "control_dir": "control",
                                   "tcprules": "tcp.smtp", "remote_host_lookup": "no"}}
        self.control = {"me": "sppd.test", "smtpgreeting": "mx.sppd.test",
                        "rcpthosts": "example.com\n.example.net\n", "databytes": "10485760"}
        self.tcprules = "# no rules: every client is allowed, with no extra environment\n"
        self.queue = "maildir"

        self.glob.update(options.pop("glob", {}))
        self.smtpd.update(options.pop("smtpd", {}))
        self.queue_bridge.update(options.pop("queue_bridge", {}))
        self.dnsbl_cache.update(options.pop("dnsbl_cache", {}))
        self.pluginrunner.update(options.pop("pluginrunner", {}))
        self.authd.update(options.pop("authd", {}))
        self.passwords = options.pop("passwords", None)
        self.passwords_path = self.dir / "passwords"
        self.checkpassword_log = self.out_dir / "checkpassword.log"
        if self.passwords is not None and "checkpassword" not in self.authd:
            self.authd["checkpassword"] = (f"{self.dir}/bin/recordpw {self.checkpassword_log} "
                                           f"{TEST_CHECKPASSWORD} {self.passwords_path} /bin/true")
        if options.pop("tls", False):
            self.control["servercert.pem"] = make_certificate()
        self.plugin_dir = self.dir / "plugins"
        self.plugins = dict(options.pop("plugins", {}))
        self.home_files = dict(options.pop("home_files", {}))
        if "smtpplugins" in options:
            self.home_files["control/smtpplugins"] = options.pop("smtpplugins")
        self.listeners["smtp"].update(options.pop("listener", {}))
        self.listeners.update(options.pop("extra_listeners", {}))
        self.control.update(options.pop("control", {}))
        self.tcprules = options.pop("tcprules", self.tcprules)
        self.queue = options.pop("queue", self.queue)
        assert not options, f"unknown Sppd options: {sorted(options)}"
        self.addresses = {}  # listener name -> (host, port)
        self._choose_ports()

    # ---- files

    def _choose_ports(self):
        for name, settings in self.listeners.items():
            template = settings["address"]
            host = template[1:template.index("]")] if template.startswith("[") else \
                template.rpartition(":")[0]
            port = free_port(host) if "{free}" in template else int(template.rpartition(":")[2])
            settings["resolved_address"] = template.replace("{free}", str(port))
            self.addresses[name] = (host, port)

    @property
    def host(self):
        return self.addresses["smtp"][0]

    @property
    def port(self):
        return self.addresses["smtp"][1]

    @property
    def dnsbl_socket(self):
        """dnsbl-cache's local socket ([service dnsbl-cache] socket)."""
        return Path(self.dnsbl_cache["socket"])

    def queue_command(self):
        maildir_queue = f"{BIN_DIR}/sppd-maildir-queue Maildir"
        return {"maildir": maildir_queue,
                "scripted": f"{self.dir}/queue/scripted",
                "hang": f"{self.dir}/queue/hang",
                "envdump": f"{self.dir}/queue/envdump"}.get(self.queue, self.queue)

    def config_text(self):
        def section(header, settings):
            lines = [header] if header else []
            lines += [f"{k} = {v}" for k, v in settings.items()
                      if v is not None and k != "resolved_address"]
            return "\n".join(lines) + "\n"

        bridge = {"qmail_queue": self.queue_command(), **self.queue_bridge}
        parts = ["# sppd.conf written by tests/integration/conftest.py\n",
                 section("", self.glob),
                 section("[service smtpd]", self.smtpd),
                 section("[service queue-bridge]", bridge),
                 section("[service dnsbl-cache]", self.dnsbl_cache)]
        if self.pluginrunner:
            parts.append(section("[service pluginrunner]", self.pluginrunner))
        if self.authd:
            parts.append(section("[service authd]", self.authd))
        for name, settings in self.listeners.items():
            settings = {**settings, "address": settings["resolved_address"]}
            parts.append(section(f"[listener {name}]", settings))
        return "\n".join(parts)

    def write_control(self, name, text):
        """Writes (or with None removes) control/NAME; kept across restart()."""
        self.control[name] = text
        path = self.control_dir / name
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)  # control/auth/smtp and the like
            path.write_text(text if text.endswith("\n") or text == "" else text + "\n")
            os.chmod(path, 0o644)

    def write_tcprules(self, text):
        self.tcprules = text
        self.tcprules_path.write_text(text)
        os.chmod(self.tcprules_path, 0o644)

    def write_config(self):
        self.conf_path.write_text(self.config_text())
        os.chmod(self.conf_path, 0o644)

    # ---- SMTP AUTH

    def write_passwords(self, passwords, path=None):
        """The test checkpassword's file: one user:password line each (None: remove it)."""
        path = Path(path or self.passwords_path)
        if passwords is None:
            path.unlink(missing_ok=True)
            return path
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(f"{user}:{password}\n" for user, password in passwords.items()))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        return path

    def install_auth_programs(self):
        """Copies tests/integration/auth/* (recordpw, multicheckpw) into <dir>/bin/."""
        target = self.dir / "bin"
        target.mkdir(exist_ok=True)
        for source in AUTH_PROGRAM_DIR.iterdir():
            if source.is_file():
                tmp = target / f".{source.name}.tmp"
                shutil.copyfile(source, tmp)
                os.chmod(tmp, 0o755)
                os.replace(tmp, target / source.name)

    def checkpassword_runs(self):
        """What recordpw logged, one dict per checkpassword run, oldest first: user, ip,
        fields (what fd 3 carried, split at the NULs), argv (what it ran)."""
        try:
            text = self.checkpassword_log.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    # ---- qmail-spp plugins

    def write_home_file(self, relative, text, mode=0o644):
        """Writes qmail_home/RELATIVE exactly as given (str or bytes; None removes it),
        atomically (a new inode), so a session that starts afterwards reads the new text."""
        path = self.dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            path.unlink(missing_ok=True)
            return path
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(text.encode() if isinstance(text, str) else text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        return path

    def install_plugin(self, name, source, output=None):
        """Installs plugins/NAME: source is NAME.sh/NAME.py (tests/integration/plugins), NAME.c
        (built C plugin), seed/NAME (sppd's own plugins), an absolute path, or a script text
        starting with "#!".
        output (bytes or str): what a say plugin prints, stored in plugins/NAME.out."""
        self.plugin_dir.mkdir(exist_ok=True)
        os.chmod(self.plugin_dir, 0o755)
        target = self.plugin_dir / name
        if source.startswith("#!"):
            self.write_home_file(f"plugins/{name}", source, 0o755)
        else:
            tmp = target.with_name(f".{name}.tmp")
            shutil.copyfile(plugin_file(source), tmp)
            os.chmod(tmp, 0o755)
            os.replace(tmp, target)
        if output is not None:
            self.write_home_file(f"plugins/{name}.out", output)
        return target

    def use_plugins(self, smtpplugins, plugins=None):
        """For an instance shared by several tests: forgets the previous test's plugins,
        their records, the Maildir and the queue's env dumps, installs `plugins` ({name:
        source or (source, output)}) and writes control/smtpplugins (None: no file)."""
        self.forget_records(self.plugin_dir)
        self.plugins = dict(plugins or {})
        self.home_files["control/smtpplugins"] = smtpplugins
        for name, spec in self.plugins.items():
            source, output = spec if isinstance(spec, tuple) else (spec, None)
            self.install_plugin(name, source, output)
        self.write_home_file("control/smtpplugins", smtpplugins)

    def forget_records(self, *more):
        """For an instance shared by several tests: empties out/ (plugin and checkpassword
        records, the queue's env dumps), the Maildir and the directories in `more`."""
        for d in (*more, self.out_dir, self.maildir / "new", self.maildir / "tmp"):
            if d.exists():
                for entry in d.iterdir():
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()

    def plugin_runs(self, name):
        """What plugins/NAME (a say plugin) recorded, one PluginRun per run, oldest first."""
        runs = []
        for path in self.out_dir.glob(f"{name}.*"):
            suffix = path.name[len(name) + 1:]
            if suffix.isdigit():
                runs.append((int(suffix), path))
        return [parse_plugin_run(path) for _, path in sorted(runs)]

    def write_files(self):
        for d in (self.control_dir, self.dir / "empty", self.dir / "queue", self.out_dir):
            d.mkdir(exist_ok=True)
            os.chmod(d, 0o755)
        os.chmod(self.out_dir, 0o777)  # fake queues (as sppd-queue) write here
        for sub in ("tmp", "new", "cur"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        for name, text in list(self.control.items()):
            if text is not None:  # None: leave the control file out (use sppd's default)
                self.write_control(name, text)
        self.write_tcprules(self.tcprules)
        for relative, text in self.home_files.items():
            self.write_home_file(relative, text)
        for name, spec in self.plugins.items():
            source, output = spec if isinstance(spec, tuple) else (spec, None)
            self.install_plugin(name, source, output)
        if self.passwords is not None:
            self.write_passwords(self.passwords)
        if self.authd:
            self.install_auth_programs()
        scripts = {"scripted": SCRIPTED_QUEUE, "hang": HANG_QUEUE, "envdump": ENVDUMP_QUEUE}
        for name, text in scripts.items():
            path = self.dir / "queue" / name
            path.write_text(text.replace("@OUT@", str(self.out_dir))
                            .replace("@MAILDIRQUEUE@", str(BIN_DIR / "sppd-maildir-queue")))
            os.chmod(path, 0o755)
        self.write_config()
        owner = None
        if self.run_as:
            owner = pwd.getpwnam(self.run_as)
        elif IS_ROOT and "user" in self.queue_bridge:
            owner = pwd.getpwnam(self.queue_bridge["user"])
        if owner:
            tree = self.dir if self.run_as else self.maildir
            for root, dirs, files in os.walk(tree):
                for name in [root, *[os.path.join(root, n) for n in dirs + files]]:
                    os.lchown(name, owner.pw_uid, owner.pw_gid)

    # ---- process control

    def command(self):
        cmd = [str(BIN_DIR / "sppd-master"), "--config", str(self.conf_path)]
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            cmd = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
                   "--", *cmd]
        return cmd

    def start(self, wait=True):
        """Writes the files and starts the master; waits for a 220 unless wait=False."""
        for attempt in range(3):
            self.write_files()
            log = open(self.log_path, "ab")
            self.master = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=log, cwd=self.dir, start_new_session=True)
            log.close()
            self.exit_code = None
            if not wait:
                return self
            try:
                self.wait_ready()
                return self
            except AssertionError:
                if self.master.poll() is not None and "in use" in self.log() and attempt < 2:
                    self._choose_ports()  # another test took our port between bind and start
                    continue
                raise
        return self

    def wait_ready(self, timeout=START_TIMEOUT, listener="smtp"):
        """Waits until a connection to the listener gets a 220 greeting."""
        host, port = self.addresses[listener]

        def greeted():
            if self.master.poll() is not None:
                raise AssertionError(f"sppd-master exited with {self.master.returncode} "
                                     f"during start-up:\n{self.log_tail()}")
            try:
                with SmtpConnection(host, port, timeout=10) as c:
                    ok = c.greeting.code == 220
                    c.send(b"QUIT\r\n")
                    return ok
            except (OSError, EOFError, AssertionError):
                return False

        wait_for(greeted, timeout, f"a 220 greeting on {host}:{port}", interval=0.05)
        self.known_pids.update(self.descendants())

    def signal(self, sig):
        self.master.send_signal(sig)

    def reload(self):
        """SIGHUP: the master re-reads sppd.conf and control files for new work."""
        self.signal(signal.SIGHUP)

    def wait_exit(self, timeout=EXIT_TIMEOUT):
        try:
            self.exit_code = self.master.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"sppd-master still running {timeout}s after the signal") from None
        return self.exit_code

    def stop(self, timeout=EXIT_TIMEOUT):
        """SIGTERM, wait for the master and every child to be gone (SIGKILL stragglers)."""
        if self.master is None:
            return None
        pids = set(self.descendants()) | self.known_pids
        if self.master.poll() is None:
            self.master.send_signal(signal.SIGTERM)
            try:
                self.exit_code = self.master.wait(timeout)
            except subprocess.TimeoutExpired:
                self.master.kill()
                self.exit_code = self.master.wait()
                print(f"sppd-master did not exit within {timeout}s of SIGTERM; killed it")
        else:
            self.exit_code = self.master.returncode
        leftovers = [p for p in pids if alive(p)]
        try:
            wait_for(lambda: not any(alive(p) for p in leftovers), 10, "children to exit")
        except AssertionError:
            for p in leftovers:
                if alive(p):
                    print(f"child {p} ({proc_name(p)}) outlived the master; killing it")
                    os.kill(p, signal.SIGKILL)
        return self.exit_code

    def restart(self):
        self.stop()
        return self.start()

    # ---- processes

    @property
    def pid(self):
        return self.master.pid

    def children(self):
        """{pid: program name} of the master's direct children."""
        out = {}
        for p in children_of(self.master.pid):
            name = proc_name(p)
            if name:
                out[p] = name
        return out

    def descendants(self):
        return descendants_of(self.master.pid) if self.master else []

    def pids(self, program):
        return sorted(p for p, name in self.children().items() if name == program)

    def wait_pids(self, program, count, exclude=(), timeout=START_TIMEOUT):
        """Waits until `count` children run `program`, none of them in `exclude`."""
        def ready():
            pids = self.pids(program)
            return pids if len(pids) == count and not set(pids) & set(exclude) else None
        pids = wait_for(ready, timeout, f"{count} x {program} (excluding {sorted(exclude)})",
                        interval=0.05)
        self.known_pids.update(pids)
        return pids

    # ---- clients

    def connect(self, listener="smtp", wait_listening=False, **kwargs):
        """An SmtpConnection to a listener. wait_listening: retry while the port refuses
        connections (the master has not bound it yet), up to START_TIMEOUT."""
        host, port = self.addresses[listener]
        if not wait_listening:
            return SmtpConnection(host, port, **kwargs)

        def attempt():
            try:
                return SmtpConnection(host, port, **kwargs)
            except ConnectionRefusedError:
                if self.master.poll() is not None:
                    raise AssertionError(f"sppd-master exited with {self.master.returncode}:\n"
                                         f"{self.log_tail()}") from None
                return None
        return wait_for(attempt, START_TIMEOUT, f"{host}:{port} to accept connections")

    def deliver(self, message, mail_from="alice@client.test", rcpts=("bob@example.com",),
                helo="EHLO client.test"):
        """One whole session: greeting, HELO/EHLO, transaction, QUIT. Returns the final reply."""
        with self.connect() as c:
            assert c.greeting.code == 220
            c.cmd(helo)
            reply = c.transaction(mail_from, rcpts, message)
            c.cmd("QUIT")
            return reply

    # ---- Maildir

    def new_files(self):
        return sorted((self.maildir / "new").iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name))

    def tmp_files(self):
        return sorted((self.maildir / "tmp").iterdir())

    def wait_messages(self, count, timeout=MESSAGE_TIMEOUT):
        """Waits for `count` files in Maildir/new and returns them parsed (oldest first)."""
        wait_for(lambda: len(self.new_files()) >= count, timeout,
                 f"{count} message(s) in {self.maildir}/new")
        files = self.new_files()
        assert len(files) == count, f"expected {count} messages, found {len(files)}"
        return [parse_message(f) for f in files]

    def env_of_queue(self, queued_reply):
        """The environment the envdump queue recorded, for the qp pid in a 250 reply."""
        m = QUEUED_RE.match(queued_reply.line)
        assert m, f"not a queued reply: {queued_reply.line!r}"
        path = self.out_dir / f"env.{m.group('pid')}"
        wait_for(path.exists, MESSAGE_TIMEOUT, f"{path}")
        env = {}
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                env[key] = value
        return env

    # ---- log

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=200):
        return "\n".join(self.log().splitlines()[-lines:])

    def sanitizer_reports(self):
        return [line for line in self.log().splitlines()
                if any(p in line for p in SANITIZER_PATTERNS)]


class SppdFactory:
    """Creates instances (started unless start=False) and tears them all down."""

    def __init__(self):
        self.instances = []

    def __call__(self, start=True, **options):
        instance = Sppd(options)
        self.instances.append(instance)
        if start:
            instance.start()
        return instance

    def teardown(self, failed):
        problems = []
        for s in self.instances:
            s.stop()
            reports = s.sanitizer_reports()
            if reports:
                problems.append(f"sanitizer reports in {s.log_path}:\n" + "\n".join(reports[:20]))
            if failed or reports:
                print(f"\n===== sppd log {s.log_path} (last 200 lines) =====\n{s.log_tail()}",
                      file=sys.stderr)
                print(f"===== config {s.conf_path} =====\n{s.config_text()}", file=sys.stderr)
            else:
                shutil.rmtree(s.dir, ignore_errors=True)
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


def _failed(node):
    return any(getattr(node, "rep_" + when, None) is not None and
               getattr(node, "rep_" + when).failed for when in ("setup", "call"))


@pytest.fixture
def make_sppd(request):
    """Factory: make_sppd(**options) -> a started Sppd (see Sppd for the options)."""
    if not (BIN_DIR / "sppd-master").exists():
        pytest.fail(f"{BIN_DIR}/sppd-master not found: build first or set SPPD_BIN_DIR")
    factory = SppdFactory()
    yield factory
    factory.teardown(_failed(request.node))


@pytest.fixture
def sppd(make_sppd):
    """A started instance with the default configuration."""
    return make_sppd()


@pytest.fixture(scope="module")
def module_factory(request):
    """A factory shared by one test module (for instances many tests can share)."""
    if not (BIN_DIR / "sppd-master").exists():
        pytest.fail(f"{BIN_DIR}/sppd-master not found: build first or set SPPD_BIN_DIR")
    factory = SppdFactory()
    failed_before = request.session.testsfailed
    yield factory
    factory.teardown(request.session.testsfailed > failed_before)


@pytest.fixture(scope="module")
def rbldnsd(request):
    """rbldnsd serving DNSBL_ZONES for one test module (skipped if it is not installed);
    its query log is printed and kept when a test of the module failed."""
    if not os.path.exists(RBLDNSD):
        pytest.skip("rbldnsd not installed (Debian package rbldnsd)")
    failed_before = request.session.testsfailed
    server = Rbldnsd().start()
    yield server
    server.stop()
    if request.session.testsfailed > failed_before:
        print(f"\n===== rbldnsd query log {server.log_path} (last 60 lines) =====\n"
              + "\n".join(server.log().splitlines()[-60:]), file=sys.stderr)
    else:
        shutil.rmtree(server.dir, ignore_errors=True)
