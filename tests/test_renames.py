"""A source renamed in the config keeps what it stored under its old name."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from harvester.config import FirstRun, ListingConfig, SourceConfig, SourceKind
from harvester.devserver import Response
from harvester.harvest import poll_one, read_settings
from harvester.models import StoredSource
from harvester.renames import renamed

from .conftest import NOW, feed_bytes, feed_source, make_config, run_cli

RSS = "https://www.icmpd.org/news-centre/rss"
NEWS = "https://www.icmpd.org/news-centre/"


def src(name: str, url: str = RSS, kind: SourceKind = SourceKind.FEED, **kw) -> SourceConfig:
    return SourceConfig(name=name, kind=kind, url=url, every=1800.0, first_run=FirstRun(),
                        timezone="UTC", **kw)


def row(name: str, url: str = RSS, kind: str = "feed", read_as: str | None = None):
    return StoredSource(name, url, kind, read_as)


@pytest.mark.parametrize(("configured", "stored", "expected"), [
    # renamed: the new name has nothing, the old one is configured no more
    ([src("icmpd-news")], [row("icmpd-rss")], {"icmpd-news": "icmpd-rss"}),
    # the same URL spelled otherwise
    ([src("icmpd-news", "HTTPS://WWW.ICMPD.ORG:443/news-centre/rss#top")], [row("icmpd-rss")],
     {"icmpd-news": "icmpd-rss"}),
    # both names still configured: two sources, nothing to take over
    ([src("icmpd-news"), src("icmpd-rss")], [row("icmpd-rss")], {}),
    # another URL, or another kind at it: a new source
    ([src("icmpd-news", RSS + "?type=100")], [row("icmpd-rss")], {}),
    ([src("icmpd-news", kind=SourceKind.PAGE)], [row("icmpd-rss")], {}),
    # the new name has data already: it is its own
    ([src("icmpd-news")], [row("icmpd-rss"), row("icmpd-news")], {}),
    # two gone at that URL, and nothing to tell them apart by: neither
    ([src("icmpd-news")], [row("a"), row("b")], {}),
])
def test_a_new_name_at_a_gone_sources_url_is_that_source_renamed(configured, stored,
                                                                  expected):
    assert renamed(configured, stored, read_settings) == expected


def test_two_sections_of_one_page_are_told_apart_by_their_settings():
    """Two listings of one page (news, events), both renamed: each goes to the one read
    with its selectors; with the selectors changed too, neither is guessed at."""
    news = src("news", NEWS, SourceKind.HTML, listing=ListingConfig(item="div.news"))
    events = src("events", NEWS, SourceKind.HTML, listing=ListingConfig(item="div.event"))
    stored = [row("old-events", NEWS, "html", read_settings(events)),
              row("old-news", NEWS, "html", read_settings(news))]
    assert renamed([news, events], stored, read_settings) == {"news": "old-news",
                                                              "events": "old-events"}
    moved = replace(news, listing=ListingConfig(item="article"))
    assert renamed([moved, events], stored, read_settings) == {"events": "old-events"}


HTTP = '[storage]\npath = "h.db"\n[http]\ntimeout = 2\nretries = 0\n'
NOTIFY = '[[notifiers]]\nname = "team"\nkind = "console"\nrules = []\n'


def test_a_source_renamed_in_the_config_keeps_its_items_and_tells_what_came_since(
        server, icmpd_a, tmp_path: Path):
    """Renamed between two runs while the feed gained three items: they are news (a new
    name's baseline would have stored them silently), the old items are the renamed
    source's, and its log goes on."""
    cfg = make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a) + NOTIFY)
    assert run_cli("--config", str(cfg), "once").returncode == 0
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    cfg.write_text(cfg.read_text().replace('name = "icmpd-rss"', 'name = "icmpd-news"'))
    r = run_cli("--config", str(cfg), "sources")
    assert r.stdout.splitlines()[-1] == (
        "icmpd-rss: no longer configured, 7 items kept: icmpd-news reads the same URL, and "
        "its first poll takes them over (renamed)")
    r = run_cli("--config", str(cfg), "once", "--dry-run")
    assert r.stderr.splitlines()[0].startswith("icmpd-news: baseline: ")
    assert r.stderr.splitlines()[0].endswith(
        "; warning: a poll takes over what icmpd-rss stored first (renamed): this dry run "
        "reads it as a new source")
    r = run_cli("--config", str(cfg), "once")
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("icmpd-news: 3 new, 1 changed, 6 unchanged, 3 notifications "
                               "queued (HTTP 200, ")
    assert r.stderr.splitlines()[0].endswith(
        "; warning: took over what icmpd-rss stored (no longer configured, the same URL: "
        "renamed)")
    assert r.stdout.count("\n== ") + r.stdout.startswith("== ") == 3
    r = run_cli("--config", str(cfg), "sources", "--json")
    [health] = [json.loads(line) for line in r.stdout.splitlines()]
    assert (health["name"], health["items"], health["baseline_at"] is not None) == (
        "icmpd-news", 10, True)
    r = run_cli("--config", str(cfg), "log", "--source", "icmpd-news", "--json")
    assert len(r.stdout.splitlines()) == 2  # the poll under the old name, and this one
    r = run_cli("--config", str(cfg), "items", "--source", "icmpd-news", "--json")
    assert {json.loads(line)["source"] for line in r.stdout.splitlines()} == {"icmpd-news"}
    assert len(r.stdout.splitlines()) == 10


def test_the_daemons_poll_takes_over_a_renamed_source_too(server, icmpd_a, config_for,
                                                          store):
    old = config_for(feed_source("icmpd-rss", icmpd_a))
    assert poll_one(old.sources[0], old, store, clock=lambda: NOW).new == 7
    new = config_for(feed_source("icmpd-news", icmpd_a))
    report = poll_one(new.sources[0], new, store, clock=lambda: NOW)
    assert (report.status.value, report.warning) == (
        "not-modified", "took over what icmpd-rss stored (no longer configured, the same URL: "
        "renamed)")
    assert [s.name for s in store.stored_sources()] == ["icmpd-news"]


def test_a_name_with_data_of_its_own_is_not_given_anothers(server, icmpd_a, config_for, store):
    from harvester.errors import StoreError

    config = config_for(feed_source("icmpd-rss", icmpd_a), feed_source("icmpd-news", icmpd_a))
    for source in config.sources:
        assert poll_one(source, config, store, clock=lambda: NOW).warning is None
    before = store.conn.execute("SELECT source, count(*) FROM sightings GROUP BY 1").fetchall()
    with pytest.raises(StoreError) as e:
        store.rename_source("icmpd-rss", "icmpd-news")
    assert str(e.value) == (f"cannot give what 'icmpd-rss' stored to 'icmpd-news' in "
                            f"{store.path}: 'icmpd-news' has data of its own")
    assert store.conn.execute("SELECT source, count(*) FROM sightings GROUP BY 1"
                              ).fetchall() == before


def test_a_take_over_the_store_refuses_is_said_and_the_poll_goes_on(server, icmpd_a,
                                                                     config_for, store):
    """A sighting under the new name with no source row for it (only a hand-edited database
    has that): the store refuses to merge the two, the poll says so and goes on as the new
    source's first."""
    old = config_for(feed_source("icmpd-rss", icmpd_a))
    poll_one(old.sources[0], old, store, clock=lambda: NOW)
    store.conn.execute("INSERT INTO sightings (source, key, item_id, first_seen, last_seen)"
                       " SELECT 'icmpd-news', key, item_id, first_seen, last_seen FROM"
                       " sightings LIMIT 1")
    store.conn.commit()
    new = config_for(feed_source("icmpd-news", icmpd_a))
    report = poll_one(new.sources[0], new, store, clock=lambda: NOW)
    assert report.warning == (
        f"did not take over what icmpd-rss stored: cannot give what 'icmpd-rss' stored to "
        f"'icmpd-news' in {store.path}: 'icmpd-news' has data of its own")
    assert [s.name for s in store.stored_sources()] == ["icmpd-news", "icmpd-rss"]
