"""config/icmpd.toml's rules classify the seed items as the users want, both ways."""

from __future__ import annotations

import pytest

from harvester.config import load_config
from harvester.normalise import Context
from harvester.normalise import normalise as normalise_entry
from harvester.parse import parse_feed
from harvester.rules import classify

from .conftest import CONFIG_DIR, FEEDS, NOW

RULES = load_config(CONFIG_DIR / "icmpd.toml").rules


def _seed_items():
    out = {}
    for name in ("icmpd-2019-03.rss", "icmpd-2020-05-b.rss"):
        doc = parse_feed((FEEDS / name).read_bytes(), url="https://www.icmpd.org/news-centre/rss")
        ctx = Context("icmpd-rss", doc.base_url, NOW, "Europe/Vienna", True, doc.language)
        for e in doc.entries:
            it = normalise_entry(e, ctx)
            out[it.title] = it
    return out


ITEMS = _seed_items()

# What a person watching ICMPD wants to hear about, decided item by item from the seeds.
PRESS_RELEASES = {"Germany joins the European migration organisation ICMPD"}
PROJECT_LAUNCHES = {
    # a project kicked off
    'Kick-Off Event of the project "Swiss Support to Integrated Border Management in Lebanon '
    '(Phase 2)"',
    # a new phase started
    "The fourth phase of the Migration EU Expertise Initiative is launched",
    # "ICMPD organized a kick-off meeting" of a new EU4IBM component
    "Ukrainian border guards and customs officers optimise operations with support by the EU",
}


def test_every_seed_item_is_labelled():
    assert len(ITEMS) == 20
    assert set(ITEMS) >= PRESS_RELEASES | PROJECT_LAUNCHES


@pytest.mark.parametrize("title", sorted(ITEMS))
def test_press_release_rule(title):
    assert ("press-release" in classify(ITEMS[title], RULES)) == (title in PRESS_RELEASES)


@pytest.mark.parametrize("title", sorted(ITEMS))
def test_project_launch_rule(title):
    assert ("project-launch" in classify(ITEMS[title], RULES)) == (title in PROJECT_LAUNCHES)


def test_call_for_applications_launched_is_not_a_project_launch():
    it = ITEMS["Migration Media Award 2019 - Call for applications launched"]
    assert classify(it, RULES) == ()


def test_category_match_ignores_case_and_spacing():
    from dataclasses import replace

    it = ITEMS["Germany joins the European migration organisation ICMPD"]
    assert "press-release" in classify(replace(it, category="press  release"), RULES)
    assert "press-release" not in classify(replace(it, category="Press"), RULES)
    # a <category> element counts as well as the title label
    assert "press-release" in classify(replace(it, category=None, tags=("Press Release",)), RULES)


def test_rule_restricted_to_sources():
    from dataclasses import replace

    from harvester.config import RuleConfig

    only_listing = RuleConfig("pr-listing", categories=("Press Release",), sources=("listing",))
    it = ITEMS["Germany joins the European migration organisation ICMPD"]
    assert classify(it, [only_listing]) == ()
    assert classify(replace(it, source="listing"), [only_listing]) == ("pr-listing",)


def test_a_rule_of_sources_alone_takes_all_their_items_but_the_excluded(tmp_path):
    """"Everything the press-office feed publishes, but the job ads": no keyword needed."""
    from dataclasses import replace

    path = tmp_path / "t.toml"
    path.write_text('[[sources]]\nname = "press-office"\nurl = "https://e.org/rss"\n'
                    '[[rules]]\nname = "all-press"\nsources = ["press-office"]\n'
                    'exclude = "(?i)vacanc"\n', "utf-8")
    [rule] = load_config(path).rules
    from_press = {t: replace(it, source="press-office") for t, it in ITEMS.items()}
    assert all(classify(it, [rule]) == ("all-press",) for it in from_press.values())
    assert classify(ITEMS["Germany joins the European migration organisation ICMPD"], [rule]) == ()
    vacancy = replace(next(iter(from_press.values())), title="Vacancy: Project Officer")
    assert classify(vacancy, [rule]) == ()
