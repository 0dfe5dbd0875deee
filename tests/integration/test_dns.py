# TCPREMOTEHOST from a PTR lookup through dnsbl-cache, against a real DNS server on loopback
# (dnsmasq, Debian package dnsmasq-base): the Received line, the session environment, a
# "=host" tcprules rule, a client without a PTR record, and a resolver that never answers.
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from conftest import QUEUED_RE, expect_received, wait_for

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
PTR_NAME = "client.example.org"

pytestmark = pytest.mark.skipif(not shutil.which(DNSMASQ),
                                reason="dnsmasq not installed (Debian package dnsmasq-base)")


def free_dns_port():
    """A loopback port free for UDP and TCP alike: dnsmasq binds both."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


def ptr_query(port, ip="127.0.0.1", timeout=0.5):
    """Asks the server for the PTR of ip; returns the raw answer or None."""
    name = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", 0x5350, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", 12, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, ("127.0.0.1", port))
        try:
            return s.recv(512)
        except socket.timeout:
            return None


@pytest.fixture
def dns_server():
    """dnsmasq on a free loopback port answering 127.0.0.1 -> client.example.org only."""
    # Tests running in parallel take ports too: if one is taken between our check and
    # dnsmasq's bind, dnsmasq says so and exits, and we try another port.
    for attempt in range(5):
        port = free_dns_port()
        log = tempfile.TemporaryFile()
        process = subprocess.Popen(
            [DNSMASQ, "--no-daemon", f"--port={port}", "--listen-address=127.0.0.1",
             "--bind-interfaces", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
             "--pid-file=", "--log-facility=-", "--local-ttl=60",
             f"--ptr-record=1.0.0.127.in-addr.arpa,{PTR_NAME}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        answer = wait_for(lambda: process.poll() is not None or ptr_query(port), 15,
                          "dnsmasq to answer")
        if process.poll() is None:
            break
        log.seek(0)
        output = log.read().decode(errors="replace")
        log.close()
        if "Address already in use" not in output or attempt == 4:
            pytest.fail(f"dnsmasq exited: {output}")
    try:
        assert PTR_NAME.split(".")[0].encode() in answer
        yield port
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def dns_sppd(make_sppd, port, **options):
    listener = {"remote_host_lookup": "yes", **options.pop("listener", {})}
    return make_sppd(queue="envdump", listener=listener,
                     dnsbl_cache={"resolver": f"127.0.0.1:{port}"}, **options)


def test_ptr_name_in_received_line_and_environment(make_sppd, dns_server):
    sppd = dns_sppd(make_sppd, dns_server)
    with sppd.connect() as c:
        assert c.greeting.lines == ["220 mx.sppd.test ESMTP"]
        assert c.cmd("EHLO client.test").code == 250
        reply = c.transaction("alice@client.test", ["bob@example.com"], b"Subject: ptr\r\n\r\nx\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
    env = sppd.env_of_queue(reply)
    assert env["TCPREMOTEHOST"] == PTR_NAME
    assert env["TCPREMOTEIP"] == "127.0.0.1"
    (msg,) = sppd.wait_messages(1)
    expect_received(msg, host=PTR_NAME, helo="client.test")


def test_helo_equal_to_ptr_name_is_not_repeated(make_sppd, dns_server):
    sppd = dns_sppd(make_sppd, dns_server)
    reply = sppd.deliver(b"Subject: same\r\n\r\nx\r\n", helo="EHLO Client.Example.ORG")
    assert QUEUED_RE.match(reply.line), reply.line
    (msg,) = sppd.wait_messages(1)
    expect_received(msg, host=PTR_NAME, helo=None)


def test_host_rule_in_tcprules_applies(make_sppd, dns_server):
    sppd = dns_sppd(make_sppd, dns_server,
                    tcprules=f'={PTR_NAME}:allow,RELAYCLIENT="",SPPDRULE="by name"\n')
    with sppd.connect() as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@other.org>", "250 2.1.5 ok")  # relaying: RELAYCLIENT is set
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: by name\r\n\r\nx\r\n.\r\n")
        reply = c.read_reply()
        assert QUEUED_RE.match(reply.line), reply.line
    env = sppd.env_of_queue(reply)
    assert env["SPPDRULE"] == "by name"
    assert env["RELAYCLIENT"] == ""


def test_suffix_host_rule(make_sppd, dns_server):
    sppd = dns_sppd(make_sppd, dns_server, tcprules='=.example.org:allow,RELAYCLIENT=""\n')
    with sppd.connect() as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@other.org>", "250 2.1.5 ok")


def test_client_without_ptr_is_unknown(make_sppd, dns_server):
    # 127.0.0.2 is loopback too, but the server has no PTR record for it.
    sppd = dns_sppd(make_sppd, dns_server,
                    tcprules=f'={PTR_NAME}:allow,RELAYCLIENT=""\n')
    with sppd.connect(source="127.0.0.2") as c:
        assert c.cmd("EHLO client.test").code == 250
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@other.org>",
                 "553 5.7.1 sorry, that domain isn't in my list of allowed rcpthosts")
        reply = c.transaction("alice@client.test", ["bob@example.com"], b"Subject: no ptr\r\n\r\nx\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
    env = sppd.env_of_queue(reply)
    assert "TCPREMOTEHOST" not in env
    assert env["TCPREMOTEIP"] == "127.0.0.2"
    (msg,) = sppd.wait_messages(1)
    expect_received(msg, host="unknown", ip="127.0.0.2")


def test_lookup_off_leaves_host_unset(make_sppd, dns_server):
    sppd = dns_sppd(make_sppd, dns_server, listener={"remote_host_lookup": "no"})
    reply = sppd.deliver(b"Subject: off\r\n\r\nx\r\n")
    assert QUEUED_RE.match(reply.line), reply.line
    assert "TCPREMOTEHOST" not in sppd.env_of_queue(reply)


def test_silent_resolver_delays_greeting_at_most_remote_host_timeout(make_sppd):
    # A UDP socket that reads queries and never answers.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        port = black_hole.getsockname()[1]
        sppd = dns_sppd(make_sppd, port, listener={"remote_host_timeout": "1"})
        started = time.monotonic()
        with sppd.connect(timeout=15) as c:
            waited = time.monotonic() - started
            assert c.greeting.lines == ["220 mx.sppd.test ESMTP"]
            assert c.cmd("EHLO client.test").code == 250
            reply = c.transaction("a@client.test", ["b@example.com"], b"Subject: slow\r\n\r\nx\r\n")
            assert QUEUED_RE.match(reply.line), reply.line
        # 1 s for the lookup plus generous slack for a loaded machine or an ASan build.
        assert waited < 6, f"greeting took {waited:.1f}s with remote_host_timeout = 1"
        assert "TCPREMOTEHOST" not in sppd.env_of_queue(reply)
