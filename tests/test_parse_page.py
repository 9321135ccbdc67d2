"""A watched page's text as parse_page reads it: what `select.ignore` cuts, and what it
leaves (the markup around the text it cut, links, preformatted text)."""

from __future__ import annotations

import re

import pytest

from harvester.parse.page import parse_page

URL = "https://www.icmpd.org/about-us/member-states"


def content(body: str, *ignore: str) -> str:
    doc = parse_page(f"<html><body><main>{body}</main></body></html>".encode(), URL, URL,
                     content_type="text/html; charset=utf-8", content="main",
                     ignore=tuple(re.compile(p) for p in ignore))
    [entry] = doc.entries
    assert entry.content is not None
    return entry.content


@pytest.mark.parametrize(("body", "ignore", "watched"), [
    # within one run of text: only the match goes, the rest of the paragraph stays as it was
    ('<p>Members: <a href="/at">Austria</a>. Read 1204 times</p>', [r"Read \d+ times"],
     '<main><p>Members: <a href="/at">Austria</a>. </p></main>'),
    # inside a link: the link stays, its words go
    ('<p>See <a href="/c">3 comments</a> below</p>', [r"\d+ comments"],
     '<main><p>See <a href="/c"></a> below</p></main>'),
    # across markup: the innermost element holding the whole match is read as plain text,
    # so "Last updated" and its date go together; the paragraph beside it is untouched
    ('<p><b>18 states</b> are members.</p><p>Last updated <time>24 Nov 2026</time>. '
     'Print</p>', [r"Last updated \d+ \w+ \d{4}\."],
     '<main><p><b>18 states</b> are members.</p><p> Print</p></main>'),
    # the page's line breaks and indents read as one space, as a browser shows them
    ('<p>Read\n      1204\n   times</p>', [r"Read \d+ times"], "<main><p></p></main>"),
    # every pattern, each match
    ("<p>Read 1 times, read 2 times. Page generated in 0.03 s</p>",
     [r"(?i)read \d+ times,? ?", r"Page generated in [\d.]+ s"], "<main><p>. </p></main>"),
    # preformatted text keeps its spacing: a pattern with one space does not span its lines
    ("<pre>Read\n  7 times</pre>", [r"Read \d+ times"], "<main><pre>Read\n  7 times</pre></main>"),
    # …but what follows it is the page's text again
    ("<pre>Read\n  7 times</pre>Read\n 8 times", [r"Read \d+ times"],
     "<main><pre>Read\n  7 times</pre></main>"),
    # nothing matched: the page as read without `ignore`
    ("<p>Austria, Bulgaria</p>", [r"Read \d+ times"], "<main><p>Austria, Bulgaria</p></main>"),
])
def test_ignore_cuts_the_matched_text_from_the_watched_block(body, ignore, watched):
    assert content(body, *ignore) == watched


def test_without_ignore_the_block_keeps_its_own_spacing():
    assert content("<p>Read\n  7 times</p>") == "<main><p>Read\n  7 times</p></main>"


def test_ignore_cuts_from_the_pages_title_and_description_too():
    """A title that counts ("Tenders (3 open)") would make every visit an edit: what
    `ignore` matches goes from the title and the meta description as from the block."""
    body = (b'<html><head><title>Tenders (3 open) | ICMPD</title><meta name="description" '
            b'content="Calls open today, 24 Nov 2026: 3"></head><body><main><p>Call 1</p>'
            b'</main></body></html>')
    doc = parse_page(body, URL, URL, content_type="text/html", content="main",
                     ignore=(re.compile(r" ?\(\d+ open\)"), re.compile(r", \d+ \w+ \d{4}: \d+")))
    [entry] = doc.entries
    assert (entry.title, entry.summary, doc.title) == (
        "Tenders | ICMPD", "Calls open today", "Tenders | ICMPD")
