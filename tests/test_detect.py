"""How `probe` and `init` see a listing page — its entries, its next page: pure
functions over HTML."""

from __future__ import annotations

import pytest

from harvester.dates import iso_utc, parse_date
from harvester.detect import detect, pages_block, pagination
from harvester.parse.listing import extract

from .conftest import NOW

URL = "https://news.example/news/"


@pytest.mark.parametrize(("links", "pages"), [
    ('<a href="/news/?page=2">2</a><a href="/news/?page=3">3</a>', {"param": "page"}),
    ('<a href="?p=2&amp;lang=en">2</a>', {"param": "p"}),
    ('<a href="/other/?page=2">2</a><a rel="next nofollow" href="/news/2">›</a>',
     {"next": 'a[rel~="next"][href]'}),
    ('<a class="btn" href="/news/older">Older posts</a>',
     {"next": "xpath://a[@href][normalize-space()='Older posts']"}),
    ('<a href="/news/seite-2"> Weiter </a>', {"next": "xpath://a[@href][normalize-space()='Weiter']"}),
    ('<a href="/news/?page=3">3</a><a href="/about">Next steps for migration policy</a>', {}),
    ("", {}),
])
def test_pagination_says_how_a_page_links_to_the_next(links, pages):
    body = f"<html><body><div class='news'>{links}</div></body></html>".encode()
    assert pagination(body, URL) == pages


def test_the_pages_block_is_toml_the_config_reads():
    import tomllib

    block = pages_block({"next": "xpath://a[@href][normalize-space()='Older posts']"})
    assert tomllib.loads(block) == {
        "sources": {"pages": {"next": "xpath://a[@href][normalize-space()='Older posts']",
                              "max": 5}}}
    assert pages_block({}) == ""


@pytest.mark.parametrize(("spelling", "first"), [
    ("{d} May 2020", "2020-05-01T22:00:00Z"),
    ("May {d}th, 2020", "2020-05-01T22:00:00Z"),  # not seen as a date before: no entries
    ("{d}th May 2020", "2020-05-01T22:00:00Z"),
    ("2020/05/{d:02d}", "2020-05-01T22:00:00Z"),
    ("{d:02d}-05-2020", "2020-05-01T22:00:00Z"),
    ("{d} days ago", "2020-05-26T08:00:00Z"),  # back from the poll's clock (NOW)
    ("vor {d} Tagen", "2020-05-26T08:00:00Z"),
])
def test_entries_are_found_by_their_dates_as_pages_write_them(spelling, first):
    posts = "".join(f'<li class="post"><a href="/p/{d}">Post {d}</a> '
                    f'<span class="when">{spelling.format(d=d)}</span></li>'
                    for d in range(2, 10))
    body = f"<html><body><nav><a href='/'>Home</a></nav><ul>{posts}</ul></body></html>".encode()
    found = detect(body, URL)
    assert found is not None and found.date == "xpath:./span[@class='when']"
    entries = extract(body, url=URL, select=found).document.entries
    assert [e.title for e in entries] == [f"Post {d}" for d in range(2, 10)]
    assert iso_utc(parse_date(entries[0].published, "Europe/Vienna", now=NOW)) == first
