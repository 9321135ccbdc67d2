"""Listing pages rebuilt from the ICMPD seeds, read by configured selectors."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harvester.dates import iso_utc, parse_date
from harvester.normalise import Context, normalise
from harvester.parse.listing import Selectors, extract

from .conftest import LISTINGS

NOW = datetime(2022, 4, 10, 8, 0, tzinfo=UTC)  # just after the newest listing entry

ENTRIES = json.loads((LISTINGS / "entries.json").read_text("utf-8"))
URL = "https://www.icmpd.org/news-centre/?page=1"
ICMPD = Selectors(item="div.news-item", title="h3", link="h3 a", date=".date",
                  category=".category", summary=".teaser", next="a.next")
PAGES = [(snap, n) for snap, count in (("a", 5), ("b", 5)) for n in range(1, count + 1)]


@pytest.mark.parametrize(("snap", "number"), PAGES, ids=[f"{s}{n}" for s, n in PAGES])
def test_every_page_gives_the_seed_entries(snap, number):
    body = (LISTINGS / f"news-{snap}-page-{number}.html").read_bytes()
    listing = extract(body, url=URL, select=ICMPD)
    expected = ENTRIES[snap][(number - 1) * 10 : number * 10]
    ctx = Context("icmpd-news", listing.document.base_url, NOW, "Europe/Vienna",
                  date_formats=("%d %B %Y",))
    items = [normalise(e, ctx) for e in listing.document.entries]
    assert listing.dropped == 0
    assert [it.title for it in items] == [e["title"] for e in expected]
    assert [it.category for it in items] == [e["category"] for e in expected]
    assert [it.url for it in items] == ["https://www.icmpd.org" + e["path"] for e in expected]
    assert [it.published for it in items] == [
        iso_utc(parse_date(e["date"], "Europe/Vienna")) for e in expected]
    # the teaser is printed twice in the page; the summary carries it once
    assert [it.summary for it in items] == [e["teaser"] for e in expected]
    last = number == 5
    assert listing.next_url == (None if last else
                                f"https://www.icmpd.org/news-centre/?page={number + 1}")


def test_seed_dates_read_in_the_sources_zone():
    first = extract((LISTINGS / "news-b-page-1.html").read_bytes(), url=URL, select=ICMPD)
    entry = first.document.entries[0]
    assert entry.title == "CADRE: 3rd Train-the-Trainers Session for Return Counsellors"
    assert entry.published == "08 April 2022"
    assert iso_utc(parse_date(entry.published, "Europe/Vienna")) == "2022-04-07T22:00:00Z"
    assert entry.link == ("https://www.icmpd.org/news-centre/news-detail/"
                          "cadre-3rd-train-the-trainers-session-for-return-counsellors/")


def test_entries_without_title_or_link_are_dropped_and_counted():
    body = (b'<html><body><div class="news-item"><h3><a href="/a">A</a></h3></div>'
            b'<div class="news-item"><h3>No link</h3></div>'
            b'<div class="news-item"><h3><a href="/c"> </a></h3></div></body></html>')
    listing = extract(body, url="https://e.org/news", select=ICMPD)
    assert [e.title for e in listing.document.entries] == ["A"]
    assert listing.dropped == 2 and listing.next_url is None


def test_xpath_selectors_and_a_link_on_the_item_itself():
    body = (LISTINGS / "other-markup.html").read_bytes()
    select = Selectors(item="xpath://table//tr", title="strong", link="xpath:.//a",
                       date="small")
    listing = extract(body, url="https://www.icmpd.org/latest", select=select)
    expected = ENTRIES["a"][:10]
    assert [e.title for e in listing.document.entries] == [e["title"] for e in expected]
    assert [e.link for e in listing.document.entries] == [
        "https://www.icmpd.org" + e["path"] for e in expected]


@pytest.mark.parametrize(("text", "expected"), [
    ("08 April 2022", "2022-04-07T22:00:00Z"),
    ("29 de abril de 2016", "2016-04-28T22:00:00Z"),   # Portuguese
    ("5 de diciembre de 2019", "2019-12-04T23:00:00Z"),  # Spanish
    ("3. März 2021", "2021-03-02T23:00:00Z"),           # German
    ("12 janvier 2020", "2020-01-11T23:00:00Z"),        # French
    ("08.12.2021", "2021-12-07T23:00:00Z"),             # numeric, day first
    ("April 8, 2022", "2022-04-07T22:00:00Z"),
])
def test_listing_dates_in_the_pages_languages(text, expected):
    assert iso_utc(parse_date(text, "Europe/Vienna", ("%d %B %Y",))) == expected


def test_an_empty_or_redesigned_page():
    from harvester.errors import ParseError

    with pytest.raises(ParseError, match="empty page"):
        extract(b"  ", url=URL, select=ICMPD)
    redesigned = extract(b"<html><body><article><h2>New look</h2></article></body></html>",
                         url=URL, select=ICMPD)
    assert redesigned.document.entries == () and redesigned.dropped == 0


PAGE_1 = (LISTINGS / "news-a-page-1.html").read_bytes()


@pytest.mark.parametrize(("field", "expr", "problem"), [
    ("item", "xpath:count(//div[@class='news-item'])", "gives a number (10.0)"),
    ("item", "xpath://div[@class='news-item']/@class",
     "selects text or attributes, not elements: it must select one element per entry"),
    ("summary", "xpath:boolean(./p)", "gives a truth value (True)"),
    ("date", "xpath:string-length(./p[@class='date'])", "gives a number (13.0)"),
    ("next", "xpath:count(//a)", "gives a number (17.0)"),
])
def test_an_xpath_that_gives_no_elements_or_text_is_named(field, expr, problem):
    """count(), boolean() and the like are XPath, and `check` takes them; what they give
    holds no entry. Said with the key and the expression, not as a TypeError."""
    from harvester.errors import ParseError

    select = replace(ICMPD, **{field: expr})
    key = "pages.next" if field == "next" else f"select.{field}"
    with pytest.raises(ParseError) as e:
        extract(PAGE_1, url=URL, select=select, source="icmpd-news")
    if "element per entry" in problem:
        assert str(e.value) == f"select.item {expr!r} {problem}"
    else:
        assert str(e.value) == f"{key} {expr!r} {problem}, not elements or text"
    assert (e.value.source, e.value.url) == ("icmpd-news", URL)


def test_an_xpath_giving_text_or_an_attribute_reads_as_the_element_would():
    """text(), @href and string() give text, which a field reads as it would the element's."""
    select = replace(ICMPD, title="xpath:./h3/a/text()", link="xpath:./h3/a/@href",
                     date="xpath:string(./p[@class='date'])")
    assert extract(PAGE_1, url=URL, select=select).document == extract(
        PAGE_1, url=URL, select=ICMPD).document


_markup = st.lists(st.sampled_from([
    "<li>", "</li>", "<a href='/x'>", "<a href='javascript:1'>", "</a>", "<ul>", "</ul>",
    "<span class='date'>", "</span>", "<!DOCTYPE html [<!ENTITY e 'x'>]>", "&e;", "&amp;",
    "<base href='//evil/'>", "<h3>", "</h3>", "\x00", "é", "<script>", "</script>", "<",
    "]]>", "<![CDATA[", "<?xml version='1.0'?>", "<meta charset='utf-16'>", " ", "text",
])).map("".join)


@given(st.one_of(_markup, st.text(), st.binary().map(lambda b: b.decode("latin-1"))))
def test_the_listing_extractor_never_raises_on_arbitrary_html(page):
    from hypothesis import assume

    from harvester.errors import ParseError

    select = Selectors(item="li", title="a", link="a", date=".date", next="a.next")
    try:
        listing = extract(page.encode("utf-8", "surrogatepass"), url=URL, select=select)
    except ParseError:
        assume(False)
        return
    for e in listing.document.entries:
        assert e.title and e.link


def test_selectors_are_compiled_once_per_thread():
    """Building a CSS selector costs more than running it; a page of 50 entries runs five
    of them per entry. Each thread keeps its own compiled copies."""
    import threading

    from harvester.parse import listing

    here = listing._compile("div.news-item h3")
    assert listing._compile("div.news-item h3") is here
    there = []
    t = threading.Thread(target=lambda: there.append(listing._compile("div.news-item h3")))
    t.start()
    t.join()
    assert there[0] is not here and there[0].path == here.path
    for i in range(listing._COMPILED_MAX + 2):  # auto-detection's many candidates: bounded
        listing._compile(f"li.c{i}")
    assert len(listing._compiled.cache) <= listing._COMPILED_MAX + 1
