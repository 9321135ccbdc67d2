"""retag.py: the rules applied again to stored items — decided purely, then through the CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from harvester.config import RuleConfig, load_config
from harvester.harvest import poll_sources
from harvester.retag import judge, retag_store

from .conftest import NOW, feed_source, http_fast, make_config, run_cli

# before: the ICMPD rules minus project-launch, plus one the user later drops
OLD_RULES = ('[[rules]]\nname = "press-release"\ncategories = ["Press Release"]\n\n'
             '[[rules]]\nname = "annual"\nmatch = "(?i)annual"\n')
FOURTH_PHASE = "The fourth phase of the Migration EU Expertise Initiative is launched"
UKRAINE = ("Ukrainian border guards and customs officers optimise operations with support by "
           "the EU")
ANNUAL_REVIEW = "First annual review of the TRAFIG project"
ANNUAL_POLICY = ("First expert meeting on asylum in the framework of the ICMPD Annual Policy "
                 "Initiative 2020")


def test_retag_brings_the_history_under_the_rules_of_now_and_notifies_nothing(icmpd_a, tmp_path):
    body = http_fast() + feed_source("icmpd-rss", icmpd_a) + (
        '\n[[notifiers]]\nname = "all"\nkind = "console"\nrules = []\non = ["new", "changed"]\n')
    old = make_config(tmp_path, body + OLD_RULES, rules=False)
    assert run_cli("--config", str(old), "once", cwd=tmp_path).returncode == 0
    cfg = make_config(tmp_path, body)  # now: the ICMPD rules; "annual" is gone
    before = run_cli("--config", str(cfg), "items", "--rule", "project-launch", cwd=tmp_path)
    assert before.stderr == ("no items; a rule tags items as they arrive (`harvester retag` "
                             "applies it to those stored before)\n")
    dry = run_cli("--config", str(cfg), "retag", "--dry-run", cwd=tmp_path)
    expected = [
        f"-annual  2020-05-15  {ANNUAL_REVIEW}  (icmpd-rss)",
        f"+project-launch  2020-05-13  {UKRAINE}  (icmpd-rss)",
        f"-annual  2020-05-12  {ANNUAL_POLICY}  (icmpd-rss)",
        f"+project-launch  2020-04-30  {FOURTH_PHASE}  (icmpd-rss)",
        "rule project-launch: gained by 2 items, lost by 0 items",
        "rule annual (no longer configured): gained by 0 items, lost by 2 items",
    ]
    assert (dry.returncode, dry.stderr) == (0, "")
    assert dry.stdout.splitlines() == [
        *expected, "would retag 4 of 7 items (dry run: nothing written)"]
    untouched = run_cli("--config", str(cfg), "items", "--rule", "annual", cwd=tmp_path)
    assert len(untouched.stdout.splitlines()) == 4  # two items, two lines each
    done = run_cli("--config", str(cfg), "retag", cwd=tmp_path)
    assert done.stdout.splitlines() == [*expected, "retagged 4 of 7 items; nothing is notified"]
    tagged = run_cli("--config", str(cfg), "items", "--rule", "project-launch", "--json",
                     cwd=tmp_path)
    assert [json.loads(x)["title"] for x in tagged.stdout.splitlines()] == [UKRAINE, FOURTH_PHASE]
    assert run_cli("--config", str(cfg), "items", "--rule", "annual", cwd=tmp_path).stdout == ""
    assert run_cli("--config", str(cfg), "outbox", cwd=tmp_path).stderr == "outbox is empty\n"
    again = run_cli("--config", str(cfg), "retag", cwd=tmp_path)
    assert again.stdout == "all 7 stored items already carry the rules the config gives them\n"


@pytest.fixture
def now_rules(icmpd_a, tmp_path, store) -> Sequence[RuleConfig]:
    """The ICMPD feed stored (in `store`) under OLD_RULES; returns the ICMPD rules of now."""
    old = load_config(make_config(tmp_path, http_fast() + feed_source("icmpd-rss", icmpd_a)
                                  + OLD_RULES, rules=False))
    list(poll_sources(old, store, clock=lambda: NOW))
    return load_config(make_config(tmp_path, http_fast() + feed_source("icmpd-rss", icmpd_a))
                       ).rules


def test_an_item_edited_since_it_was_judged_keeps_what_its_poll_gave_it(store, now_rules):
    plan = [r for row in store.tagged_items(batch=3)  # batches of 3: 7 items in 3
            if (r := judge(*row, now_rules)) is not None]
    assert sorted(r.title for r in plan) == sorted(
        [ANNUAL_REVIEW, ANNUAL_POLICY, UKRAINE, FOURTH_PHASE])
    [first, *rest] = plan
    # the first was edited by a poll after it was judged: its hash no longer matches
    assert store.retag([(first.item_id, "an older hash", first.after),
                        *((r.item_id, r.content_hash, r.after) for r in rest)]) == 3
    left = retag_store(store, now_rules, write=False)
    assert ([r.item_id for r in left.newest], left.judged) == ([first.item_id], 7)


def test_a_retag_writes_batch_by_batch_and_keeps_the_newest_few_to_show(store, now_rules):
    report = retag_store(store, now_rules, shown=2, batch=1)
    assert (report.judged, report.changed, report.written) == (7, 4, 4)
    assert [r.title for r in report.newest] == [ANNUAL_REVIEW, UKRAINE]  # 15 and 13 May
    assert report.counts == {"annual": [0, 2], "project-launch": [2, 0]}
    assert retag_store(store, now_rules).changed == 0
