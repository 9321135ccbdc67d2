"""The pure decisions: diff against what is stored, and what to notify."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from harvester.config import FirstRun, FirstRunMode, NotifierConfig, NotifierKind, RuleConfig
from harvester.diff import (
    dedupe,
    diff,
    item_id,
    no_overlap,
    notification_id,
    old_news,
    plan_notifications,
    taken_out_only,
    untold_edits,
)
from harvester.edits import VERSIONED
from harvester.models import (
    HASH_VERSION,
    Change,
    ChangeKind,
    DateFlag,
    Item,
    StoredItem,
    Vanished,
)
from harvester.normalise import content_hash


def item(n: int, *, guid: str | None = None, url: str | None = "auto", title: str | None = None,
         category: str | None = "Project News", published: str = "2020-05-01T00:00:00Z",
         source: str = "feed") -> Item:
    url = f"https://www.icmpd.org/news/{n}/" if url == "auto" else url
    title = title or f"Item {n}"
    key = f"guid:{guid}" if guid else (f"url:{url}" if url else f"hash:{n}")
    return Item(source=source, key=key, url=url, guid=guid, title=title, category=category,
                tags=(), summary="s", content="", published=published, date_flag=DateFlag.NONE,
                language="en", content_hash=content_hash(title, url, category, "s", "",
                                                         published))


def stored(it: Item, *, id_: str | None = None, hash_: str | None = None,
           key: str | None = "same") -> StoredItem:
    return StoredItem(id=id_ or item_id(it.source, it.key), key=it.key if key == "same" else key,
                      url=it.url, content_hash=hash_ or it.content_hash, published=it.published,
                      date_flag=it.date_flag)


def kinds(changes):
    return [(c.kind.value, c.item.title) for c in changes]


def test_new_changed_unchanged():
    a, b, c = item(1), item(2), item(3)
    edited = replace(b, title="Item 2 (edited)", content_hash=f"{HASH_VERSION}:edited")
    by_key = {a.key: stored(a), b.key: stored(b)}
    changes = diff([a, edited, c], by_key, {})
    assert kinds(changes) == [("unchanged", "Item 1"), ("changed", "Item 2 (edited)"),
                              ("new", "Item 3")]
    assert changes[1].item_id == item_id("feed", b.key)
    assert changes[1].previous == by_key[b.key]
    assert changes[2].item_id == item_id("feed", c.key)


def test_absent_items_are_not_touched():
    a = item(1)
    assert diff([], {a.key: stored(a)}, {}) == []


def test_duplicates_in_one_fetch_are_one_item():
    a = item(1, guid="g1")
    dup_guid = replace(item(9, guid="g1"), title="again")
    dup_url = item(1, guid="other")  # same canonical URL, another guid
    assert [i.title for i in dedupe([a, dup_guid, dup_url])] == ["Item 1"]
    assert kinds(diff([a, dup_guid, dup_url], {}, {})) == [("new", "Item 1")]


def test_changed_guid_with_same_url_is_the_same_item():
    old = item(1, guid="tx_ttnews-1")
    new = item(1, guid="tx_ttnews-1-renumbered")
    by_url = {old.url: stored(old, key=None)}
    [ch] = diff([new], {}, by_url)
    assert ch.kind is ChangeKind.UNCHANGED and ch.rekeyed
    assert ch.item_id == item_id("feed", old.key)


def test_item_seen_through_another_source_is_not_new():
    in_feed = item(1)
    in_listing = replace(item(1), source="listing")
    [ch] = diff([in_listing], {}, {in_feed.url: stored(in_feed, key=None)})
    assert ch.kind is ChangeKind.UNCHANGED and ch.item_id == item_id("feed", in_feed.key)


def test_older_hash_version_is_not_a_change():
    a = item(1)
    [ch] = diff([a], {a.key: stored(a, hash_="v0:whatever")}, {})
    assert ch.kind is ChangeKind.UNCHANGED


def test_flagged_date_keeps_first_seen():
    a = replace(item(1), published="2020-06-01T00:00:00Z", date_flag=DateFlag.MISSING)
    prev = replace(stored(a), published="2020-05-01T00:00:00Z")
    [ch] = diff([a], {a.key: prev}, {})
    assert ch.item.published == "2020-05-01T00:00:00Z" and ch.kind is ChangeKind.UNCHANGED


def test_rules_are_attached_to_new_and_changed_items():
    rules = [RuleConfig("press-release", categories=("Press Release",))]
    pr = item(1, category="Press Release")
    [ch] = diff([pr], {}, {}, rules)
    assert ch.rules == ("press-release",)


@pytest.mark.parametrize("found_by", ["key", "url"])
def test_a_second_sources_view_is_never_an_edit_however_often_it_has_seen_the_item(found_by):
    """An item a feed brought first and a listing (or a cache lagging a poll behind) has
    shown since: the listing's differing view — its own excerpt, an older copy — is a
    sighting, not an edit that puts its words over the feed's, to be "edited back" when
    the feed's entry next changes."""
    feeds = item(1, source="listing")
    theirs = replace(feeds, title="Item 1, as the listing shows it",
                     content_hash=f"{HASH_VERSION}:listing")
    known = replace(stored(feeds), first=False)  # sighted by this source, brought by another
    [ch] = (diff([theirs], {feeds.key: known}, {}) if found_by == "key"
            else diff([replace(theirs, key="guid:other")], {}, {feeds.url: known}))
    assert (ch.kind, ch.foreign, ch.item_id) == (ChangeKind.UNCHANGED, True, known.id)
    assert plan_notifications([ch], [EDITS], baseline=False, first_run=FirstRun()) == []
    # the source that brought it: its view is the item's, and a change in it an edit
    [ch] = diff([theirs], {feeds.key: stored(feeds)}, {})
    assert ch.kind is ChangeKind.CHANGED


@pytest.mark.parametrize(("published", "found"), [
    ("2020-05-02T00:00:00Z", True),  # the item as a listing a poll behind shows it
    ("2020-05-02T20:00:00Z", True),  # its listing's day, read as midnight in its zone
    ("2020-06-15T00:00:00Z", False),  # a slug freed by a rename, given to a later article
])
def test_a_link_an_item_had_before_is_that_item_only_on_its_date(published, found):
    fixed = item(1, title="Project launched", published="2020-05-02T00:00:00Z")
    was = replace(stored(fixed), first=False)  # the feed's, which saw the fix first
    old = replace(item(2, title="Project lauched", source="listing",
                       url="https://www.icmpd.org/news/project-lauched/"), published=published)
    [ch] = diff([old], {}, {}, former={old.url: was})
    assert (ch.kind, ch.item_id) == ((ChangeKind.UNCHANGED, was.id) if found
                                     else (ChangeKind.NEW, item_id("listing", old.key)))


@pytest.mark.parametrize(("theirs", "found"), [
    ("https://icmpd.org/newsletter-may/", True),  # the site's listing, without its www.
    ("https://www.icmpd.org/news-centre/newsletter/", True),
    ("https://www.iom.int/newsletter-may/", False),  # another organisation's, that day
    (None, True),  # no link to tell by
])
def test_another_sources_copy_is_found_by_title_on_the_same_site_only(theirs, found):
    """A feed and a listing of one site carry one article under two links: the same title
    that day is that article. Another site's item of a title as plain as "Newsletter" is
    its own, and its news; before, it was taken for the first one and never told."""
    first = replace(item(1, title="Newsletter", source="listing"),
                    url=theirs, key=f"url:{theirs}" if theirs else "hash:x")
    ours = item(2, title="Newsletter", url="https://www.icmpd.org/news/newsletter/")
    copy = replace(stored(first), own=False)
    [ch] = diff([ours], {}, {}, by_title={"Newsletter": [copy]})
    assert (ch.kind, ch.foreign) == ((ChangeKind.UNCHANGED, True) if found
                                     else (ChangeKind.NEW, False))



DETAIL = "https://www.icmpd.org/news-centre/news-detail/"
LAUCH = ("ICMPD and Ghana lauch the second phase of the SMMIG project",
         DETAIL + "icmpd-and-ghana-lauch-the-second-phase-of-the-smmig-project/")
LAUNCH = ("ICMPD and Ghana launch the second phase of the SMMIG project",
          DETAIL + "icmpd-and-ghana-launch-the-second-phase-of-the-smmig-project/")


def entry(title: str, url: str | None, *, published: str = "2022-03-31T09:00:00Z",
          summary: str = "The project supports Ghana's border management.") -> Item:
    key = f"url:{url}" if url else f"hash:{title}"
    return Item(source="feed", key=key, url=url, guid=None, title=title, category=None,
                tags=(), summary=summary, content="", published=published,
                date_flag=DateFlag.NONE, language="en",
                content_hash=content_hash(title, url, None, summary, "", published))


def vanished(it: Item) -> Vanished:
    return Vanished(stored(it), it.title, it.summary)


@pytest.mark.parametrize(("title", "url", "published", "summary", "kind"), [
    # the typo in the title fixed, and the CMS made the link anew from it
    (*LAUNCH, "2022-03-31T09:00:00Z", None, ChangeKind.CHANGED),
    (LAUNCH[0] + " in Accra", LAUNCH[1], "2022-03-31T15:30:00Z", None, ChangeKind.CHANGED),
    (LAUNCH[0], None, "2022-03-31T09:00:00Z", None, ChangeKind.NEW),  # its link gone
    (*LAUNCH, "2022-04-01T09:00:00Z", None, ChangeKind.NEW),  # a day on: the next issue
    (LAUNCH[0], "https://www.icmpd.org/events/" + LAUNCH[1].rsplit("/", 2)[1] + "/",
     "2022-03-31T09:00:00Z", None, ChangeKind.NEW),  # another folder of the site
    (LAUNCH[0], LAUNCH[1].replace("www.icmpd.org", "www.iom.int"), "2022-03-31T09:00:00Z",
     None, ChangeKind.NEW),  # another site
    ("ICMPD and Ghana sign a memorandum on labour migration", DETAIL + "mou/",
     "2022-03-31T09:00:00Z", None, ChangeKind.NEW),  # most words new
    (*LAUNCH, "2022-03-31T09:00:00Z", "Vienna hosts the Budapest Process ministerial.",
     ChangeKind.NEW),  # the summary another story's
])
def test_an_entry_retitled_under_a_new_link_is_the_item_that_vanished(title, url, published,
                                                                      summary, kind):
    """A title fixed, and with it the link a CMS makes from the title: no key, link or
    title is the stored item's, but the same day, a link in the same folder, mostly the
    same words and the item gone from the feed at once say it is that item, edited — one
    "Updated:" message, not the launch told twice as news."""
    old = entry(*LAUCH)
    new = entry(title, url, published=published,
                **({"summary": summary} if summary else {}))
    [ch] = diff([new], {}, {}, gone=[vanished(old)])
    assert ch.kind is kind
    if kind is ChangeKind.CHANGED:
        assert (ch.item_id, ch.rekeyed, ch.previous) == (item_id("feed", old.key), True,
                                                          stored(old))


def test_the_next_of_a_run_of_formulaic_updates_is_news_not_the_last_one_retitled():
    """A fast feed's updates, hours apart, alike in title and summary but for what each
    reports: the next one as the last drops off the feed is news — its summary is not
    the same text with a word put right."""
    old = entry("Situation update: arrivals at the border crossing", DETAIL + "update-1/",
                summary="Arrivals at the border crossing rose today, said the ministry in "
                        "its morning briefing.")
    new = entry("Situation update: departures at the border crossing", DETAIL + "update-2/",
                published="2022-03-31T15:00:00Z",
                summary="Departures at the border crossing fell today, said the ministry in "
                        "its evening briefing.")
    [ch] = diff([new], {}, {}, gone=[vanished(old)])
    assert ch.kind is ChangeKind.NEW


def test_an_entry_without_a_link_retitled_is_the_item_that_vanished():
    """Keyed by its title and date (it has no link), its key moves with every fix."""
    old, new = entry(LAUCH[0], None), entry(LAUNCH[0], None)
    [ch] = diff([new], {}, {}, gone=[vanished(old)])
    assert (ch.kind, ch.item_id) == (ChangeKind.CHANGED, item_id("feed", old.key))


def test_a_retitling_that_could_be_either_of_two_is_neither():
    """Two vanished items alike, or two new entries alike to one: no guess, all new."""
    first = entry(*LAUCH)
    second = entry(LAUCH[0] + " today", DETAIL + "second/")
    assert kinds(diff([entry(*LAUNCH)], {}, {}, gone=[vanished(first), vanished(second)])) == [
        ("new", LAUNCH[0])]
    twin = entry(LAUNCH[0] + " (2)", DETAIL + "twin/")
    assert kinds(diff([entry(*LAUNCH), twin], {}, {}, gone=[vanished(first)])) == [
        ("new", LAUNCH[0]), ("new", LAUNCH[0] + " (2)")]


TEAM = NotifierConfig("team", NotifierKind.CONSOLE, rules=("press-release",))
EVERYTHING = NotifierConfig("all", NotifierKind.CONSOLE)
EDITS = NotifierConfig("edits", NotifierKind.CONSOLE, on=("new", "changed"))
OPS = NotifierConfig("ops", NotifierKind.CONSOLE, on=(), events=("source.failing",))


def _changes():
    rules = [RuleConfig("press-release", categories=("Press Release",))]
    pr, other = item(1, category="Press Release", published="2020-05-02T00:00:00Z"), item(2)
    known = item(3)
    edited = replace(known, title="Item 3 edited", content_hash=f"{HASH_VERSION}:x")
    return diff([pr, other, edited], {known.key: stored(known)}, {}, rules)


def test_notifications_follow_rules_and_events():
    notes = plan_notifications(_changes(), [TEAM, EVERYTHING, EDITS, OPS], baseline=False,
                               first_run=FirstRun())
    got = sorted((n.notifier, n.event, n.item_id[-6:]) for n in notes)
    pr_id, other_id, edited_id = (c.item_id[-6:] for c in _changes())
    assert got == sorted([
        ("team", "item.new", pr_id),
        ("all", "item.new", pr_id), ("all", "item.new", other_id),
        ("edits", "item.new", pr_id), ("edits", "item.new", other_id),
        ("edits", "item.changed", edited_id),
    ])
    # ids are derived from (notifier, item, event, ref): the same event never gets two ids
    again = plan_notifications(_changes(), [TEAM], baseline=False, first_run=FirstRun())
    assert [n.id for n in again] == [n.id for n in notes if n.notifier == "team"]
    assert again[0].id == notification_id("team", again[0].item_id, "item.new")


def test_an_edit_is_one_notification_for_each_way_an_item_goes_not_for_each_content():
    """An edit is named by the content it left and the content it made: an edit undone
    (B, then C, then B again) is told — the item went back — while a page flapping
    between two versions (two servers behind a balancer) tells each way once, not at
    every poll."""
    base = item(3)
    a, b, c = (replace(base, title=f"Item 3 {t}", content_hash=f"{HASH_VERSION}:{t}")
               for t in "abc")

    def edit(before, after):
        [note] = plan_notifications(diff([after], {base.key: stored(before)}, {}, []), [EDITS],
                                    baseline=False, first_run=FirstRun())
        assert note.event == "item.changed"
        return note.ref, note.id

    told = [edit(a, b), edit(b, c), edit(c, b)]
    assert [ref for ref, _ in told] == [f"{HASH_VERSION}:{x}>{HASH_VERSION}:{y}"
                                        for x, y in ("ab", "bc", "cb")]
    assert len({i for _, i in told}) == 3  # three rows: the undo is not the first edit again
    assert edit(a, b) == told[0]  # a flap back to b: the same row, already queued or sent


LAUNCHES = NotifierConfig("launches", NotifierKind.CONSOLE, rules=("project-launch",))
LAUNCH_EDITS = NotifierConfig("launch-edits", NotifierKind.CONSOLE, rules=("project-launch",),
                              on=("new", "changed"))
LAUNCH_RULE = RuleConfig("project-launch", match=re.compile(r"(?i)\blaunch(es|ed)?\b"))


@pytest.mark.parametrize(("before", "notifier", "told"), [
    # "lauched" fixed: news to whoever hears of launches, which it was not before
    ((), LAUNCHES, ["item.new"]),
    ((), LAUNCH_EDITS, ["item.new"]),  # news once, not an update of what it never heard
    ((), EDITS, ["item.changed"]),  # every item's edits: heard of it when it came
    (("project-launch",), LAUNCHES, []),  # told of it as a launch already
    (("project-launch",), LAUNCH_EDITS, ["item.changed"]),
])
def test_an_edit_that_brings_an_item_into_a_notifiers_rules_is_news_to_it(before, notifier,
                                                                         told):
    """A typo in the very word a rule looks for ("lauched"): the item matched no rule and
    went to no one who follows launches. Fixed, it is a launch they never heard of — told
    as news to them, once; to a notifier of every item's edits, an edit as ever."""
    old = item(1, title="Second phase of SMMIG lauched in Accra")
    fixed = replace(old, title="Second phase of SMMIG launched in Accra",
                    content_hash=f"{HASH_VERSION}:fixed")
    known = replace(stored(old), rules_json=json.dumps(list(before)))
    [ch] = diff([fixed], {old.key: known}, {}, [LAUNCH_RULE])
    notes = plan_notifications([ch], [notifier], baseline=False, first_run=FirstRun())
    assert [n.event for n in notes] == told
    if told == ["item.new"]:  # the id its news would have had: never twice
        assert notes[0].id == notification_id(notifier.name, ch.item_id, "item.new")


def test_an_old_item_brought_into_a_rule_by_an_edit_is_no_news_past_max_age():
    old = item(1, title="Project lauched", published="2020-01-01T00:00:00Z")
    fixed = replace(old, title="Project launched", content_hash=f"{HASH_VERSION}:fixed")
    [ch] = diff([fixed], {old.key: stored(old)}, {}, [LAUNCH_RULE])
    now = datetime(2020, 5, 28, tzinfo=UTC)
    assert plan_notifications([ch], [LAUNCHES], baseline=False, first_run=FirstRun(),
                              now=now, max_age=30 * 86400) == []
    assert len(plan_notifications([ch], [LAUNCHES], baseline=False, first_run=FirstRun(),
                                  now=now, max_age=365 * 86400)) == 1


def test_notifications_are_planned_oldest_first_and_one_dates_items_bottom_up():
    """Sources list the newest first: what shares a date (a listing's day, a feed with
    no dates) is read bottom up, so the outbox says it in the order it happened."""
    day = "2020-05-13T22:00:00Z"
    listed = [item(1, published=day), item(2, published="2020-05-14T22:00:00Z"),
              item(3, published=day), item(4, published="2020-05-01T00:00:00Z"),
              item(5, published=day)]
    known = item(6, published=day)
    changes = diff([*listed, replace(known, title="Item 6 edited", content_hash=f"{HASH_VERSION}:x")],
                   {known.key: stored(known)}, {})
    notes = plan_notifications(changes, [EDITS], baseline=False, first_run=FirstRun())
    titles = {c.item_id: c.item.title for c in changes}
    assert [titles[n.item_id] for n in notes] == [
        "Item 4", "Item 6 edited", "Item 5", "Item 3", "Item 1", "Item 2"]
    latest = plan_notifications(changes, [EDITS], baseline=True,
                                first_run=FirstRun(FirstRunMode.LATEST, 3))
    assert [titles[n.item_id] for n in latest] == ["Item 3", "Item 1", "Item 2"]


@pytest.mark.parametrize(("first_run", "expected"), [
    (FirstRun(FirstRunMode.BASELINE), []),
    (FirstRun(FirstRunMode.ALL), ["Item 1", "Item 2"]),
    (FirstRun(FirstRunMode.LATEST, 1), ["Item 1"]),  # the newest by published date
])
def test_first_run(first_run, expected):
    notes = plan_notifications(_changes(), [EVERYTHING], baseline=True, first_run=first_run)
    titles = {c.item_id: c.item.title for c in _changes()}
    assert sorted(titles[n.item_id] for n in notes) == expected


def test_new_items_dated_before_max_age_are_stored_not_told():
    """An old article that resurfaces, or a feed whose ids all changed, is no news: with
    `max_age`, what is new to the store but dated longer ago is stored and not notified.
    Edits, undated items (first seen now) and a first poll's own first_run are as before."""
    now = datetime(2020, 6, 1, 12, 0, tzinfo=UTC)
    fresh = item(1, published="2020-05-30T00:00:00Z")
    edge = item(2, published="2020-05-02T12:00:00Z")  # exactly 30 days: still news
    old = item(3, published="2020-05-02T11:59:59Z")
    undated = replace(item(4, published="2020-06-01T12:00:00Z"), date_flag=DateFlag.MISSING)
    known = item(5, published="2019-01-01T00:00:00Z")
    edited = replace(known, title="Item 5 edited", content_hash=f"{HASH_VERSION}:x")
    changes = diff([fresh, edge, old, undated, edited], {known.key: stored(known)}, {})
    titles = {c.item_id: c.item.title for c in changes}
    stale = old_news(changes, 30 * 86400, now)
    assert sorted(titles[i] for i in stale) == ["Item 3"]
    assert old_news(changes, None, now) == frozenset()
    notes = plan_notifications(changes, [EDITS], baseline=False, first_run=FirstRun(), now=now,
                               old=stale)
    assert [titles[n.item_id] for n in notes] == ["Item 5 edited", "Item 2", "Item 1", "Item 4"]
    # a first poll tells what first_run says, whatever the dates
    first = plan_notifications(changes, [EDITS], baseline=True,
                               first_run=FirstRun(FirstRunMode.ALL), now=now, old=stale)
    assert sorted(titles[n.item_id] for n in first) == ["Item 1", "Item 2", "Item 3", "Item 4"]


def test_a_repoll_with_nothing_seen_before_has_no_overlap():
    """A feed shows its newest entries only: when a re-poll finds none it stored before,
    the window moved past the last poll's, and what came and went between was missed."""
    a, b, c = item(1), item(2), item(3)
    assert no_overlap(diff([a, b], {c.key: stored(c)}, {}), same=0)  # c fell out of it
    assert not no_overlap(diff([a, b, c], {c.key: stored(c)}, {}), same=0)
    assert not no_overlap(diff([a, b], {}, {}), same=1)  # an entry whose raw form is stored
    assert not no_overlap(diff([a], {}, {}), same=0)  # one entry at a time tells nothing


def test_a_watched_pages_edit_is_told_to_the_notifiers_of_news():
    """A page watched whole (kind = "page") has nothing to tell but its edits."""
    known = item(1)
    edited = replace(known, title="Item 1 edited", content_hash=f"{HASH_VERSION}:x")
    changes = diff([edited], {known.key: stored(known)}, {})
    notifiers = [NotifierConfig("news", NotifierKind.CONSOLE),  # on = ("new",)
                 NotifierConfig("edits", NotifierKind.CONSOLE, on=("changed",))]
    for edits_are_news, told in ((False, ["edits"]), (True, ["news", "edits"])):
        notes = plan_notifications(changes, notifiers, baseline=False, first_run=FirstRun(),
                                   edits_are_news=edits_are_news)
        assert [(n.notifier, n.event) for n in notes] == [(t, "item.changed") for t in told]


def test_edits_found_under_changed_settings_are_stored_not_told():
    """A source read under other settings than its last read (a selector added, `remove`,
    category_from_title) differs from what it stored by the settings, not by news: its
    edits are quiet; what is new is still news."""
    known, fresh = item(1), item(2)
    edited = replace(known, title="Item 1 edited", content_hash=f"{HASH_VERSION}:x")
    changes = diff([edited, fresh], {known.key: stored(known)}, {})
    for reread, told in ((False, ["Item 2", "Item 1 edited"]), (True, ["Item 2"])):
        untold = untold_edits(changes, reread=reread)
        assert (untold.reread, untold.cut) == ((1 if reread else 0), 0)
        notes = plan_notifications(changes, [EDITS], baseline=False, first_run=FirstRun(),
                                   old=untold.ids, edits_are_news=True)
        assert [c.item.title for n in notes for c in changes if c.item_id == n.item_id] == told


def two_edits(summary: str, edited: tuple[str, str]) -> tuple[list[Change], dict]:
    """Items 1 and 2, stored with `summary`, edited to the two `edited` summaries: the
    poll's changes, and the stored fields by item id (as Known.texts holds them)."""
    known = [replace(item(n), summary=summary) for n in (1, 2)]
    changes = diff([replace(k, summary=e, content_hash=f"{HASH_VERSION}:{k.key}")
                    for k, e in zip(known, edited, strict=True)],
                   {k.key: stored(k) for k in known}, {})
    before = {c.item_id: {f: getattr(k, f) for f in VERSIONED}
              for c, k in zip(changes, known, strict=True)}
    return changes, before


def test_edits_that_take_words_out_only_are_quiet_where_only_added_ones_are_told():
    """`edits = "added"`: an edit is news when it put words in (`edits.adds_words`)."""
    changes, before = two_edits("one two three", ("one two three four", "one three"))
    assert [c.item.summary for c in changes if c.item_id in taken_out_only(changes, before)] == [
        "one three"]
    untold = untold_edits(changes, reread=False, before=before, added=True)
    assert (untold.ids, untold.cut) == (taken_out_only(changes, before), 1)
    notes = plan_notifications(changes, [EDITS], baseline=False, first_run=FirstRun(),
                               old=untold.ids)
    assert [n.item_id for n in notes] == [changes[0].item_id]
    # read under changed settings, every edit is theirs, whatever it put in
    assert untold_edits(changes, reread=True, before=before).ids == {
        c.item_id for c in changes}


@pytest.mark.parametrize(("before", "after", "quiet"), [
    ('<p>one two</p>', '<p>one\n   <b>two</b></p>', True),  # re-rendered: the same words
    ('<p>one two</p>', '<p>one&nbsp;two</p>', True),
    ('<p>one two</p>', '<p>one two three</p>', False),
    ('<p><a href="https://x.example/v1.pdf">one</a></p>',
     '<p><a href="https://x.example/v2.pdf">one</a></p>', False),  # a link moved
])
def test_an_edit_of_markup_only_is_quiet_where_every_edit_is_told(before, after, quiet):
    """A watched page's edits, `edits = "all"`: one that changes no word and no link's
    target is stored, not told (`edits.reads_otherwise`)."""
    known = replace(item(1), content=before)
    [change] = diff([replace(known, content=after, content_hash=f"{HASH_VERSION}:x")],
                    {known.key: stored(known)}, {})
    untold = untold_edits([change], reread=False,
                          before={change.item_id: {f: getattr(known, f) for f in VERSIONED}})
    assert (bool(untold.ids), untold.markup, untold.cut) == (quiet, int(quiet), 0)


def test_edits_whose_added_words_miss_edits_match_are_quiet():
    changes, before = two_edits("calls open", ("calls open: border guards",
                                               "calls open: catering"))
    untold = untold_edits(changes, reread=False, before=before, match=re.compile("border"))
    assert (untold.ids, untold.unmatched, untold.cut) == ({changes[1].item_id}, 1, 0)
