"""Untrusted markup to plain text, and HTML to a sanitised subset.

Titles, categories and summaries are plain text; `content` keeps HTML but only
what an allow-list sanitiser (nh3) lets through, with links made absolute.
"""

from __future__ import annotations

import html
import re
import threading
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING, Any, AnyStr

from .errors import DIRECTION_CONTROLS
from .urls import resolve_link

if TYPE_CHECKING:
    import lxml.etree
    import nh3

# lxml and nh3 are imported on first use: a re-poll that parses nothing never pays.

_WS = re.compile(r"\s+")
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
# Block-level elements end a paragraph; the text between them is one paragraph.
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav",
    "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
})
_DROP_TAGS = ("script", "style", "template", "noscript", "head", "title")
_PARA_MARK = "\u2029"  # paragraph separator; removed from input first, so only ours remain
# HTML's elements, today's and obsolete ones feeds still write
_ELEMENTS = (
    "a abbr acronym address applet area article aside audio b base basefont bdi bdo big "
    "blink blockquote body br button canvas caption center cite code col colgroup data "
    "datalist dd del details dfn dialog dir div dl dt em embed fieldset figcaption figure "
    "font footer form frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe "
    "img input ins kbd label legend li link main map mark marquee math menu meta meter nav "
    "nobr noembed noframes noscript object ol optgroup option output p param picture "
    "plaintext pre progress q rp rt ruby s samp script search section select slot small "
    "source span strike strong style sub summary sup svg table tbody td template textarea "
    "tfoot th thead time title tr track tt u ul var video wbr xmp")
# where markup begins: an element's whole tag (open or close), a comment, a declaration
# or a processing instruction. A "<" before anything else ("x<y", "Wages <EUR 1,000",
# "<T>", "x<i 1") opens nothing a feed meant: it is text, as feedparser reads such a title.
_MARKUP = re.compile(r"<(?:/?(?:" + _ELEMENTS.replace(" ", "|") + r")(?=[\s/>])[^<>]*>|[!?])",
                     re.IGNORECASE)


def looks_like_markup(value: str) -> bool:
    """Whether `value` holds markup: a "<" that opens an HTML element, a comment, a
    declaration or a processing instruction."""
    return "<" in value and _MARKUP.search(value) is not None


def strip_controls(s: str) -> str:
    # every character _CTRL matches is non-printable: most titles skip the regex
    return s if s.isprintable() else _CTRL.sub("", s)


# _CTRL's ASCII members, as bytes: deleting them is a C-speed test for "none present"
_CTRL_ASCII = bytes(range(0x00, 0x09)) + b"\x0b\x0c" + bytes(range(0x0e, 0x20)) + b"\x7f"


def _strip_controls_fast(s: str) -> str:
    """strip_controls for long markup, whose newlines defeat the isprintable() test: a
    C-speed check first, the regex only when it finds something."""
    if s.isascii():
        b = s.encode("ascii")
        if len(b.translate(None, _CTRL_ASCII)) == len(b):
            return s
    elif s.replace("\n", "").replace("\t", "").replace("\r", "").isprintable():
        return s
    return _CTRL.sub("", s)


def composed(s: str) -> str:
    """`s` in Unicode's composed form (NFC): "Ü" one code point, as typed, however a feed
    spelled it ("U" and a combining diaeresis, as macOS and some CMSs write it) — so a
    rule, a search and another source's copy of an item find the same words. ASCII and
    text already composed (nearly all) pass through at C speed."""
    if s.isascii() or unicodedata.is_normalized("NFC", s):
        return s
    return unicodedata.normalize("NFC", s)


def collapse(s: str) -> str:
    """Whitespace runs to one space, trimmed."""
    if s.isprintable() and "  " not in s:
        return s.strip()  # the ASCII space is the only printable whitespace: nothing to collapse
    return _WS.sub(" ", s).strip()


# lxml.html's test for a whole document, which it parses as is rather than as a fragment
_FULL_HTML = re.compile(r"^\s*<(?:html|!doctype)", re.IGNORECASE)


def _drop(el: lxml.etree._Element) -> None:
    """Remove an element and what is inside it, keeping the text that follows it."""
    parent = el.getparent()
    if parent is None:
        return
    if el.tail:
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + el.tail
        else:
            parent.text = (parent.text or "") + el.tail
    parent.remove(el)


# A character reference to a code point XML has no place for (a C0 control other than a
# tab or line break, U+FFFE, U+FFFF, half a UTF-16 pair): lxml's HTML parser reads it into
# the tree, then refuses it as text wherever the tree is changed — one such entry failed
# its whole feed. It goes before parsing, as a literal control does in the parser.
_NUMERIC_REF = re.compile(r"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));?")
_NUMERIC_REF_BYTES = re.compile(_NUMERIC_REF.pattern.encode())


def _unfit(m: re.Match[Any]) -> bool:
    cp = int(m[1], 16) if m[1] else int(m[2])
    return (cp < 0x20 and cp not in (0x9, 0xA, 0xD)) or 0xD800 <= cp <= 0xDFFF or cp in (
        0xFFFE, 0xFFFF)


def without_unfit_refs(markup: AnyStr) -> AnyStr:
    """`markup` (text, or a page's bytes once in UTF-8) without character references to
    what XML cannot hold (see _NUMERIC_REF)."""
    if isinstance(markup, str):
        return markup if "&#" not in markup else _NUMERIC_REF.sub(
            lambda m: "" if _unfit(m) else m[0], markup)
    return markup if b"&#" not in markup else _NUMERIC_REF_BYTES.sub(
        lambda m: b"" if _unfit(m) else m[0], markup)


def _paragraphs_from_html(markup: str) -> list[str]:
    """The text of `markup`'s body, split where block elements begin and end. Read as
    lxml.html's fragment_fromstring reads it, but on plain lxml.etree elements: its
    Python-level element classes made it ~40 % slower, and a markup with no body (a
    summary of just "<html></html>") failed one of its assertions."""
    import lxml.etree

    markup = without_unfit_refs(markup.replace(_PARA_MARK, " "))
    if not _FULL_HTML.match(markup):
        markup = f"<html><body>{markup}</body></html>"
    # a parser per call: lxml parsers must not be shared between threads
    parser = lxml.etree.HTMLParser(no_network=True, remove_comments=True, remove_pis=True)
    try:
        root = lxml.etree.fromstring(markup, parser)
    except (lxml.etree.LxmlError, ValueError):  # ValueError: an XML declaration in a str
        root = None
    if root is None:
        return [html.unescape(re.sub(r"<[^>]*>", " ", markup))]
    body = root.find("body")
    if body is None:  # a document of only a <head>: nothing shown
        return []
    for bad in list(body.iter(*_DROP_TAGS)):  # a list: dropping while iterating skips
        _drop(bad)
    for el in body.iter():
        if el.tag in _BLOCK_TAGS:
            el.text = _PARA_MARK + (el.text or "")
            el.tail = _PARA_MARK + (el.tail or "")
    return "".join(body.itertext()).split(_PARA_MARK)


# Marks that are no part of a word's text: soft hyphens (&shy;, where a narrow screen may
# break "Grenz-management"), zero-width spaces, a word joiner, a stray byte order mark.
# A rule or a search for "Grenzmanagement" would miss "Grenz\u00admanagement".
_INVISIBLE_MARKS = "\u00ad\u200b\u2060\ufeff"
_UNSEEN = _INVISIBLE_MARKS + DIRECTION_CONTROLS  # (errors.py says why those go)
_INVISIBLE = re.compile(f"[{_UNSEEN}]")


def _dedupe(paras: list[str], repeats: bool = False) -> list[str]:
    """Drop empty paragraphs and, unless `repeats`, a paragraph repeated back to back and
    one that is two copies of itself; invisible marks and reaching direction controls go
    from the words."""
    out: list[str] = []
    for p in paras:
        # a C-speed scan a mark: a regex over every paragraph cost 5 % of normalising
        if not p.isascii() and any(mark in p for mark in _UNSEEN):
            p = _INVISIBLE.sub("", p)
        p = collapse(p)
        if not p:
            continue
        if repeats:
            out.append(p)
            continue
        half = len(p) // 2
        if len(p) % 2 == 1 and len(p) > 20 and p[:half] == p[half + 1 :] and p[half] == " ":
            p = p[:half]
        if out and out[-1] == p:
            continue
        out.append(p)
    return out


def html_to_text(value: str | None, *, repeats: bool = False) -> str:
    """Plain text of untrusted HTML or text: tags stripped, entities decoded once,
    whitespace collapsed, a paragraph repeated back to back kept once (a feed's summary
    that says its teaser twice) — unless `repeats`: the words of a text compared with
    another's, where a cell or a line put in beside its twin is a change."""
    return " ".join(html_paragraphs(value, repeats=repeats))


def html_paragraphs(value: str | None, *, repeats: bool = False) -> list[str]:
    """html_to_text's paragraphs, each as its own string (split where block elements
    begin and end): for showing a text a paragraph a line."""
    if not value:
        return []
    value = strip_controls(value)
    if "<" not in value and "&" not in value:
        paras = re.split(r"\n\s*\n", value) if "\n" in value else [value]
    elif not looks_like_markup(value):
        paras = re.split(r"\n\s*\n", html.unescape(value))
    else:
        paras = _paragraphs_from_html(value)
    return _dedupe(paras, repeats)


_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div", "dl",
    "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "li", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}
_SCHEMES = {"http", "https", "mailto"}
_ALLOWED_ATTRS = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "abbr": {"title"},
}


# html5ever (nh3's parser) looks through the open elements each time it opens a block
# element such as <div>, so markup nested thousands deep costs it quadratic time: 20,000
# nested <div>s took 0.5 s, 100,000 (half a megabyte, well under a body's cap) 13 s. No
# article nests anywhere near this deep; markup that does is kept as its text.
_TOO_DEEP = 1_000
# characters: shorter markup holds at most ~1,250 block elements, which nh3 reads in ms
_DEEP_POSSIBLE = 5 * _TOO_DEEP
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)[^>]*>")
_CUT_TAG = re.compile(r"<[^<>]*\Z")
_SCRIPT_OPEN = re.compile(r"<(script|style)\b", re.IGNORECASE)
_SCRIPT_CLOSE = {name: re.compile(rf"</{name}\s*>", re.IGNORECASE) for name in ("script", "style")}
# elements that hold nothing, and those that end themselves when the next one starts
# anywhere (not <rt> or <optgroup>: only inside <ruby> or <select>): neither deepens the
# tree. "<div/>" does: HTML reads the slash of an element that can hold something as noise.
_FLAT_TAGS = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr", "p", "li", "dt", "dd", "option", "tr", "td", "th", "tbody", "thead",
    "tfoot", "colgroup", "caption",
})


def _without_scripts(markup: str) -> str:
    """`markup` without its <script> and <style> elements, contents and all (nh3 keeps
    none), in one pass: an element never closed takes the rest with it."""
    out, pos = [], 0
    while (m := _SCRIPT_OPEN.search(markup, pos)) is not None:
        out.append(markup[pos:m.start()])
        end = _SCRIPT_CLOSE[m.group(1).lower()].search(markup, m.end())
        if end is None:
            return " ".join(out)
        pos = end.end()
    out.append(markup[pos:])
    return " ".join(out)


def _nests_too_deep(markup: str) -> bool:
    """Whether `markup` opens elements more than _TOO_DEEP deep: its tags replayed as HTML
    replays them, roughly (an end tag closes the innermost open element of its name and
    those inside it, and is ignored when none is open). Only long markup can nest that
    deep, so most never pay for the look."""
    if len(markup) < _DEEP_POSSIBLE:
        return False
    stack: list[str] = []
    open_count: dict[str, int] = {}
    for m in _TAG.finditer(markup):
        name = m.group(2).lower()
        if name in _FLAT_TAGS:
            continue
        if not m.group(1):
            stack.append(name)
            open_count[name] = open_count.get(name, 0) + 1
            if len(stack) > _TOO_DEEP:
                return True
        elif open_count.get(name):
            while True:  # each element is pushed and popped once: linear overall
                top = stack.pop()
                open_count[top] -= 1
                if top == name:
                    break
    return False


def markup_head(markup: str, limit: int) -> str:
    """The first `limit` characters of markup, without the tag the cut leaves open (it is
    not text)."""
    return markup if len(markup) <= limit else _CUT_TAG.sub("", markup[:limit])


def sanitise_html(value: str | None, base_url: str | None = None) -> str:
    """Allow-list sanitised HTML: no script, no event handlers, only http(s)/mailto links,
    relative links resolved against `base_url` (dropped without one)."""
    if not value:
        return ""
    if _nests_too_deep(value):
        text = _TAG.sub(" ", _without_scripts(_strip_controls_fast(value)))
        # a tag cut off by the end of what was read is not text
        text = collapse(html.unescape(_CUT_TAG.sub("", text)))
        return f"<p>{html.escape(text, quote=False)}</p>" if text else ""
    _link_base.url = base_url
    try:
        clean = _cleaner().clean(value)
    finally:
        _link_base.url = None
    # after cleaning, not before: nh3 decodes character references, so "&#1;" comes out
    # as a raw control character
    return _strip_controls_fast(clean).strip()


# The base that nh3's relative-URL callback resolves against: set around each clean() on
# the calling thread, so one Cleaner serves every document (building one per base would
# double nh3's cost). nh3 calls back synchronously, on that thread.
_link_base = threading.local()


def _resolve_relative(href: str) -> str | None:
    """nh3's hook for href/src values without a scheme (it has decoded their entities and
    re-escapes what is returned); None drops the attribute."""
    base = getattr(_link_base, "url", None)
    return resolve_link(href, base) if base else None


@lru_cache(maxsize=1)
def _cleaner() -> nh3.Cleaner:
    import nh3

    # built once: converting the allow-lists on every call doubles nh3's cost
    return nh3.Cleaner(tags=_ALLOWED_TAGS, attributes=_ALLOWED_ATTRS, url_schemes=_SCHEMES,
                       link_rel="noopener noreferrer nofollow", strip_comments=True,
                       url_relative=_resolve_relative)


__all__ = ["collapse", "composed", "html_paragraphs", "html_to_text", "markup_head",
           "sanitise_html", "strip_controls"]
