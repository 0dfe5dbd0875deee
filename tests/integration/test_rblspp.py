# The shipped rblspp plugin (seed 000 section II; qmail-protocols.md §3.1, qmail-spp.md §9.2)
# with the seed's config line verbatim behind plugins/ifauthskip in [rcpt], against a real
# DNSBL server (rbldnsd on loopback serving the seed's five zone names with test data):
# listed, unlisted and anti-listed clients, -b, RBLSPP from tcprules, a second RCPT after an
# accepted one, an authenticated session skipping it, one cache shared with smtpd's built-in
# check, an unreachable socket with -C and -c. Then dnsbl-cache's local socket itself: its
# mode and owner, sppd-dnsbl-status, what local clients may ask, their limit, the socket
# outliving a dnsbl-cache restart, stale and foreign files at its path.
# One sppd shares most tests; each client has its own loopback source address (CLIENTS).
import os
import pwd
import re
import signal
import socket
import stat
import struct
import subprocess

import pytest

from conftest import (BIN_DIR, IS_ROOT, QUEUED_RE, RBLDNSD, REPLY_TIMEOUT, SERVICE_USERS,
                      Rbldnsd, SmtpConnection, dnsbl_listener, dnsbl_soa, wait_for)

SEED_LINE = (":plugins/rblspp -r relays.ordb.org -r list.dsbl.org -r dnsbl.njabl.org "
             "-r sbl.spamhaus.org -r bl.spamcop.net")
SEED_ZONES = ["relays.ordb.org", "list.dsbl.org", "dnsbl.njabl.org", "sbl.spamhaus.org",
              "bl.spamcop.net"]
SMTPPLUGINS = f"[rcpt]\nplugins/ifauthskip\n{SEED_LINE}\n"
PASSWORDS = {"alice": "wonderland"}
TEMPORARY_ERROR = "temporary RBL lookup error"
STATUS = BIN_DIR / "sppd-dnsbl-status"

# Loopback source addresses and what the zones below say about them.
CLIENTS = {
    "unlisted": "127.0.0.40",
    "listed": "127.0.0.41",        # sbl.spamhaus.org (the fourth zone of the line)
    "first_zone": "127.0.0.42",    # relays.ordb.org, with a text of its own
    "anti": "127.0.0.43",          # sbl.spamhaus.org and the anti-list white.test
    "env_empty": "127.0.0.44",     # listed, but tcprules set RBLSPP=""
    "env_permanent": "127.0.0.45",  # listed, RBLSPP="-..."
    "env_temporary": "127.0.0.46",  # listed, RBLSPP="..."
    "auth": "127.0.0.47",          # listed; logs in
    "shared": "127.0.0.48",        # unlisted; checked at connect and by the plugin
    "bounce": "127.0.0.49",        # listed; its plugin line has -b
    "postmaster": "127.0.0.50",    # listed; a plugin before rblspp accepts postmaster@
    "open": "127.0.0.51",          # listed; -C and a socket that is not there
    "closed": "127.0.0.52",        # listed; -c and a socket that is not there
    "counted": "127.0.0.53",       # unlisted; only the status test looks it up
}
C = CLIENTS


def sbl_text(ip):
    return f"{ip} is listed in the SBL, see https://www.spamhaus.org/sbl/query/{ip}"


ZONES = {
    "relays.ordb.org": [("ip4set", dnsbl_soa("relays.ordb.org") +
                         f"{C['first_zone']} :127.0.0.2:Open relay $ (relays.ordb.org)\n")],
    "list.dsbl.org": [("ip4set", dnsbl_soa("list.dsbl.org"))],
    "dnsbl.njabl.org": [("ip4set", dnsbl_soa("dnsbl.njabl.org"))],
    "sbl.spamhaus.org": [("ip4set", dnsbl_soa("sbl.spamhaus.org") +
                          ":127.0.0.2:$ is listed in the SBL, "
                          "see https://www.spamhaus.org/sbl/query/$\n" +
                          "".join(f"{C[name]}\n" for name in (
                              "listed", "anti", "env_empty", "env_permanent", "env_temporary",
                              "auth", "bounce", "postmaster", "open", "closed")))],
    "bl.spamcop.net": [("ip4set", dnsbl_soa("bl.spamcop.net"))],
    "white.test": [("ip4set", dnsbl_soa("white.test") + f"{C['anti']}\n")],
}

# Plugin files other clients get through SPPCONFFILE (qmail-spp's per-client plugin file).
NO_SOCKET = "SPPD_DNSBL_SOCKET=/nonexistent/dnsbl-cache.sock"
HOME_FILES = {
    "control/bounceplugins": "[rcpt]\nplugins/ifauthskip\n" + SEED_LINE.replace(
        "rblspp ", "rblspp -b ", 1) + "\n",
    "control/antiplugins": "[rcpt]\nplugins/ifauthskip\n"
                           ":plugins/rblspp -b -a white.test -r sbl.spamhaus.org\n",
    "control/postmasterplugins": f"[rcpt]\nplugins/postmaster\nplugins/ifauthskip\n{SEED_LINE}\n",
    # The shell of a ':' line sets the variable for the plugin: a socket that is not there.
    "control/openplugins": f"[rcpt]\n:{NO_SOCKET} plugins/rblspp -C -r sbl.spamhaus.org\n",
    "control/closedplugins": f"[rcpt]\n:{NO_SOCKET} plugins/rblspp -c -r sbl.spamhaus.org\n",
}
TCPRULES = (
    "# RBLSPP (as rblsmtpd's RBLSMTPD) and per-client plugin files\n"
    f'{C["env_empty"]}:allow,RBLSPP=""\n'
    f'{C["env_permanent"]}:allow,RBLSPP="-Go away, see http://example.test/why"\n'
    f'{C["env_temporary"]}:allow,RBLSPP="Busy, try again later"\n'
    f'{C["bounce"]}:allow,SPPCONFFILE="control/bounceplugins"\n'
    f'{C["anti"]}:allow,SPPCONFFILE="control/antiplugins"\n'
    f'{C["postmaster"]}:allow,SPPCONFFILE="control/postmasterplugins"\n'
    f'{C["open"]}:allow,SPPCONFFILE="control/openplugins"\n'
    f'{C["closed"]}:allow,SPPCONFFILE="control/closedplugins"\n'
    ":allow\n")
# Lets postmaster@ through for everyone (RFC 5321 4.5.1) before the RBL check: qmail-spp's N
# skips the section's other plugins for this RCPT only (A would switch plugins off for the
# whole connection).
POSTMASTER = '#!/bin/sh\ncase "$SMTPRCPTTO" in postmaster@*) echo N ;; esac\n'
PLUGINS = {"ifauthskip": "seed/ifauthskip", "rblspp": "seed/rblspp", "postmaster": POSTMASTER}

# The frames of common/protocol.h a test speaks on the local socket itself.
K_DNS_PTR, K_DNS_PTR_RESULT, K_DNSBL_QUERY, K_DNSBL_RESULT = 20, 21, 22, 23
K_CLIENT_CONNECT, K_STATUS_QUERY, K_STATUS_REPORT = 50, 60, 61
MAX_LOCAL_CLIENTS = 256  # dnsbl-cache/server.h kMaxLocalClients


@pytest.fixture(scope="module")
def dns():
    if not os.path.exists(RBLDNSD):
        pytest.skip("rbldnsd not installed (Debian package rbldnsd)")
    server = Rbldnsd(ZONES).start()
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
def spp(module_factory, dns):
    return module_factory(
        queue="envdump", tcprules=TCPRULES, passwords=PASSWORDS,
        control={"auth/smtp": "63"},  # AUTH PLAIN offered without TLS
        dnsbl_cache={"resolver": dns.resolver}, pluginrunner={"processes": "2"},
        smtpplugins=SMTPPLUGINS, plugins=PLUGINS, home_files=HOME_FILES,
        # The built-in check at connect, for the cache test: the plugin's first zone.
        extra_listeners={"checked": dnsbl_listener("-r relays.ordb.org")})


def connect(instance, client, listener="smtp"):
    host, port = instance.addresses[listener]
    return SmtpConnection(host, port, source=C.get(client, client))


def rcpt(instance, client, *expected, rcpts=("bob@example.com",), listener="smtp"):
    """A session from client: EHLO, MAIL, then each RCPT must get its expected reply."""
    with connect(instance, client, listener) as c:
        assert c.greeting.lines == ["220 mx.sppd.test ESMTP"]
        assert c.cmd("EHLO client.test").code == 250
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        for to, reply in zip(rcpts, expected):
            c.expect(f"RCPT TO:<{to}>", reply)
        c.expect("QUIT", "221 2.0.0 mx.sppd.test")


def wait_log(instance, *parts):
    def line():
        return next((l for l in instance.log().splitlines() if all(p in l for p in parts)), None)
    return wait_for(line, REPLY_TIMEOUT, f"a log line with {parts}")


def status(instance=None, *args, user=None):
    """Runs sppd-dnsbl-status (with --config of instance unless args say otherwise)."""
    command = [str(STATUS), *(args or ("--config", str(instance.conf_path)))]
    if user:
        pw = pwd.getpwnam(user)
        command = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
                   "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


def counters(instance):
    result = status(instance)
    assert result.returncode == 0, result.stderr
    pairs = [line.split(" ") for line in result.stdout.splitlines()]
    assert all(len(p) == 2 and p[1].isdigit() for p in pairs), result.stdout
    return {name: int(value) for name, value in pairs}


# ---------------------------------------------------------------------------------------------
# The plugin with the seed's line

def test_listed_client_gets_451_with_the_txt_text(spp, dns):
    ip = C["listed"]
    rcpt(spp, "listed", f"451 {sbl_text(ip)}", f"451 {sbl_text(ip)}",
         rcpts=("bob@example.com", "carol@example.com"))
    # Acted on in order: every zone before the one that listed it, none after.
    for zone in SEED_ZONES[:4]:
        assert dns.count(ip, zone, "TXT") == 1, zone
    assert dns.count(ip, "bl.spamcop.net") == 0
    wait_log(spp, f"rblspp: {ip} pid ", f": 451 {sbl_text(ip)}")


def test_b_gives_553_and_the_first_zone_decides(spp, dns):
    rcpt(spp, "bounce", f"553 {sbl_text(C['bounce'])}")
    with connect(spp, "first_zone") as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>",
                 f"451 Open relay {C['first_zone']} (relays.ordb.org)")
    assert dns.count(C["first_zone"], "list.dsbl.org") == 0


def test_unlisted_client_is_accepted_and_its_mail_queued(spp, dns):
    ip = C["unlisted"]
    with connect(spp, "unlisted") as c:
        assert c.cmd("EHLO client.test").code == 250
        reply = c.transaction("alice@client.test", ["bob@example.com"],
                              b"Subject: unlisted\r\n\r\nnot on any list\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
    assert spp.env_of_queue(reply)["TCPREMOTEIP"] == ip
    for zone in SEED_ZONES:
        assert dns.count(ip, zone, "TXT") == 1, zone


def test_anti_listed_client_is_accepted(spp, dns):
    rcpt(spp, "anti", "250 2.1.5 ok")
    assert dns.count(C["anti"], "white.test", "A") == 1
    assert dns.count(C["anti"], "sbl.spamhaus.org") == 0, "-a decided: no -r lookup after it"


@pytest.mark.parametrize("client,reply", [
    ("env_empty", "250 2.1.5 ok"),
    ("env_permanent", "553 Go away, see http://example.test/why"),
    ("env_temporary", "451 Busy, try again later"),
])
def test_rblspp_from_tcprules_decides_without_lookups(spp, dns, client, reply):
    rcpt(spp, client, reply)
    assert dns.count(C[client], "relays.ordb.org") == 0


def test_second_rcpt_after_an_accepted_one_is_not_checked(spp):
    # postmaster@ skips rblspp (N from the plugin before it) and is accepted; SMTPRCPTCOUNT
    # is then 1 and rblspp lets the listed client's next recipient through. A new
    # transaction checks again.
    text = sbl_text(C["postmaster"])
    with connect(spp, "postmaster") as c:
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", f"451 {text}")
        c.expect("RCPT TO:<postmaster@example.com>", "250 2.1.5 ok")
        c.expect("RCPT TO:<carol@example.com>", "250 2.1.5 ok")
        c.expect("RSET", "250 2.0.0 flushed")
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<carol@example.com>", f"451 {text}")


def test_authenticated_session_skips_it_through_ifauthskip(spp, dns):
    ip = C["auth"]
    with connect(spp, "auth") as c:
        assert c.cmd("EHLO client.test").code == 250
        assert c.auth("PLAIN", "alice", PASSWORDS["alice"]).lines == ["235 2.7.0 ok, go ahead"]
        reply = c.transaction("alice@client.test", ["bob@example.com", "friend@elsewhere.test"],
                              b"Subject: authenticated\r\n\r\nlisted but logged in\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
    assert dns.count(ip, "sbl.spamhaus.org") == 0, "an authenticated session was looked up"
    rcpt(spp, "auth", f"451 {sbl_text(ip)}")  # skipped, not passed


def test_plugin_and_built_in_check_share_one_cache(spp, dns):
    # The "checked" listener looks the client up in relays.ordb.org at connect; rblspp then
    # asks the same (IP, zone) at RCPT: the answer comes from dnsbl-cache's cache.
    ip = C["shared"]
    before = counters(spp)
    rcpt(spp, "shared", "250 2.1.5 ok", listener="checked")
    after = counters(spp)
    for zone in SEED_ZONES:
        assert dns.count(ip, zone) == 1, zone
    assert after["dnsbl.hits"] - before["dnsbl.hits"] == 1
    assert after["dnsbl.queries"] - before["dnsbl.queries"] == len(SEED_ZONES)


def test_unreachable_socket_is_a_dns_error(spp, dns):
    rcpt(spp, "open", "250 2.1.5 ok")                    # -C: not listed
    rcpt(spp, "closed", f"451 {TEMPORARY_ERROR}")         # -c: 451
    wait_log(spp, "rblspp: cannot connect to /nonexistent/dnsbl-cache.sock")
    wait_log(spp, f"rblspp: {C['closed']} pid ", f": 451 {TEMPORARY_ERROR}")
    assert dns.count(C["open"], "sbl.spamhaus.org") == 0


# ---------------------------------------------------------------------------------------------
# The local socket and sppd-dnsbl-status

def test_socket_mode_and_owner(spp):
    info = os.lstat(spp.dnsbl_socket)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(os.stat(spp.dnsbl_socket.parent).st_mode) == 0o755
    if IS_ROOT:
        plugin_user = pwd.getpwnam(SERVICE_USERS["pluginrunner"])
        assert (info.st_uid, info.st_gid) == (0, plugin_user.pw_gid)
        assert stat.S_IMODE(info.st_mode) == 0o660
    else:
        assert info.st_uid == os.geteuid()
        assert stat.S_IMODE(info.st_mode) == 0o600


def test_status_counts_the_queries_made(spp, dns):
    before = counters(spp)
    names = list(before)
    expected = [f"{kind}.{name}" for kind in ("dnsbl", "ptr") for name in
                ("queries", "hits", "misses", "coalesced", "errors", "timeouts", "entries")]
    assert [n for n in names if n in expected] == expected, names
    mark = dns.mark()
    rcpt(spp, "counted", "250 2.1.5 ok")
    rcpt(spp, "counted", "250 2.1.5 ok")  # the second session: all from the cache
    after = counters(spp)
    sent = len(dns.queries()[mark:])
    assert sent == len(SEED_ZONES)
    assert after["dnsbl.queries"] - before["dnsbl.queries"] == sent
    assert after["dnsbl.misses"] - before["dnsbl.misses"] == len(SEED_ZONES)
    assert after["dnsbl.hits"] - before["dnsbl.hits"] == len(SEED_ZONES)
    assert after["dnsbl.entries"] - before["dnsbl.entries"] == len(SEED_ZONES)
    assert after["dnsbl.errors"] == before["dnsbl.errors"]


def test_status_by_socket_path_and_who_may_ask(spp):
    result = status(None, "--socket", str(spp.dnsbl_socket))
    assert result.returncode == 0 and "dnsbl.queries " in result.stdout, result.stderr
    if IS_ROOT:
        # The plugins' user may connect (rblspp runs as it); another user may not.
        assert status(spp, user=SERVICE_USERS["pluginrunner"]).returncode == 0
        other = status(spp, user="nobody")
        assert other.returncode == 111
        assert f"cannot connect to {spp.dnsbl_socket}: Permission denied" in other.stderr


def test_status_errors(tmp_path):
    missing = tmp_path / "none.sock"
    result = status(None, "--socket", str(missing))
    assert result.returncode == 111
    assert result.stderr == (f"sppd-dnsbl-status: cannot connect to {missing}: No such file or "
                             "directory (is sppd running?)\n")
    result = status(None, "--verbose")
    assert result.returncode == 100
    assert "unexpected argument '--verbose'" in result.stderr and "usage:" in result.stderr
    result = status(None, "--config", str(tmp_path / "nope.conf"))
    assert result.returncode == 111 and "cannot read config file" in result.stderr


def frame(kind, request_id=1, **attrs):
    body = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in attrs.items())
    return struct.pack(">HHII", 1, kind, request_id, len(body)) + body


def parse_frame(data):
    version, kind, request_id, length = struct.unpack(">HHII", data[:12])
    assert version == 1 and length == len(data) - 12
    fields = data[12:].split(b"\0")[:-1]
    return kind, request_id, [(fields[i].decode(), fields[i + 1].decode())
                              for i in range(0, len(fields), 2)]


def local_client(instance):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(REPLY_TIMEOUT)
    s.connect(str(instance.dnsbl_socket))
    return s


def test_local_client_may_ask_dnsbl_and_ptr_questions_only(spp):
    with local_client(spp) as s:
        s.send(frame(K_DNSBL_QUERY, 7, ip=C["listed"], zone="sbl.spamhaus.org", type="txt"))
        kind, request_id, attrs = parse_frame(s.recv(65536))
        assert (kind, request_id) == (K_DNSBL_RESULT, 7)
        assert ("status", "listed") in attrs and ("text", sbl_text(C["listed"])) in attrs
        s.send(frame(K_STATUS_QUERY, 8))
        kind, request_id, attrs = parse_frame(s.recv(65536))
        assert (kind, request_id) == (K_STATUS_REPORT, 8)
        assert all(name == "counter" and re.fullmatch(r"[a-z_.]+=[0-9]+", value)
                   for name, value in attrs), attrs
        # Per-client connection counting is the workers' business: the client is cut off.
        s.send(frame(K_CLIENT_CONNECT, 9, ip="192.0.2.1", listener="smtp", max_connections="0",
                     max_rate="0", rate_window="60", session="1"))
        assert s.recv(65536) == b""
    wait_log(spp, "local client pid ", "malformed request (frame type 50 is not for local "
             "clients); closing its channel")


def test_local_clients_are_limited(spp):
    clients = []
    try:
        for _ in range(MAX_LOCAL_CLIENTS):
            clients.append(local_client(spp))
        # Every one is accepted and served (a question on the last proves the others are in).
        clients[-1].send(frame(K_STATUS_QUERY, 1))
        assert parse_frame(clients[-1].recv(65536))[0] == K_STATUS_REPORT
        with local_client(spp) as refused:
            assert refused.recv(65536) == b""
        wait_log(spp, "refused local client pid ",
                 f": {MAX_LOCAL_CLIENTS} local clients connected, the most allowed")
        # One goes, another may come.
        clients.pop().close()

        def served():
            try:
                with local_client(spp) as s:
                    s.send(frame(K_STATUS_QUERY, 2))
                    return parse_frame(s.recv(65536))[0] == K_STATUS_REPORT
            except (OSError, AssertionError, struct.error):
                return False
        wait_for(served, REPLY_TIMEOUT, "a local client to be served again")
    finally:
        for s in clients:
            s.close()


def test_socket_outlives_a_dnsbl_cache_restart(spp):
    (old,) = spp.wait_pids("sppd-dnsbl-cache", 1)
    inode = os.lstat(spp.dnsbl_socket).st_ino
    os.kill(old, signal.SIGKILL)
    # Asked at once: the question waits in the master's socket for the new dnsbl-cache.
    result = status(spp)
    assert result.returncode == 0, result.stderr
    assert "dnsbl.queries 0\n" in result.stdout, "the answer came from the old process"
    (new,) = spp.wait_pids("sppd-dnsbl-cache", 1, exclude=[old])
    assert os.lstat(spp.dnsbl_socket).st_ino == inode
    rcpt(spp, "listed", f"451 {sbl_text(C['listed'])}")  # rblspp asks the new one


# ---------------------------------------------------------------------------------------------
# The socket's life with the master

def test_socket_is_removed_when_the_master_stops(make_sppd):
    instance = make_sppd()
    path = instance.dnsbl_socket
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    assert instance.stop() == 0
    assert not path.exists()


def test_stale_socket_is_replaced_and_a_foreign_file_is_not(make_sppd):
    instance = make_sppd(start=False)
    path = instance.dnsbl_socket
    path.parent.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    stale.bind(str(path))
    stale.close()  # a master SIGKILLed leaves this behind: nobody listens
    instance.start()
    assert status(instance).returncode == 0
    instance.stop()

    path.write_text("not a socket\n")
    instance.start(wait=False)
    assert instance.wait_exit() == 1
    assert (f"cannot create the dnsbl-cache socket {path}: a file that is not a socket is in "
            "the way") in instance.log()
    assert path.read_text() == "not a socket\n"


def test_second_master_on_the_same_socket_refuses_to_start(make_sppd):
    first = make_sppd()
    second = make_sppd(start=False, dnsbl_cache={"socket": str(first.dnsbl_socket)})
    second.start(wait=False)
    assert second.wait_exit() == 1
    assert "something listens on it (is another sppd-master running?)" in second.log()
    assert status(first).returncode == 0, "the first master lost its socket"
