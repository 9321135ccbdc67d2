"""Reading an HTML listing source: page 1 and, when worth it, the pages after it.

Pagination is incremental: a first poll (the baseline) walks up to `max` pages; later
polls go on to the next page only while a page ends in an entry not stored yet, so the
steady state is one request. Walking stops on a page seen before, an empty page, a
failed fetch and at `max`. Page 1 matching nothing is the stale-layout alarm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .config import ListingConfig, SourceConfig
from .errors import FetchError, ParseError
from .fetch import Fetcher
from .models import FetchResult, Known, RawEntry
from .parse.feed import MAX_ENTRIES
from .parse.listing import Listing, Selectors, extract
from .words import counted


class StaleLayout(ParseError):
    """The page answered, but the selectors found no entry on it."""


def stale_message(url: str) -> str:
    return (f"selectors matched nothing on {url} — the layout may have changed; "
            f"try `harvester probe {url}`")


def with_page(url: str, param: str, n: int) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != param]
    query.append((param, str(n)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def selectors(listing: ListingConfig, first_page: bytes, url: str, *,
              content_type: str | None = None, encoding: str | None = None) -> Selectors:
    if listing.item:
        assert listing.title and listing.link
        return Selectors(item=listing.item, title=listing.title, link=listing.link,
                         date=listing.date, category=listing.category,
                         summary=listing.summary, next=listing.next)
    from .detect import detect

    found = detect(first_page, url, content_type=content_type, encoding=encoding)
    if found is None:
        raise StaleLayout(f"found no repeated entries on {url} to read; set "
                          f"[sources.select] (try `harvester probe {url}`)"
                          + _login_hint(first_page), url=url)
    return replace(found, next=listing.next) if listing.next else found


def first_page(source: SourceConfig, first: FetchResult) -> tuple[Selectors, Listing]:
    """The selectors and the entries of page 1: no network, no store, so a worker process
    can read it. StaleLayout when the selectors find nothing."""
    assert source.listing is not None
    select = selectors(source.listing, first.body, first.url, content_type=first.content_type,
                       encoding=source.encoding)
    page = _extract(first, select, source)
    if not page.document.entries and page.dropped:
        # the entries are there; what is read of them is not (a text() past the link's
        # own element, a class renamed inside each entry)
        raise StaleLayout(
            f"select.item found {counted(page.dropped, 'entry', 'entries')} on {first.url}, "
            f"none with both a title (select.title {select.title!r}) and a link "
            f"(select.link {select.link!r}); try `harvester probe {first.url}`",
            source=source.name, url=first.url)
    if not page.document.entries:
        raise StaleLayout(stale_message(first.url) + _login_hint(first.body),
                          source=source.name, url=first.url)
    return select, page


def _login_hint(body: bytes) -> str:
    """What a page that asks for a password adds to the alarm: its session or key gone."""
    from .parse.html import login_form

    if not login_form(body):
        return ""
    return (" (the page shows a login form: it may want credentials, sent with `headers = "
            '{ Authorization = "Bearer ${TOKEN}" }` or a Cookie)')


def read_pages(source: SourceConfig, first: FetchResult, fetcher: Fetcher, *,
               baseline: bool, known: Callable[[list[RawEntry]], Known],
               page1: tuple[Selectors, Listing] | None = None
               ) -> tuple[list[RawEntry], str | None]:
    """(entries of every page read, a warning); `page1` is `first_page`'s answer when a
    worker has read it already. Every page's entries are read against page 1's URL."""
    listing_cfg = source.listing
    assert listing_cfg is not None
    select, page = page1 or first_page(source, first)
    entries = list(page.document.entries)
    dropped, warning = page.dropped, None
    seen, n = {first.url}, 1
    while n < listing_cfg.max_pages and not page.unread and len(entries) < MAX_ENTRIES:
        if not baseline:
            # The page's last entry, its oldest, decides: stored, and what follows is older
            # still. Not any entry: a featured item kept on top of page 1 (a sticky post) is
            # stored, and the news below it may go on to page 2.
            k = known(list(page.document.entries[-1:]))
            if k.by_key or k.by_url:
                break
        nxt = page.next_url
        if listing_cfg.param:
            nxt = with_page(source.request_url, listing_cfg.param, n + 1)
        if not nxt or nxt in seen:
            break
        try:
            fr = fetcher.fetch(nxt, source=source.name, origin=source.url,
                               headers=source.headers)
        except FetchError as e:
            warning = f"stopped at page {n + 1}: {e}"
            break
        page = _extract(fr, select, source)
        if not page.document.entries:
            break
        seen.add(nxt)
        n += 1
        entries += page.document.entries
        dropped += page.dropped
    if page.unread or len(entries) >= MAX_ENTRIES:
        # as a feed is read: the first MAX_ENTRIES, and nothing past them is fetched
        warning = (f"{warning}; " if warning else "") + (
            f"only the first {MAX_ENTRIES} entries were read (after {counted(n, 'page')})")
        entries = entries[:MAX_ENTRIES]
    if dropped:
        note = (f"{counted(dropped, 'entry', 'entries')} without a title or link"
                f" {'was' if dropped == 1 else 'were'} dropped")
        warning = f"{warning}; {note}" if warning else note
    return entries, warning


def _extract(fr: FetchResult, select: Selectors, source: SourceConfig) -> Listing:
    return extract(fr.body, url=fr.url, select=select, source=source.name,
                   content_type=fr.content_type, encoding=source.encoding)


__all__ = ["StaleLayout", "first_page", "read_pages", "selectors", "stale_message",
           "with_page"]
