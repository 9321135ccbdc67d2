"""How `probe` and `init` see a listing page's next page: pure functions over HTML."""

from __future__ import annotations

import pytest

from harvester.detect import pages_block, pagination

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
