"""Stored items as an Atom 1.0 feed: a selection (a rule, a source) any feed reader can
subscribe to. Bytes out of rows in; the fields are already plain text or sanitised HTML,
and lxml escapes them for XML."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from lxml import etree

from .text import strip_controls

ATOM = "http://www.w3.org/2005/Atom"
_NS = f"{{{ATOM}}}"
EPOCH = "1970-01-01T00:00:00Z"
NEWEST = 50  # entries unless asked for more: a feed reader wants the news, not the history


def selection(source: str | None, rule: str | None, search: str | None = None
              ) -> tuple[str, str]:
    """(title, stable id) of a feed of the items of a source, a rule and/or a search."""
    picked = [(k, v) for k, v in (("rule", rule), ("source", source), ("q", search)) if v]
    # the names come from a query string: nothing XML cannot carry goes into the title
    parts = [strip_controls(f'search "{v}"' if k == "q" else f"{k} {v}") for k, v in picked]
    title = "harvester: " + (", ".join(parts) if parts else "all items")
    return title, "urn:harvester:items" + (f"?{urlencode(picked)}" if picked else "")


def _add(parent: etree._Element, tag: str, text: str | None = None, **attrs: str
         ) -> etree._Element:
    el = etree.SubElement(parent, _NS + tag, attrs)
    if text is not None:
        el.text = text
    return el


def atom_feed(rows: Sequence[Mapping[str, Any]], *, title: str, feed_id: str,
              self_url: str | None = None) -> bytes:
    """An Atom document of `rows` (store.items() rows, newest first). An item's entry is
    updated when the item is edited, so readers show the edit."""
    feed = etree.Element(_NS + "feed", nsmap={None: ATOM})
    _add(feed, "title", title)
    _add(feed, "id", feed_id)
    updated = max((r["updated_at"] or r["first_seen"] for r in rows), default=EPOCH)
    _add(feed, "updated", updated)
    if self_url:
        _add(feed, "link", rel="self", href=self_url)
    _add(_add(feed, "author"), "name", "harvester")
    _add(feed, "generator", "harvester")
    for r in rows:
        entry = _add(feed, "entry")
        _add(entry, "id", f"urn:harvester:item:{r['id']}")
        _add(entry, "title", r["title"])
        if r["url"]:
            _add(entry, "link", rel="alternate", href=r["url"])
        _add(entry, "published", r["published"])
        _add(entry, "updated", r["updated_at"] or r["first_seen"])
        for term in dict.fromkeys([r["category"], *r["tags"]]):
            if term:
                _add(entry, "category", term=term)
        for rule in r["rules"]:
            _add(entry, "category", term=rule, scheme="urn:harvester:rule")
        if r["summary"]:
            _add(entry, "summary", r["summary"])
        if r["content"]:
            _add(entry, "content", r["content"], type="html")
    return etree.tostring(feed, xml_declaration=True, encoding="utf-8", pretty_print=True)


__all__ = ["NEWEST", "atom_feed", "selection"]
