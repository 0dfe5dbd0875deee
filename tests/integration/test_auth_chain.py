# authd running a chain of checkpassword programs, as the seed's run files do
# (`qmail-smtpd multicheckpw 2 checkqpasswd checkpasswd true`): two checkers over two
# password files, the first rejecting and the second accepting; the CRAM field order
# `cram_order = challenge_first` (Dabrowski 0.31, cmd5checkpw 0.2x); the checkpassword exit
# codes (1 bad, 2 misuse: bad and logged, 111 temporary); a relative program path (from
# qmail_home, as qmail-smtpd ran it from /var/qmail).
import pytest

from conftest import TEST_CHECKPASSWORD, b64, cram_response, wait_for

MAIN = {"alice": "wonderland", "both": "second"}
LEGACY = {"olduser": "oldpass", "both": "first"}
OK = "235 2.7.0 ok, go ahead"
BAD = "535 5.7.8 authentication failed"
TEMP = "454 4.7.0 temporary authentication failure"


def checker(instance_dir, name, passwords):
    """A checkqpasswd/checkpasswd stand-in: sppd-test-checkpassword over one file, with the
    challenge_first field order, logging each run's user to out/NAME.log. Exits with the
    number in NAME.status instead, if that file exists."""
    return (f"#!/bin/sh\n"
            f"code=$(cat {instance_dir}/{name}.status 2>/dev/null)\n"
            f'[ -n "$code" ] && exit "$code"\n'
            f"exec {TEST_CHECKPASSWORD} -o challenge_first -l {instance_dir}/out/{name}.log "
            f'{instance_dir}/{passwords} "$@"\n')


@pytest.fixture(scope="module")
def chain(module_factory):
    instance = module_factory(start=False, passwords=MAIN)
    d = instance.dir
    instance.authd.update({
        # Relative: from qmail_home (the instance dir), like bin/qmail-queue.
        "checkpassword": f"bin/recordpw {instance.checkpassword_log} bin/multicheckpw 2 "
                         f"{d}/bin/check-legacy {d}/bin/check-main /bin/true",
        "cram_order": "challenge_first"})
    instance.home_files.update({
        "passwords.legacy": "".join(f"{u}:{p}\n" for u, p in LEGACY.items()),
        "bin/check-legacy": checker(d, "legacy", "passwords.legacy"),
        "bin/check-main": checker(d, "main", "passwords")})
    instance.control["auth/smtp"] = "63"  # PLAIN in plaintext: these tests are about authd
    return instance.start()


@pytest.fixture
def instance(chain):
    chain.forget_records()
    for name in ("legacy", "main"):
        (chain.dir / f"{name}.status").unlink(missing_ok=True)
    (chain.dir / "bin/check-legacy").chmod(0o755)
    (chain.dir / "bin/check-main").chmod(0o755)
    return chain


def checker_runs(instance, name):
    try:
        return (instance.out_dir / f"{name}.log").read_text().splitlines()
    except FileNotFoundError:
        return []


@pytest.mark.parametrize("user,password,reply,legacy,main", [
    ("olduser", "oldpass", OK, ["olduser"], []),          # the first checker accepts
    ("both", "first", OK, ["both"], []),
    ("alice", "wonderland", OK, ["alice"], ["alice"]),   # the first rejects, the second accepts
    ("both", "second", OK, ["both"], ["both"]),
    ("alice", "wrong", BAD, ["alice"], ["alice"]),       # both reject
    ("nobody", "x", BAD, ["nobody"], ["nobody"])])
def test_chain_of_two_checkers(instance, user, password, reply, legacy, main):
    with instance.connect() as c:
        assert c.auth("PLAIN", user, password, initial=True).lines == [reply]
    assert checker_runs(instance, "legacy") == legacy
    assert checker_runs(instance, "main") == main
    (run,) = instance.checkpassword_runs()
    assert run["fields"][:2] == [user, password]


@pytest.mark.parametrize("mechanism", ["CRAM-MD5", "CRAM-SHA1", "CRAM-RIPEMD"])
def test_cram_challenge_first(instance, mechanism):
    with instance.connect() as c:
        reply = c.cmd(f"AUTH {mechanism}")
        assert reply.code == 334
        answer = cram_response(mechanism, reply.line[4:], "alice", "wonderland")
        c.expect(answer, OK)
    (run,) = instance.checkpassword_runs()
    user, challenge, response = run["fields"]
    assert user == "alice"
    assert b64(challenge) == reply.line[4:]
    assert b64(f"alice {response}") == answer
    assert checker_runs(instance, "main") == ["alice"]  # alice is only in the second file


@pytest.mark.parametrize("status,reply,logged", [
    ("1", BAD, None),
    ("2", BAD, "it says its input was malformed"),
    ("111", TEMP, None),
    ("100", BAD, None)])  # vchkpw's many codes: anything else is a failure
def test_checkpassword_exit_codes(instance, status, reply, logged):
    (instance.dir / "main.status").write_text(status + "\n")
    before = len(instance.log())
    with instance.connect() as c:
        # Rejected by the first checker; the second one's exit code decides.
        assert c.auth("PLAIN", "alice", "wonderland").lines == [reply]
    if logged:
        wait_for(lambda: logged in instance.log()[before:], 10, f"{logged!r} in the log")


def test_checkpassword_not_executable(instance):
    (instance.dir / "bin/check-legacy").chmod(0o644)
    (instance.dir / "bin/check-main").chmod(0o644)
    with instance.connect() as c:
        assert c.auth("PLAIN", "alice", "wonderland").lines == [TEMP]
