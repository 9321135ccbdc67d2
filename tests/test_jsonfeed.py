"""JSON Feed 1.0/1.1: the harvester's own reader (feedparser has none)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harvester.errors import ParseError
from harvester.parse import parse_feed

from .test_normalise import golden_items

URL = "http://news.example/feed.json"


def test_the_json_feed_gives_the_same_items_as_the_rss_feed():
    """The ICMPD feed as JSON Feed 1.1 normalises to exactly the RSS items; only the
    identity differs, because JSON Feed items carry a mandatory id."""
    rss = golden_items("icmpd-2020-05-b.rss")
    jf = golden_items("icmpd-2020-05-b-jsonfeed.json")
    strip = lambda items: [{k: v for k, v in it.items() if k not in ("key", "guid")}  # noqa: E731
                           for it in items]
    assert len(jf) == 10 and strip(jf) == strip(rss)
    assert all(it["key"].startswith("guid:https://www.icmpd.org//news-centre/") for it in jf)


def test_json_feed_1_0_with_numeric_ids_author_object_and_text_content():
    body = json.dumps({
        "version": "https://jsonfeed.org/version/1",
        "title": "Blog", "author": {"name": "Press Office"},
        "items": [
            {"id": 42, "url": "http://news.example/42", "title": "Launch",
             "content_text": "One.\n\nTwo <b>", "date_published": "2020-05-27T10:00:00+02:00",
             "tags": ["Press Release", 7, None]},
            {"id": "x", "external_url": "http://elsewhere.example/", "title": None,
             "summary": "no title", "authors": [{"name": "A"}, {"name": "B"}, "junk"]},
            "not an item",
        ],
    }).encode()
    doc = parse_feed(body, url=URL, content_type="application/feed+json")
    a, b = doc.entries
    assert doc.parser == "jsonfeed" and doc.title == "Blog"
    assert (a.guid, a.link, a.title, a.published) == ("42", "http://news.example/42", "Launch",
                                                       "2020-05-27T10:00:00+02:00")
    assert a.content == "<p>One.</p><p>Two &lt;b&gt;</p>"
    assert a.categories == ("Press Release",) and a.author == "Press Office"
    assert (b.link, b.title, b.summary, b.author) == ("http://elsewhere.example/", None,
                                                      "no title", "A, B")


@pytest.mark.parametrize("body,ctype,message", [
    (b'{"error": "rate limited", "code": 429}', "application/json",
     "not a feed: a JSON document that is not a JSON Feed (no jsonfeed.org version)"),
    (b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}', None,
     "not a feed: JSON Feed without an items list"),
    (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "application/feed+json",
     "not a feed: invalid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json", "not a feed: JSON nested too deeply"),
    (b'["https://jsonfeed.org/version/1.1"]', "application/json",
     "not a feed: a JSON document that is not a JSON Feed"),
])
def test_json_that_is_not_a_json_feed_is_an_error(body, ctype, message):
    with pytest.raises(ParseError) as e:
        parse_feed(body, url=URL, content_type=ctype)
    assert str(e.value).startswith(message)


@pytest.mark.parametrize("items,refused", [(8, False), (9, True)])
def test_a_json_document_of_too_many_objects_is_refused_before_it_is_built(
        items, refused, monkeypatch):
    """json.loads would build every object first (3 million empty items fit the body cap:
    7 s and 600 MB), so the objects and arrays are counted before: the document, its items
    list and 8 items make 10, the cap here; one more is refused, naming why."""
    import harvester.parse.jsonfeed as jsonfeed

    monkeypatch.setattr(jsonfeed, "MAX_CONTAINERS", 10)
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [
        {"id": str(i), "content_text": "x"} for i in range(items)]}).encode()
    if not refused:
        assert len(parse_feed(body, url=URL, content_type="application/feed+json").entries) == 8
        return
    with pytest.raises(ParseError) as e:
        parse_feed(body, url=URL, content_type="application/feed+json")
    assert str(e.value) == ("not read: a JSON document of more than 10 objects and arrays")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2**70) | st.floats()
    | st.sampled_from(["", " ", "x", "https://e.org/a", "/rel", "2020-05-26T10:00:00Z",
                       "<p>hi</p>", "https://jsonfeed.org/version/1.1"]) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["version", "title", "items", "id", "url", "external_url", "content_html",
         "content_text", "summary", "date_published", "date_modified", "author", "authors",
         "name", "tags", "language", "home_page_url", "x"]), inner, max_size=5),
    max_leaves=12)


_KEYS = st.sampled_from(["id", "url", "external_url", "title", "content_html", "content_text",
                         "summary", "date_published", "date_modified", "author", "authors",
                         "tags", "language", "x"])


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({"version": st.just("https://jsonfeed.org/version/1.1")},
                             optional={"title": _JSON, "author": _JSON, "authors": _JSON,
                                       "language": _JSON, "items": st.one_of(_JSON, st.lists(
                                           st.dictionaries(_KEYS, _JSON, max_size=6),
                                           max_size=3))}))
def test_any_json_feed_reads_or_is_one_parse_error(doc):
    """Whatever a JSON Feed's fields hold — a number where text belongs, a list for an
    object, nulls, nesting — it reads into entries or fails as a ParseError naming why,
    never with a TypeError that would fail the poll as a harvester bug."""
    body = json.dumps(doc, allow_nan=True).encode()
    try:
        parsed = parse_feed(body, url=URL, content_type="application/feed+json")
    except ParseError:
        return
    for e in parsed.entries:
        assert all(isinstance(v, str | None) for v in (e.title, e.link, e.guid, e.summary,
                                                         e.content, e.published, e.author))
