# The pluginrunner pool never makes one session wait for another's plugin: 20 sessions at
# once, one of which has a [mail] plugin that takes 2 s; the other 19 complete whole
# transactions (with plugins at MAIL and RCPT) long before it answers. And a pluginrunner
# that is SIGKILLed mid-plugin: that command gets a 451, the master starts a new one, later
# commands work.
import os
import signal
import threading
import time

from conftest import (EHLO_LINES, QUEUED_RE, START_TIMEOUT, start_plugin_instance, wait_for)

SLOW_SECONDS = 2.0


def test_one_slow_plugin_does_not_delay_other_sessions(make_sppd):
    spp = start_plugin_instance(make_sppd, plugins={"slow": "slow.sh", "noop": "noop.c"},
                                smtpplugins="[mail]\nplugins/slow\nplugins/noop\n"
                                            "[rcpt]\nplugins/noop\nplugins/noop\n")
    # Every session is connected and greeted first, so that the clock measures plugin
    # work only.
    slow = spp.connect(timeout=30)
    slow.expect("EHLO slow.test", *EHLO_LINES)
    fast = []
    for _ in range(19):
        c = spp.connect(timeout=30)
        c.expect("EHLO fast.test", *EHLO_LINES)
        fast.append(c)
    durations, errors = [None] * len(fast), []
    go = threading.Barrier(len(fast) + 1)

    def transaction(i, c):
        try:
            go.wait()
            started = time.monotonic()
            reply = c.transaction("alice@client.test", ["bob@example.com"],
                                  b"Subject: fast\r\n\r\nx\r\n")
            assert QUEUED_RE.match(reply.line), reply.line
            durations[i] = time.monotonic() - started
        except Exception as e:  # reported below, with the session number
            errors.append(f"session {i}: {e!r}")

    threads = [threading.Thread(target=transaction, args=(i, c)) for i, c in enumerate(fast)]
    for t in threads:
        t.start()
    slow_started = time.monotonic()
    slow.send(b"MAIL FROM:<slow@client.test>\r\n")
    go.wait()
    for t in threads:
        t.join(30)
    slow_reply = slow.read_reply()
    slow_elapsed = time.monotonic() - slow_started
    for c in [slow, *fast]:
        c.close()
    assert not errors, errors
    assert slow_reply.lines == ["250 2.1.0 ok"]
    assert slow_elapsed >= SLOW_SECONDS - 0.1, f"the slow MAIL took only {slow_elapsed:.2f}s"
    worst = max(durations)
    assert worst < SLOW_SECONDS * 0.75, \
        f"the slowest of the 19 other transactions took {worst:.2f}s (all: " \
        f"{', '.join(f'{d:.2f}' for d in sorted(durations))}): they waited for the slow plugin"
    assert len(spp.wait_messages(19)) == 19


# [mail] plugin: for sender pause@..., marks that it runs and takes 5 seconds.
PAUSE = """#!/bin/sh
case "$SMTPMAILFROM" in
  pause@*) : > out/pause.started; sleep 5 ;;
esac
"""


def test_killed_pluginrunner_fails_the_command_and_is_restarted(make_sppd):
    spp = start_plugin_instance(make_sppd, pluginrunner={"processes": "1"},
                                plugins={"pause": PAUSE}, smtpplugins="[mail]\nplugins/pause\n")
    (runner,) = spp.wait_pids("sppd-pluginrunner", 1)
    with spp.connect(timeout=30) as c:
        c.expect("EHLO client.test", *EHLO_LINES)
        c.send(b"MAIL FROM:<pause@client.test>\r\n")
        wait_for((spp.out_dir / "pause.started").exists, 15, "the plugin to start")
        os.kill(runner, signal.SIGKILL)
        reply = c.read_reply()
        assert reply.code == 451 and reply.line.startswith("451 4.3.0 qmail-spp failure"), \
            reply.line
        c.expect("NOOP", "250 2.0.0 ok")
        spp.wait_pids("sppd-pluginrunner", 1, exclude={runner}, timeout=START_TIMEOUT)

        # The same session: once the worker has the new runner's channel, MAIL works again
        # (a 451 in between is fine: the channel may still be on its way).
        def mail_accepted():
            reply = c.cmd("MAIL FROM:<alice@client.test>")
            assert reply.code in (250, 451), reply.line
            if reply.code == 250:
                return True
            return False
        wait_for(mail_accepted, 15, "MAIL to work through the new pluginrunner", 0.2)
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: after the restart\r\n\r\nx\r\n.\r\n")
        assert QUEUED_RE.match(c.read_reply().line)
    # A new session too.
    reply = spp.deliver(b"Subject: new session\r\n\r\nx\r\n")
    assert QUEUED_RE.match(reply.line), reply.line
    assert len(spp.wait_messages(2)) == 2
