"""The command channel: a real program run for each message, the webhook's JSON on its
stdin; its exit status decides sent, retried or dead."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from harvester.config import load_config
from harvester.errors import ConfigError
from harvester.notify import deliver

from .conftest import NOW, feed_source, make_config, run_cli
from .test_notify import GERMANY, two_polls

# What the program does is read from a file beside it, so one test can change it between
# delivery passes: "ok", "fail" (exit 3 saying why), "sleep" (with a child, past the
# timeout). Each run appends what it was given to runs.jsonl.
PROGRAM = """\
import json, os, subprocess, sys, time
here = os.path.dirname(os.path.abspath(__file__))
mode = open(os.path.join(here, "mode")).read().strip()
run = {"argv": sys.argv[1:], "stdin": sys.stdin.read(),
       "env": {k: v for k, v in os.environ.items() if k.startswith("HARVESTER_")}}
with open(os.path.join(here, "runs.jsonl"), "a") as f:
    f.write(json.dumps(run) + "\\n")
if mode == "fail":
    print("connecting to the team chat", file=sys.stderr)
    print("post failed: HTTP 502 from chat.example.org", file=sys.stderr)
    sys.exit(3)
if mode == "sleep":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    open(os.path.join(here, "child.pid"), "w").write(str(child.pid))
    time.sleep(60)
print("posting")
print("posted as message 42")
"""


@pytest.fixture
def program(tmp_path: Path):
    """(the command's TOML, set the mode, the runs so far)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "post.py").write_text(PROGRAM)

    def mode(m: str) -> None:
        (folder / "mode").write_text(m)

    def runs() -> list[dict]:
        path = folder / "runs.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    mode("ok")
    command = json.dumps([sys.executable, str(folder / "post.py"), "--team", "press"])
    return command, mode, runs, folder


def command_notifier(command: str, extra: str = "") -> str:
    return (f'\n[[notifiers]]\nname = "script"\nkind = "command"\nrules = ["press-release"]\n'
            f"command = {command}\n{extra}")


def test_each_message_runs_the_program_with_the_webhooks_json_on_stdin(
        server, icmpd_a, config_for, store, program):
    command, _, runs, _ = program
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=command_notifier(command))
    two_polls(server, config, store)
    report = deliver(config, store, NOW)
    assert (report.sent, report.retrying, report.dead, report.errors) == (1, 0, 0, [])
    [run] = runs()
    assert run["argv"] == ["--team", "press"]  # as configured: no feed's words in it
    [row] = store.outbox()
    assert run["env"] == {"HARVESTER_NOTIFIER": "script", "HARVESTER_ID": row["id"],
                          "HARVESTER_EVENT": "item.new"}
    body = json.loads(run["stdin"])
    assert (body["type"], body["data"]["source"], body["data"]["rules"]) == (
        "item.new", "icmpd-rss", ["press-release"])
    assert (body["data"]["item"]["title"], body["data"]["item"]["published"]) == (
        GERMANY, "2020-05-20T07:41:00Z")
    assert (row["status"], row["response"]) == ("sent", "posted as message 42")


def test_a_program_that_fails_is_run_again_later_with_the_same_id(
        server, icmpd_a, config_for, store, program):
    command, mode, runs, _ = program
    mode("fail")
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=command_notifier(command))
    two_polls(server, config, store)
    report = deliver(config, store, NOW, rand=lambda: 0.5)
    assert (report.sent, report.retrying, report.errors) == (0, 1, [
        f"script: {sys.executable} failed (exit status 3): post failed: HTTP 502 from "
        "chat.example.org"])
    [row] = store.outbox()
    assert (row["status"], row["attempts"]) == ("pending", 1)
    mode("ok")
    assert deliver(config, store, NOW + timedelta(seconds=31), rand=lambda: 0.5).sent == 1
    first, second = runs()
    assert first["env"]["HARVESTER_ID"] == second["env"]["HARVESTER_ID"] == row["id"]
    # the same message; only its timestamp, when it was sent, may have moved on a second
    sent = [json.loads(run["stdin"]) for run in (first, second)]
    assert [{k: v for k, v in m.items() if k != "timestamp"} for m in sent] == [
        {k: v for k, v in sent[0].items() if k != "timestamp"}] * 2


def test_a_program_past_its_timeout_is_stopped_with_what_it_started(
        server, icmpd_a, config_for, store, program):
    command, mode, _, folder = program
    mode("sleep")
    config = config_for(feed_source("icmpd-rss", icmpd_a),
                        notifiers=command_notifier(command, 'timeout = "1s"\n'))
    two_polls(server, config, store)
    started = time.monotonic()
    report = deliver(config, store, NOW)
    assert time.monotonic() - started < 10
    assert (report.sent, report.retrying, report.errors) == (0, 1, [
        f"script: {sys.executable} did not finish within 1s: stopped"])
    child = int((folder / "child.pid").read_text())
    for _ in range(50):  # the kill is sent; its reaping by init may take a moment
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{child}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        pytest.fail("the program's child outlived the attempt")


def test_a_program_that_cannot_be_run_is_dead_at_once_naming_it(server, icmpd_a, config_for,
                                                                 store):
    config = config_for(feed_source("icmpd-rss", icmpd_a),
                        notifiers=command_notifier('["/nonexistent/post-news"]'))
    two_polls(server, config, store)
    report = deliver(config, store, NOW)
    assert (report.sent, report.dead, report.errors) == (0, 1, [
        "script: cannot run /nonexistent/post-news: No such file or directory"])


def test_a_digest_is_one_run_with_every_message(server, icmpd_a, config_for, store, program):
    command, _, runs, _ = program
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=command_notifier(
        command, "digest = true\n").replace('rules = ["press-release"]', "rules = []"))
    two_polls(server, config, store)
    report = deliver(config, store, NOW)
    assert report.sent == 3
    [run] = runs()
    body = json.loads(run["stdin"])
    assert (body["type"], run["env"]["HARVESTER_EVENT"]) == ("digest", "digest")
    assert sorted(n["id"] for n in body["data"]["notifications"]) == sorted(
        r["id"] for r in store.outbox())


def test_input_text_gives_the_program_the_message_as_text(server, icmpd_a, config_for, store,
                                                          program):
    """`input = "text"`: the message as an email's text part reads, its subject first —
    for a program that posts what it reads (Apprise: `apprise URL` sends its stdin to any
    of a hundred services), where the JSON would arrive as it is."""
    command, _, runs, _ = program
    config = config_for(feed_source("icmpd-rss", icmpd_a),
                        notifiers=command_notifier(command, 'input = "text"\n'))
    two_polls(server, config, store)
    assert deliver(config, store, NOW).sent == 1
    [run] = runs()
    url = ("https://www.icmpd.org/news-centre/news-detail/press-release-germany-joins-the-"
           "european-migration-organisation-icmpd/")
    assert run["stdin"].splitlines() == [
        f"Press Release: {GERMANY}", "", f"== Press Release: {GERMANY}",
        "   2020-05-20 09:41 CEST · icmpd-rss · rules: press-release", f"   {url}",
        "   Germany becomes the 18th Member State of the International Centre for Migration "
        "Policy Development..."]
    assert run["env"]["HARVESTER_EVENT"] == "item.new"


def test_input_is_json_or_text(tmp_path):
    cfg = make_config(tmp_path, command_notifier('["post-news"]', 'input = "xml"\n'))
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert str(e.value) == (f"{cfg}: notifiers[0].input: expected json (the webhook's JSON) "
                            "or text (the message as an email's text part reads), got 'xml'")


@pytest.mark.parametrize(("value", "message"), [
    ("[]", "expected the program and its arguments as a list of strings, e.g. "
           '["/usr/local/bin/post-news", "--team", "press"], got []'),
    ('["post-news", 2]', "expected the program and its arguments as a list of strings, e.g. "
                         '["/usr/local/bin/post-news", "--team", "press"], got [\'post-news\', 2]'),
    ('"post-news --team press"', "expected a list, got a string 'post-news --team press'"),
])
def test_a_command_that_is_not_a_list_of_words_is_refused(tmp_path, value, message):
    cfg = make_config(tmp_path, command_notifier(value))
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert str(e.value) == f"{cfg}: notifiers[0].command: {message}"


def test_a_relative_program_is_the_configs_neighbour_and_check_says_when_it_is_missing(
        tmp_path):
    cfg = make_config(tmp_path, command_notifier('["./bin/post-news", "--team", "press"]')
                      + command_notifier('["no-such-program-here"]').replace('"script"', '"b"'))
    [n, _] = load_config(cfg).notifiers
    assert n.option("command") == (str(tmp_path / "bin" / "post-news"), "--team", "press")
    r = run_cli("--config", str(cfg), "check")
    assert r.returncode == 0
    assert (f"notifier script: command, press-release, on new, runs {tmp_path}/bin/post-news "
            "--team press") in r.stdout.splitlines()
    assert r.stderr == (
        f"  warning: program {tmp_path}/bin/post-news is not found, or cannot be run: its "
        "notifications would fail\n"
        "  warning: program no-such-program-here is not found on PATH, or cannot be run: its "
        "notifications would fail\n")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "post-news").write_text("#!/bin/sh\ncat >/dev/null\n")
    (tmp_path / "bin" / "post-news").chmod(0o755)
    r = run_cli("--config", str(cfg), "check")
    assert "bin/post-news" not in r.stderr
