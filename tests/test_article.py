"""`follow = true`: what article.main_html keeps of an article page, and what it drops."""

from __future__ import annotations

import pytest

from harvester.article import main_html
from harvester.errors import ParseError

URL = "https://www.icmpd.org/news-centre/news-detail/kyiv/"
TEXT = ("On 7 May 2020 in Kyiv, ICMPD organized a kick-off meeting on business processes "
        "analysis and optimisation with the State Border Guard Service of Ukraine.")


def page(body: str) -> bytes:
    return f"<html><head><title>Kyiv</title></head><body>{body}</body></html>".encode()


def test_an_aspnet_page_wrapped_in_one_form_gives_its_article():
    """ASP.NET Web Forms wraps the whole page in one <form>: dropping forms as noise
    dropped the article with it."""
    body = page('<form id="aspnetForm" method="post" action="./News.aspx">'
                '<input type="hidden" name="__VIEWSTATE" value="dDwtMTA4NzE">'
                '<div class="menu"><a href="/">Home</a> <a href="/news">News</a></div>'
                f'<div id="content"><h1>Kick-off in Kyiv</h1><p>{TEXT}</p><p>{TEXT}</p></div>'
                "</form>")
    assert main_html(body, URL) == (
        f'<div id="content"><h1>Kick-off in Kyiv</h1><p>{TEXT}</p><p>{TEXT}</p></div>')


def test_a_comment_or_search_form_beside_the_article_is_still_dropped():
    body = page(f'<form action="/search"><p>Search the news centre</p><input name="q"></form>'
                f"<article><p>{TEXT}</p>"
                '<form class="comment" method="post"><p>Leave a reply. Your email address will '
                'not be published. Required fields are marked.</p><textarea></textarea></form>'
                "</article>")
    assert main_html(body, URL, "article") == f"<article><p>{TEXT}</p></article>"


def test_an_articles_own_header_stays_and_the_sites_goes():
    body = page('<header><a href="/">ICMPD</a> Menu</header>'
                '<article><header><h1>Kick-off in Kyiv</h1><p class="date">13 May 2020</p>'
                f"</header><p>{TEXT}</p><footer>Tags: Ukraine</footer></article>"
                "<footer>© ICMPD</footer>")
    assert main_html(body, URL, "article") == (
        '<article><header><h1>Kick-off in Kyiv</h1><p class="date">13 May 2020</p></header>'
        f"<p>{TEXT}</p><footer>Tags: Ukraine</footer></article>")


def test_a_page_with_no_paragraphs_says_so():
    with pytest.raises(ParseError, match="found no paragraphs of article text"):
        main_html(page("<div>just a menu</div>"), URL)
