# The privilege table of DESIGN.md checked against the running processes: the master stays
# root, each child runs as its configured user, smtpd is chrooted to an empty dir and under
# a seccomp filter. Started as an ordinary user, smtpd is still under seccomp.
# A child drops privilege after its own set-up, so every check waits (with a deadline) for
# the process to reach its final state before it asserts.
import os
import pwd

import pytest

from conftest import (BIN_DIR, IS_ROOT, PROGRAMS, QUEUED_RE, SERVICE_USERS, START_TIMEOUT,
                      proc_status, wait_for)

root_only = pytest.mark.skipif(not IS_ROOT, reason="needs root (privilege switching)")


def ids(status, key):
    return [int(v) for v in status[key].split()]


def settled(pid, check):
    """Waits until check(pid) returns no complaint; then asserts it once more for the message."""
    def quiet():
        try:
            return check(pid) is None
        except OSError:
            return False
    try:
        wait_for(quiet, START_TIMEOUT, f"process {pid} to drop privilege", interval=0.05)
    except AssertionError:
        pass
    complaint = check(pid)
    assert complaint is None, complaint


def runs_as(user, program):
    def check(pid):
        status = proc_status(pid)
        if ids(status, "Uid") != [user.pw_uid] * 4 or ids(status, "Gid") != [user.pw_gid] * 4:
            return f"{program}[{pid}] runs as Uid {status['Uid']} Gid {status['Gid']}, " \
                   f"expected {user.pw_name} ({user.pw_uid}:{user.pw_gid})"
        if not set(ids(status, "Groups")) <= {user.pw_gid}:
            return f"{program}[{pid}] keeps supplementary groups {status['Groups']}"
        return None
    return check


def sandboxed(pid):
    seccomp = proc_status(pid)["Seccomp"]
    return None if seccomp == "2" else f"sppd-smtpd[{pid}] has Seccomp {seccomp}, expected 2"


@root_only
def test_children_run_as_their_users_smtpd_chrooted_and_sandboxed(make_sppd):
    sppd = make_sppd()
    assert ids(proc_status(sppd.pid), "Uid") == [0, 0, 0, 0]
    for service, program in PROGRAMS.items():
        user = pwd.getpwnam(SERVICE_USERS[service])
        sppd.wait_pids(program, 2 if service == "smtpd" else 1)
        for pid in sppd.pids(program):
            settled(pid, runs_as(user, program))
    chroot = str(sppd.dir / "empty")
    for pid in sppd.pids("sppd-smtpd"):
        settled(pid, sandboxed)
        root = os.readlink(f"/proc/{pid}/root")
        assert root == chroot, f"sppd-smtpd[{pid}] has root {root}, expected {chroot}"
    # qmail-queue runs as the queue-bridge's user: the Maildir file is that user's.
    reply = sppd.deliver(b"Subject: owner\r\n\r\nx\r\n")
    assert QUEUED_RE.match(reply.line), reply.line
    (msg,) = sppd.wait_messages(1)
    assert msg.path.stat().st_uid == pwd.getpwnam(SERVICE_USERS["queue-bridge"]).pw_uid


def world_executable(path):
    """True if every directory up to path is searchable by others (for user nobody)."""
    path = os.path.realpath(path)
    while path != "/":
        if not os.stat(path).st_mode & 0o001:
            return False
        path = os.path.dirname(path)
    return True


def test_unprivileged_master_still_sandboxes_smtpd(make_sppd):
    # As root, run the master as "nobody" through setpriv: no user switch, no chroot.
    if IS_ROOT and not world_executable(BIN_DIR / "sppd-master"):
        pytest.skip(f"{BIN_DIR} is not reachable for user nobody")
    sppd = make_sppd(run_as="nobody")
    me = pwd.getpwnam("nobody") if IS_ROOT else pwd.getpwuid(os.geteuid())
    assert ids(proc_status(sppd.pid), "Uid")[0] == me.pw_uid
    for pid in sppd.wait_pids("sppd-smtpd", 2):
        assert ids(proc_status(pid), "Uid") == [me.pw_uid] * 4
        settled(pid, sandboxed)
    reply = sppd.deliver(b"Subject: unprivileged\r\n\r\nx\r\n")
    assert QUEUED_RE.match(reply.line), reply.line
    (msg,) = sppd.wait_messages(1)
    assert msg.path.stat().st_uid == me.pw_uid
