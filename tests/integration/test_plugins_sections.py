# qmail-spp plugins, section by section: every plugin command that ends a section's run
# (E R D N O A) in every section ([connection] [helo] [mail] [rcpt] [data]), with the reply the
# client sees, whether the session goes on, what reaches the Maildir and which later plugins
# still run (spec/qmail-spp.md §5.5); P in every section; and how the plugin file is read
# (sections by their second character, comments, whole-line paths, `:` lines, §2).
# One instance for the whole file; each test installs its own plugins (Sppd.use_plugins).
import itertools

import pytest

from conftest import (EHLO_LINES, GREETING, QUEUED_RE, RELAY_REFUSED, expect_received,
                      start_plugin_instance)

SECTIONS = ["connection", "helo", "mail", "rcpt", "data"]
LANGUAGES = ["say.c", "say.sh", "say.py"]
OUTPUT = {
    "E": "E554 5.7.1 refused by the {section} plugin\n",
    "R": "R421 4.7.0 the {section} plugin drops you\n",
    "D": "D\n",
    "N": "N\n",
    "O": "O\n",
    "A": "A\n",
}
CLOSED = "closed"
BODY = b"Subject: plugin matrix\r\n\r\nbody\r\n"


@pytest.fixture(scope="module")
def spp(module_factory):
    return start_plugin_instance(module_factory)


def matrix_plugins(section, command, language):
    """The plugin under test first in its section, then one that would refuse if it ran; a
    recording probe in every other section."""
    text = f"[{section}]\nplugins/under-test\nplugins/next\n"
    plugins = {"under-test": (language, OUTPUT[command].format(section=section)),
               "next": ("say.c", "E550 5.7.1 the next plugin ran\n")}
    for other in SECTIONS:
        if other != section:
            text += f"[{other}]\nplugins/probe-{other}\n"
            plugins[f"probe-{other}"] = "say.c"
    return text, plugins


def run_dialogue(spp):
    """Greeting, EHLO, MAIL, RCPT, DATA (+ message), NOOP as far as the server lets us;
    returns the reply lines of each step that was answered, CLOSED where the server hung up."""
    steps = []
    with spp.connect(greet=False) as c:
        def step(line=None):
            try:
                if line is not None:
                    c.send(line)
                steps.append(c.read_reply().lines)
                return True
            except (EOFError, ConnectionError):
                steps.append(CLOSED)
                return False
        if not step():
            return steps
        for line in (b"EHLO client.test\r\n", b"MAIL FROM:<alice@client.test>\r\n",
                     b"RCPT TO:<bob@example.com>\r\n", b"DATA\r\n"):
            if not step(line):
                return steps
        if steps[-1] == ["354 go ahead"]:
            if not step(BODY + b".\r\n"):
                return steps
        if step(b"NOOP\r\n"):
            c.send(b"QUIT\r\n")
    return steps


def expected_dialogue(section, command):
    msg = OUTPUT[command].format(section=section)[1:].strip()
    noop = ["250 2.0.0 ok"]
    normal = [GREETING, EHLO_LINES, ["250 2.1.0 ok"], ["250 2.1.5 ok"], ["354 go ahead"], "QUEUED",
              noop]
    index = SECTIONS.index(section)
    if command in "NOA":
        return normal
    if command == "D":
        return normal[:index] + [CLOSED]
    if command == "R":
        return normal[:index] + [[msg], CLOSED]
    # E: that one command is refused, the session goes on.
    refused = {
        "connection": [[msg], *normal[1:]],
        "helo": [GREETING, [msg], *normal[2:]],
        "mail": [GREETING, EHLO_LINES, [msg], ["503 5.5.1 MAIL first"], ["503 5.5.1 MAIL first"],
                 noop],
        # DATA after the only RCPT was refused: qmail-md's 221 and the connection ends.
        "rcpt": [GREETING, EHLO_LINES, ["250 2.1.0 ok"], [msg],
                 ["221 2.0.0 error: I can break rules, too. goodbye."], CLOSED],
        "data": [GREETING, EHLO_LINES, ["250 2.1.0 ok"], ["250 2.1.5 ok"], [msg], noop],
    }
    return refused[section]


CASES = [(section, command, LANGUAGES[i % len(LANGUAGES)])
         for i, (section, command) in enumerate(itertools.product(SECTIONS, OUTPUT))]


@pytest.mark.parametrize("section,command,language", CASES,
                         ids=[f"{s}-{c}-{lang.split('.')[1]}" for s, c, lang in CASES])
def test_terminating_command_in_section(spp, section, command, language):
    spp.use_plugins(*matrix_plugins(section, command, language))
    steps = run_dialogue(spp)
    expected = expected_dialogue(section, command)
    delivered = "QUEUED" in expected
    if delivered:
        queued_at = expected.index("QUEUED")
        assert QUEUED_RE.match("\n".join(steps[queued_at])), steps[queued_at]
        steps[queued_at] = "QUEUED"
    assert steps == expected

    # The plugin ran once (E in [data] would run again on a retried DATA), the next plugin of
    # its section never: every one of these commands ends the section.
    assert len(spp.plugin_runs("under-test")) == 1
    assert spp.plugin_runs("next") == []
    if delivered:
        (msg,) = spp.wait_messages(1)
        assert msg.return_path == "alice@client.test" and msg.recipients == ["bob@example.com"]
        assert msg.body == b"Subject: plugin matrix\n\nbody\n"
        if (section, command) == ("helo", "E"):
            # A refused HELO is not a HELO: no "(HELO ...)", and "with SMTP" (none given).
            expect_received(msg, helo=None, proto="SMTP")
        else:
            expect_received(msg)
    else:
        assert spp.new_files() == []

    # Which later sections still ran plugins: none after A (qmail-spp is off for the rest of
    # the connection); each once when the message went through; none when the session ended
    # or the transaction stopped (RCPT and DATA say 503 before any plugin runs).
    for later in SECTIONS[SECTIONS.index(section) + 1:]:
        runs = len(spp.plugin_runs(f"probe-{later}"))
        expected_runs = 1 if delivered and command != "A" else 0
        assert runs == expected_runs, f"[{later}] plugins ran {runs} times after {command} " \
                                      f"in [{section}], expected {expected_runs}"


def test_error_in_data_leaves_the_transaction_open(spp):
    # E in [data]: no 354, but the transaction stays: DATA again re-runs the plugins.
    spp.use_plugins("[data]\nplugins/data_once\n", {"data_once": "data_once.py"})
    with spp.connect() as c:
        c.expect("EHLO client.test", *EHLO_LINES)
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250 2.1.5 ok")
        c.expect("DATA", "451 4.7.1 not yet, send DATA again")
        c.expect("DATA", "354 go ahead")
        c.send(b"Subject: second try\r\n\r\nbody\r\n.\r\n")
        assert QUEUED_RE.match(c.read_reply().line)
    (msg,) = spp.wait_messages(1)
    assert msg.recipients == ["bob@example.com"]
    expect_received(msg)
    assert msg.body == b"X-Data-Once: accepted on the second DATA\nSubject: second try\n\nbody\n"


def test_print_in_every_section(spp):
    # P lines go to the client before the command's own reply, verbatim: the plugin writes
    # the code and the continuation dash itself.
    plugins = {"p-connection": ("say.sh", "P220-connection plugin says hello\n"),
               "p-helo": ("say.py", "P250-helo plugin note\n"),
               "p-mail": ("say.c", "P250-mail plugin note\n"),
               "p-rcpt": ("say.sh", "P250-rcpt plugin note\n"),
               "p-data": ("say.c", "P354-data plugin note\n")}
    spp.use_plugins("".join(f"[{s}]\nplugins/p-{s}\n" for s in SECTIONS), plugins)
    with spp.connect() as c:
        assert c.greeting.lines == ["220-connection plugin says hello", *GREETING]
        c.expect("EHLO client.test", "250-helo plugin note", *EHLO_LINES)
        c.expect("MAIL FROM:<alice@client.test>", "250-mail plugin note", "250 2.1.0 ok")
        c.expect("RCPT TO:<bob@example.com>", "250-rcpt plugin note", "250 2.1.5 ok")
        # qmail's own refusal follows the plugin's P line.
        c.expect("RCPT TO:<bob@elsewhere.test>", "250-rcpt plugin note", RELAY_REFUSED)
        c.expect("DATA", "354-data plugin note", "354 go ahead")
        c.send(b"Subject: printed\r\n\r\nbody\r\n.\r\n")
        assert QUEUED_RE.match(c.read_reply().line)
    (msg,) = spp.wait_messages(1)
    assert msg.recipients == ["bob@example.com"]


def test_multiline_error_and_error_without_code(spp):
    plugins = {"multi": ("say.c", "P550-5.7.1 first line of a refusal\nE550 5.7.1 last line\n"),
               "nocode": ("say.sh", "Eno code at all\n")}
    spp.use_plugins("[mail]\nplugins/multi\n[helo]\nplugins/nocode\n", plugins)
    with spp.connect() as c:
        c.send(b"HELO client.test\r\n")
        assert c.read_line() == "no code at all"  # sent verbatim: no code is added
        c.expect("MAIL FROM:<alice@client.test>", "550-5.7.1 first line of a refusal",
                 "550 5.7.1 last line")


def test_plugin_file_sections_by_second_character(spp):
    text = ("plugins/before-any-section\n"  # before the first section: never runs
            "[cheese]\n"                    # 'c': [connection]
            "plugins/cheese\n"
            "[Connection]\n"                # 'C': a section that does not exist: never runs
            "plugins/dummy-upper\n"
            "[envelope]\n"
            "plugins/dummy-envelope\n"
            "# a comment line\n"
            "\n"
            "[hx-anything]\n"               # 'h': [helo]
            "plugins/helo \t \n"            # trailing blanks are not part of the path
            "[mail]\n"
            "plugins/mail-1\n"
            "[rcpt]\n"
            "plugins/rcpt\n"
            "[mail]\n"                      # a section again: appended in file order
            "plugins/mail-2")               # and no newline at the end of the file
    refuse = "E550 5.7.1 this plugin must not run\n"
    plugins = {"before-any-section": ("say.c", refuse), "dummy-upper": ("say.c", refuse),
               "dummy-envelope": ("say.c", refuse),
               "cheese": ("say.c", "P220-cheese is [connection]\n"),
               "helo": ("say.c", "HX-Helo: 1\n"), "mail-1": ("say.sh", "HX-Mail: 1\n"),
               "rcpt": ("say.py", "HX-Rcpt: 1\n"), "mail-2": ("say.c", "HX-Mail: 2\n")}
    spp.use_plugins(text, plugins)
    with spp.connect() as c:
        assert c.greeting.lines == ["220-cheese is [connection]", *GREETING]
        c.expect("EHLO client.test", *EHLO_LINES)
        reply = c.transaction("alice@client.test", ["bob@example.com"], b"Subject: s\r\n\r\nx\r\n")
        assert QUEUED_RE.match(reply.line), reply.line
    for never in ("before-any-section", "dummy-upper", "dummy-envelope"):
        assert spp.plugin_runs(never) == [], f"plugins/{never} ran"
    (msg,) = spp.wait_messages(1)
    expect_received(msg)
    assert msg.body == b"X-Helo: 1\nX-Mail: 1\nX-Mail: 2\nX-Rcpt: 1\nSubject: s\n\nx\n"


def test_plugin_lines_are_whole_paths_and_colon_lines_go_through_sh(spp):
    text = ("[helo]\n"
            "plugins/args -x\n")  # a file literally named "plugins/args -x": cannot execute
    spp.use_plugins(text, {"args": "say.c"})
    with spp.connect() as c:
        c.expect("EHLO client.test",
                 "451 4.3.0 qmail-spp failure: plugins/args -x: can't execute")
    assert spp.plugin_runs("args") == []

    text = ("[helo]\n"
            "  # not a comment: a path starting with blanks\n"
            "[mail]\n"
            ":plugins/args one 'two words' \"$SMTPMAILFROM\"\n"
            f"{spp.dir}/plugins/absolute\n"
            "./plugins/relative\n")
    spp.use_plugins(text, {"args": "say.c", "absolute": "say.c", "relative": "say.c"})
    with spp.connect() as c:
        c.expect("EHLO client.test", "451 4.3.0 qmail-spp failure:   # not a comment: a path "
                 "starting with blanks: can't execute")
        c.expect("MAIL FROM:<alice@client.test>", "250 2.1.0 ok")
    (colon,) = spp.plugin_runs("args")
    assert colon.argv == ["plugins/args", "one", "two words", "alice@client.test"]
    # A direct plugin's argv is exactly the config line, and nothing else.
    assert [r.argv for r in spp.plugin_runs("absolute")] == [[f"{spp.dir}/plugins/absolute"]]
    assert [r.argv for r in spp.plugin_runs("relative")] == [["./plugins/relative"]]


def test_changed_plugin_file_applies_to_new_sessions_only(spp):
    spp.use_plugins("[mail]\nplugins/first\n", {"first": ("say.c", "E550 5.7.1 first file\n"),
                                                  "second": ("say.c", "E550 5.7.1 second file\n")})
    with spp.connect() as old:
        old.expect("MAIL FROM:<alice@client.test>", "550 5.7.1 first file")
        spp.write_home_file("control/smtpplugins", "[mail]\nplugins/second\n")
        with spp.connect() as new:
            new.expect("MAIL FROM:<alice@client.test>", "550 5.7.1 second file")
        # The session that was open keeps the file it read when it started.
        old.expect("MAIL FROM:<alice@client.test>", "550 5.7.1 first file")


def test_accept_in_connection_means_no_plugins_for_the_whole_connection(spp):
    plugins = {"accept": ("say.sh", "A\n"), "refuse": ("say.c", "E550 5.7.1 must not run\n")}
    spp.use_plugins("[connection]\nplugins/accept\n[helo]\nplugins/refuse\n[mail]\n"
                    "plugins/refuse\n[rcpt]\nplugins/refuse\n[data]\nplugins/refuse\n", plugins)
    with spp.connect() as c:
        assert c.greeting.lines == GREETING
        c.expect("EHLO client.test", *EHLO_LINES)
        for subject in (b"one", b"two"):  # RSET and a new transaction do not turn them back on
            reply = c.transaction("alice@client.test", ["bob@example.com"],
                                  b"Subject: " + subject + b"\r\n\r\nx\r\n")
            assert QUEUED_RE.match(reply.line), reply.line
            c.expect("RSET", "250 2.0.0 flushed")
    assert spp.plugin_runs("refuse") == []
    assert len(spp.wait_messages(2)) == 2


def test_section_names_are_case_sensitive_everywhere(spp):
    # '[Mail]' is not [mail]; both are read, only the lower-case one runs.
    spp.use_plugins("[Mail]\nplugins/upper\n[mail]\nplugins/lower\n",
                    {"upper": ("say.c", "E550 5.7.1 upper\n"),
                     "lower": ("say.c", "E550 5.7.1 lower\n")})
    with spp.connect() as c:
        c.expect("MAIL FROM:<alice@client.test>", "550 5.7.1 lower")
    assert spp.plugin_runs("upper") == []
    assert len(spp.plugin_runs("lower")) == 1
