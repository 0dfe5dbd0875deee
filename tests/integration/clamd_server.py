# A real virus scanner for the clamd tests and the benchmark: Debian's clamd (package
# clamav-daemon) in the foreground, a child of the test, on a free loopback TCP port and a
# Unix socket in a temp dir, with a config file and a one-signature database made at start:
# an .ndb body signature that matches the EICAR test string. No download, no freshclam, and
# Debian's own clamav-daemon service is neither used nor needed. start() waits until clamd
# answers PING. The EICAR string is assembled here rather than written out whole, so this
# file itself does not look like a test virus to a scanner.
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import stop_process

CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"
START_TIMEOUT = 60.0  # clamd loads one signature in well under a second; be generous

EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-" + b"ANTIVIRUS-TEST-FILE!$H+H*")
SIGNATURE = "Sppd.Test.EICAR"
# clamd appends ".UNOFFICIAL" to the name of every signature that is not from ClamAV's own
# signed databases: this is the name sppd's 554 reply carries.
VIRUS_NAME = SIGNATURE + ".UNOFFICIAL"


def installed():
    return os.path.exists(CLAMD)


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def command(address, name, timeout=5.0):
    """Sends one z-command (b"PING", ...) to clamd at address ("ip:port" or a socket path);
    returns its answer without the NUL, or None if it does not answer."""
    try:
        if address.startswith("/"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target = address
        else:
            host, _, port = address.rpartition(":")
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            target = (host, int(port))
        with s:
            s.settimeout(timeout)
            s.connect(target)
            s.sendall(b"z" + name + b"\0")
            answer = b""
            while not answer.endswith(b"\0"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
            return answer.rstrip(b"\0")
    except OSError:
        return None


class Clamd:
    """clamd listening on 127.0.0.1:port (tcp_address) and dir/clamd.sock (socket_path).
    stream_max_length: clamd's StreamMaxLength (e.g. "1M"); None = clamd's default (100M);
    max_threads: clamd's MaxThreads (scans at once).
    Its log (LogClean: one line per scan, clean ones too) is log()."""

    def __init__(self, stream_max_length=None, max_threads=4):
        self.dir = Path(os.path.realpath(tempfile.mkdtemp(prefix="sppd-clamd-")))
        os.chmod(self.dir, 0o755)  # queue-bridge (sppd-queue) reaches the socket through it
        self.db_dir = self.dir / "db"
        self.db_dir.mkdir()
        (self.db_dir / "sppd-test.ndb").write_text(f"{SIGNATURE}:0:*:{EICAR.hex()}\n")
        self.socket_path = str(self.dir / "clamd.sock")
        self.log_path = self.dir / "clamd.log"
        self.conf_path = self.dir / "clamd.conf"
        self.stream_max_length = stream_max_length
        self.max_threads = max_threads
        self.process = None
        self.port = None

    @property
    def tcp_address(self):
        return f"127.0.0.1:{self.port}"

    def write_config(self):
        lines = [
            "# clamd.conf written by tests/integration/clamd_server.py",
            "Foreground yes",
            f"DatabaseDirectory {self.db_dir}",
            f"TemporaryDirectory {self.dir}",
            f"LogFile {self.log_path}",
            "LogClean yes",
            "LogTime no",
            f"LocalSocket {self.socket_path}",
            "LocalSocketMode 666",
            "TCPAddr 127.0.0.1",
            f"TCPSocket {self.port}",
            "SelfCheck 0",
            f"MaxThreads {self.max_threads}",
        ]
        if self.stream_max_length:
            lines.append(f"StreamMaxLength {self.stream_max_length}")
        self.conf_path.write_text("\n".join(lines) + "\n")

    def start(self, keep_port=False):
        """Starts clamd (on a new free port unless keep_port) and waits for PING."""
        for attempt in range(3):
            if not (keep_port and self.port):
                self.port = free_port()
            self.write_config()
            Path(self.socket_path).unlink(missing_ok=True)
            out = open(self.dir / "clamd.out", "ab")
            self.process = subprocess.Popen([CLAMD, f"--config-file={self.conf_path}"],
                                            stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            out.close()
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                if command(self.tcp_address, b"PING", 1) == b"PONG" and \
                        command(self.socket_path, b"PING", 1) == b"PONG":
                    return self
                time.sleep(0.05)
            self.stop()
            if attempt == 2 or keep_port or "in use" not in self.output():
                raise AssertionError(f"clamd did not answer PING within {START_TIMEOUT:g}s "
                                     f"(exit {self.process.returncode}):\n{self.output()}")
        return self

    def stop(self):
        stop_process(self.process, 15)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def output(self):
        text = ""
        for name in ("clamd.out", "clamd.log"):
            try:
                text += (self.dir / name).read_text(errors="replace")
            except OSError:
                pass
        return text

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def scans(self):
        """How many scans clamd has logged (clean or not): lines like
        "instream(127.0.0.1@41234): OK" or "...: Sppd.Test.EICAR.UNOFFICIAL FOUND"."""
        return sum(1 for line in self.log().splitlines()
                   if line.startswith("instream(") and
                   (line.endswith(": OK") or line.endswith(" FOUND")))
