"""The Atom feed of a selection: its title and id say what was selected, in text XML
can carry."""

from __future__ import annotations

import feedparser
import pytest

from harvester.atom import atom_feed, selection


@pytest.mark.parametrize(("source", "rule", "search", "title", "feed_id"), [
    (None, None, None, "harvester: all items", "urn:harvester:items"),
    ("icmpd-rss", "press-release", None, "harvester: rule press-release, source icmpd-rss",
     "urn:harvester:items?rule=press-release&source=icmpd-rss"),
    (None, None, "Budapest Process", 'harvester: search "Budapest Process"',
     "urn:harvester:items?q=Budapest+Process"),
    # from a query string (/feed.atom?rule=%00…): what XML cannot carry is left out
    (None, "a\x00b\x1b", None, "harvester: rule ab", "urn:harvester:items?rule=a%00b%1B"),
])
def test_selection_names_the_feed(source, rule, search, title, feed_id):
    assert selection(source, rule, search) == (title, feed_id)
    parsed = feedparser.parse(atom_feed([], title=title, feed_id=feed_id))
    assert not parsed.bozo and parsed.feed.title == title and parsed.feed.id == feed_id
