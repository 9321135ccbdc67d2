"""`harvester init` and `add`: sources worked out from the URLs a user already knows.

Each URL is fetched once and read as `probe` reads it: a feed is a feed source; a page
that announces a feed (<link rel="alternate">) gets that feed, which no redesign breaks;
any other page becomes a listing source with the selectors found on it. init's config
text is checked by the config reader before anyone sees it; add's tables go through
configfile, which reads the config again after writing them.
"""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from .config import SourceConfig, SourceKind, as_written, parse_config
from .configfile import toml_string
from .errors import ConfigError, FetchError, ParseError
from .fetch import Fetcher
from .models import FetchResult, RawEntry
from .opml import source_block, source_name
from .urls import canonical_url


@dataclass(frozen=True, slots=True)
class Found:
    """What one URL turned out to be, as a source."""

    url: str  # what the source polls
    kind: SourceKind
    entries: int  # read on it now
    select: str = ""  # a listing's [sources.select] (and [sources.pages]) tables
    note: str = ""  # said beside it in the config: where an announced feed came from
    category_from_title: bool = False  # its titles read "Press Release: …"
    restless: Restless | None = None  # a watched page that read otherwise at a second visit


def feed_entries(fr: FetchResult) -> tuple[RawEntry, ...] | None:
    """The entries of a body that reads as a feed (none yet, for a new blog's); None for
    anything else (a page)."""
    from .parse import parse_feed

    try:
        return parse_feed(fr.body, url=fr.url, content_type=fr.content_type).entries
    except ParseError:
        return None


def labelled_titles(entries: Sequence[RawEntry]) -> bool:
    """Do most titles start with a category label ("Press Release: Germany joins …"), the
    labels repeating? Then `category_from_title` makes rules by category work. One colon
    in a headline now and then is no such convention."""
    from .normalise import split_category

    titles = [e.title for e in entries if e.title]
    labels = [label for t in titles if (label := split_category(t)[0])]
    return len(titles) >= 3 and len(labels) >= 0.6 * len(titles) and len(set(labels)) < len(labels)


# Where site software serves its feed, tried (in this order) only when a page names no
# feed and shows no entries of its own
_COMMON_FEEDS = ("/feed/", "/rss", "/rss.xml", "/feed.xml", "/atom.xml", "/index.xml")


@dataclass(frozen=True, slots=True)
class Guess:
    """A feed (or sitemap) found where a site's software serves one, though no page says."""

    url: str
    where: str  # how it was found: "found at /index.xml", "the sitemap its /robots.txt names"
    entries: tuple[RawEntry, ...]
    sitemap: bool = False


# Of the sitemaps a sitemap index lists, those that list a site's news, tried first
_NEWSY = re.compile(r"news|post|article|press|blog|stor(?:y|ies)", re.IGNORECASE)
_SITEMAP_LINE = re.compile(r"^\s*sitemap\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)
SITEMAP_TRIES = 6  # sitemaps (and index entries) fetched at most, after robots.txt


def common_feed(page: str, fetcher: Fetcher, headers: Sequence[tuple[str, str]] = ()
                ) -> Guess | None:
    """A feed with entries where the site of `page` may serve one though it announces
    none (WordPress /feed/, Hugo /index.xml, Jekyll /feed.xml …); else the site's sitemap
    (`site_sitemap`); or None."""
    from .errors import FetchError

    for path in _COMMON_FEEDS:
        at = urljoin(page, path)
        try:  # the page's own site: its headers and its network policy hold alike
            feed = fetcher.fetch(at, origin=page, headers=headers)
        except FetchError:
            continue
        entries = feed_entries(feed)
        if entries:
            return Guess(feed.moved_to or at, f"found at {path}", entries)
    return site_sitemap(page, fetcher, headers)


def site_sitemap(page: str, fetcher: Fetcher, headers: Sequence[tuple[str, str]] = ()
                 ) -> Guess | None:
    """The sitemap of `page`'s site that lists pages, for a site with no feed: those its
    /robots.txt names (on its own site), else /sitemap.xml; in a sitemap index, the
    sitemaps whose names speak of news, posts or articles first. At most SITEMAP_TRIES
    fetches after robots.txt."""
    from .errors import FetchError
    from .fetch import same_site
    from .parse.sitemap import sitemap_index

    def get(url: str) -> FetchResult | None:
        try:
            return fetcher.fetch(url, origin=page, headers=headers)
        except FetchError:
            return None

    robots = get(urljoin(page, "/robots.txt"))
    named = [u for u in _SITEMAP_LINE.findall(robots.body.decode("utf-8", "replace"))
             if same_site(page, u)] if robots is not None else []
    tries = [(u, "the sitemap its /robots.txt names") for u in dict.fromkeys(named)]
    if not tries:
        tries = [(urljoin(page, "/sitemap.xml"), "its sitemap /sitemap.xml")]
    fetched = 0
    while tries and fetched < SITEMAP_TRIES:
        url, where = tries.pop(0)
        fr = get(url)
        fetched += 1
        if fr is None:
            continue
        entries = feed_entries(fr)
        if entries:
            return Guess(fr.moved_to or url, where, entries, sitemap=True)
        listed = sitemap_index(fr.body)
        if listed:
            index = urlsplit(url).path
            listed = [u for u in listed if same_site(page, u)]
            listed.sort(key=lambda u: not _NEWSY.search(urlsplit(u).path))  # stable
            tries[:0] = [(u, f"a sitemap in its index {index}") for u in listed]
    return None


def fetch_given(fetcher: Fetcher, url: str, headers: Sequence[tuple[str, str]] = ()
                ) -> FetchResult:
    """GET a URL as a person wrote it (init's, add's, probe's): a `${NAME}` after its host
    is read from the environment, as the config reads a source's, and what comes back
    (a move, an error) says `${NAME}`, never the value."""
    from .config import filled_url

    if "${" not in url or "${" in urlsplit(url).netloc:  # (never in the site's address)
        return fetcher.fetch(url, headers=headers)
    return fetcher.fetch(filled_url(url), origin=url, headers=headers)


def _theirs(url: str, given: str) -> str:
    """A source URL in the site's words (where it moved, the feed it announces or serves)
    as the config should hold it: a value of the user's own ${NAME}s in `given` (a page
    may link its feed with the key it was asked with) put back as ${NAME}, so the file
    holds no secret; any other ${NAME} no reference (config.as_written)."""
    from .fetch import redacted

    return as_written(redacted(url, given), given)


def examine(url: str, fetcher: Fetcher, headers: Sequence[tuple[str, str]] = ()) -> Found:
    """What source `url` makes; ParseError when it is neither a feed nor a page with
    repeated entries (FetchError when it cannot be fetched). A page's own feed is taken
    instead of the page when it carries the page's news: a category page that announces
    the whole site's feed stays the listing the user asked for. `headers` (a token, a
    cookie) go to url's own site only, as a source's do; a source found on another site
    (a feed elsewhere, a move) is refused, as its headers would go there."""
    from .fetch import same_site

    found = _examine(url, fetcher, headers)
    if headers and not same_site(url, found.url):
        raise ParseError(f"its source would be {found.url}, on another site, where the -H "
                         "headers would go too: add that URL itself if it is meant", url=url)
    return found


def _examine(url: str, fetcher: Fetcher, headers: Sequence[tuple[str, str]]) -> Found:
    from .detect import announced_feeds, detect, pages_block, pagination, toml_block
    from .errors import FetchError
    from .parse.listing import extract

    fr = fetch_given(fetcher, url, headers)
    # moved for good: the config gets where it went (a URL in the site's words)
    given, url = url, _theirs(fr.moved_to, url) if fr.moved_to else url
    moved = f"moved from {given}" if url != given else ""
    entries = feed_entries(fr)
    if entries is not None:  # an empty feed too: its news is still to come
        return Found(url, SourceKind.FEED, len(entries), note=moved,
                     category_from_title=labelled_titles(entries))
    select = detect(fr.body, fr.url, content_type=fr.content_type)
    listing = (extract(fr.body, url=fr.url, select=select, content_type=fr.content_type)
               .document.entries if select else ())
    on_page = [link for e in listing if (link := canonical_url(e.link, fr.url))]
    passed_over = ""
    for announced in announced_feeds(fr.body, fr.url, content_type=fr.content_type):
        try:  # a page can announce a feed that is gone or empty: then it does not count
            feed = (fetcher.fetch(announced.url, origin=url, headers=headers) if headers
                    else fetcher.fetch(announced.url))
        except FetchError:
            continue
        entries = feed_entries(feed) or ()
        in_feed = {link for e in entries if (link := canonical_url(e.link, feed.url))}
        # a feed holds the newest few: its news is the page's when it holds at least half of
        # as many of the page's newest entries
        newest = on_page[:len(in_feed)]
        carried = [link for link in newest if link in in_feed]
        if entries and (not on_page or len(carried) * 2 >= len(newest)):
            return Found(_theirs(feed.moved_to or announced.url, given),
                         SourceKind.FEED, len(entries),
                         note=f"announced by {given}",
                         category_from_title=labelled_titles(entries))
        if entries and not passed_over:
            passed_over = (f"it announces {_theirs(announced.url, given)}, which carries "
                           f"{len(carried)} of its newest {len(newest)} entries")
    if select is None and not passed_over:
        guessed = common_feed(fr.url, fetcher, headers)
        if guessed is not None:
            note = (f"{given}'s site serves no feed: {guessed.where}, each page in it an item"
                    if guessed.sitemap
                    else f"{guessed.where} of {given}'s site, which announces none")
            return Found(_theirs(guessed.url, given), SourceKind.FEED,
                         len(guessed.entries), note=note,
                         category_from_title=labelled_titles(guessed.entries))
    if select is None:
        from .parse.html import login_form

        hint = ("; it shows a login form: add it with -H 'Authorization: Bearer ${TOKEN}' "
                "(or a Cookie) if it wants credentials") if login_form(fr.body) else (
                "; to watch the page itself for edits, give it with --page")
        raise ParseError("neither a feed, nor a page announcing one, nor a page with "
                         f"repeated entries (each with a link and a date){hint}", url=url)
    pages = pages_block(pagination(fr.body, fr.url, content_type=fr.content_type))
    note = "; ".join(filter(None, (moved, passed_over)))
    return Found(url, SourceKind.HTML, len(listing), note=note,
                 select=toml_block(select) + ("\n" + pages if pages else ""))


@dataclass(frozen=True, slots=True)
class Survey:
    """What init found for all the URLs it was given."""

    found: tuple[Found, ...]  # one a source, in the order given
    repeats: tuple[str, ...]  # URLs that came to a source already found, each said in words
    failed: tuple[str, ...]  # "URL: why", for each URL that is no source


def examine_page(url: str, fetcher: Fetcher, headers: Sequence[tuple[str, str]] = ()
                 ) -> Found:
    """`url` as a watched page (kind = "page"), read as its polls will read it: a page
    with no text to watch (drawn by JavaScript) is refused now, not at its first poll.
    It is read twice: what differs from one visit to the next (a view counter) would be
    an edit at every poll, so it is said, and taken out with `ignore` where a pattern of
    its digits reads both visits the same (see `Restless`)."""
    from .parse.html import one_line
    from .parse.page import parse_page

    fr = fetch_given(fetcher, url, headers)
    given, url = url, _theirs(fr.moved_to, url) if fr.moved_to else url
    doc = parse_page(fr.body, fr.url, url, content_type=fr.content_type)
    note = f"moved from {given}" if url != given else one_line(doc.title or "", 80)
    try:  # a moment later, as a next poll would
        again: FetchResult | None = fetch_given(fetcher, given, headers)
    except FetchError:  # (a site that allows one visit a minute): the first read stands
        again = None
    restless = restless_page(fr, again, url) if again is not None else None
    select = ""
    if restless is not None and restless.ignore:
        select = "  [sources.select]\n  ignore = [" + ", ".join(
            map(toml_pattern, restless.ignore)) + "]  # changes at every visit"
    return Found(url, SourceKind.PAGE, len(doc.entries), select=select, note=note,
                 restless=restless)


@dataclass(frozen=True, slots=True)
class Restless:
    """How a watched page read otherwise at a second visit, a moment after the first."""

    lines: tuple[str, ...]  # "content: … Read [-1204-] {+1311+} times", a few at most
    # `ignore` patterns that read both visits the same (digits that count or tell the
    # time, in the words around them); () when none was found that does
    ignore: tuple[str, ...] = ()


_DIGITS = re.compile(r"\d+")


def toml_pattern(pattern: str) -> str:
    """A pattern as a TOML string a person reads: literal ('…'), as the README writes
    them, unless it holds what a literal string cannot."""
    if "'" in pattern or not pattern.isprintable():
        return toml_string(pattern)
    return f"'{pattern}'"


def _digit_pattern(hunk: tuple[tuple[str, str], ...]) -> str | None:
    """For a change of digits alone ("Read [-1204-] {+1311+} times"), a pattern of the
    words changed, their digits any digits, between the words either side of them."""
    ops = [op for op, _ in hunk]
    if ops not in (["=", "-", "+", "="], ["=", "-", "+"], ["-", "+", "="]):
        return None
    words = dict(seg for seg in hunk if seg[0] != "=")
    old, new = words["-"], words["+"]
    if _DIGITS.sub("0", old) != _DIGITS.sub("0", new) or not _DIGITS.search(old):
        return None
    changed = r"\d+".join(map(_literal, _DIGITS.split(old)))
    before = hunk[0][1].removesuffix(" …").split()[-1:] if hunk[0][0] == "=" else []
    after = hunk[-1][1].removeprefix("… ").split()[:1] if hunk[-1][0] == "=" else []
    return " ".join([*map(_literal, [w for w in before if w != "…"]), changed,
                     *map(_literal, [w for w in after if w != "…"])])


def _literal(text: str) -> str:
    """`text` as a pattern matching itself, escaped only where a pattern needs it (a
    person reads `Updated \\d+-\\d+-\\d+`, not `Updated \\d+\\-\\d+\\-\\d+`)."""
    return re.sub(r"\\([-#&~ ])", r"\1", re.escape(text))


def restless_page(first: FetchResult, second: FetchResult, link: str) -> Restless | None:
    """None when two visits of a page read the same, as polls read it; else what differs,
    and the `ignore` patterns that make them read the same, if any do."""
    from datetime import UTC, datetime

    from .config import FirstRun, PageConfig
    from .edits import field_changes, reads_otherwise
    from .harvest import read_body

    def read(fr: FetchResult, ignore: Sequence[re.Pattern[str]] = ()) -> dict[str, object]:
        """The page's item as a poll of such a source reads it."""
        source = SourceConfig("page", SourceKind.PAGE, link, 0.0, FirstRun(), "UTC",
                              page=PageConfig(ignore=tuple(ignore)))
        # one clock for both: a page's item is dated when first seen
        got = read_body(source, fr.body, fr.url, fr.content_type,
                        datetime(2000, 1, 1, tzinfo=UTC))
        if got.error is not None or not got.items:
            raise ParseError(got.error or "no item")
        return dict(got.items[0].versioned())

    try:
        before, after = read(first), read(second)
    except ParseError:  # the second visit unreadable: said at the first poll
        return None
    if not reads_otherwise(before, after):
        return None
    # the content first: a page's summary, without a description of its own, is the
    # content's first words, and the same change in it is said once
    changes = sorted(field_changes(before, after, max_lines=3), key=lambda c: c.field != "content")
    said: set[tuple[tuple[str, str], ...]] = set()
    lines = []
    for c in changes:
        for i, line in enumerate(c.lines()[:3]):
            # what a word hunk took out and put in; a line diff's lines are each their own
            changed = tuple(seg for seg in c.words[i] if seg[0] != "=") if c.words else ()
            if changed and changed in said:
                continue
            said.add(changed)
            lines.append(f"{c.field}: {line}")
    hunks = [h for c in changes for h in c.words]
    patterns = tuple(dict.fromkeys(_digit_pattern(h) or "" for h in hunks))
    if not hunks or "" in patterns:
        return Restless(tuple(lines) or ("content: a link in it leads elsewhere",))
    ignore = [re.compile(p) for p in patterns]
    try:
        if reads_otherwise(read(first, ignore), read(second, ignore)):
            return Restless(tuple(lines))
    except ParseError:
        return Restless(tuple(lines))
    return Restless(tuple(lines), patterns)


def survey(urls: Sequence[str], fetcher: Fetcher, headers: Sequence[tuple[str, str]] = (),
           *, pages: bool = False) -> Survey:
    """Each URL examined (`pages`: each a page to watch whole, see examine_page); a feed
    given twice, or given and announced by a page also given, is one source (two on one
    URL would store every item once and double each poll)."""
    from .errors import HarvesterError

    found: list[Found] = []
    repeats, failed = [], []
    for url in urls:
        try:
            source = (examine_page if pages else examine)(url, fetcher, headers)
        except HarvesterError as e:
            failed.append(f"{url}: {e}")
            continue
        if any(f.url == source.url for f in found):
            repeats.append(f"{url}: given twice, listed once" if url == source.url else
                           f"{url}: the same source as {source.url}, listed once")
        else:
            found.append(source)
    return Survey(tuple(found), tuple(repeats), tuple(failed))


def local_timezone(environ: dict[str, str] | None = None) -> str:
    """The machine's IANA zone (TZ, else where /etc/localtime points), else UTC: dates
    that carry no zone are read in it."""
    from zoneinfo import ZoneInfo

    env = os.environ if environ is None else environ
    candidates = [env.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        candidates.append(os.readlink("/etc/localtime").partition("zoneinfo/")[2])
    for zone in candidates:
        if zone and "/" in zone:
            try:
                ZoneInfo(zone)
                return zone
            except (ValueError, OSError):
                continue
    return "UTC"


def _name_of(url: str, taken: set[str]) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").removeprefix("www.")
    return source_name("", f"//{host}{parts.path}", taken)


def headers_line(headers: Sequence[tuple[str, str]]) -> str:
    """A source's `headers = { … }` line, the values as given (`${NAME}` left for the
    config to read from the environment)."""
    table = ", ".join(f"{n if re.fullmatch(r'[A-Za-z0-9_-]+', n) else toml_string(n)} = "
                      f"{toml_string(v)}" for n, v in headers)
    return f"headers = {{ {table} }}\n"


def source_text(f: Found, name: str, headers: Sequence[tuple[str, str]] = ()) -> str:
    """One found source's `[[sources]]` table, as init and add write it."""
    block = source_block(name, f.kind.value, f.url, f.note)
    if f.category_from_title:
        block += 'category_from_title = true   # its titles read "Category: Title"\n'
    if headers:
        block += headers_line(headers)
    return block + (f.select + "\n" if f.select else "")


def config_text(found: Sequence[Found], *, timezone: str = "UTC") -> str:
    """A whole config for these sources: storage beside the file, a console notifier
    for every new item, example rules to edit. Checked by the config reader."""
    taken: set[str] = set()
    blocks = [source_text(f, _name_of(f.url, taken)) for f in found]
    text = "\n".join([
        "# harvester configuration, written by `harvester init`; config/example.toml in the",
        "# project documents every key. Relative paths resolve against this file's folder.",
        "",
        "[storage]",
        'path = "harvester.db"',
        "",
        "[http]",
        'user_agent = "harvester/0.1 (+https://example.org/about)"   # say who you are',
        "",
        "[defaults]",
        'every = "30m"            # the daemon polls each source this often',
        'first_run = "baseline"   # a new source stores what it has silently; news comes after',
        f"timezone = {toml_string(timezone)}   # for dates that carry no zone",
        "",
        *blocks,
        "# Rules tag the items that matter; a notifier can hear of those only.",
        "# [[rules]]",
        '# name = "press-release"',
        '# categories = ["Press Release"]',
        "#",
        "# [[rules]]",
        '# name = "project-launch"',
        "# match = '(?i)\\b(launch(es|ed|ing)?|kick-?off)\\b'",
        "",
        "[[notifiers]]",
        'name = "stdout"',
        'kind = "console"',
        "rules = []               # [] = every new item; or the names of rules",
        "",
    ])
    parse_config(tomllib.loads(text), Path("harvester.toml").resolve())  # never write a bad one
    return text


@dataclass(frozen=True, slots=True)
class Addition:
    """What `add` appends to a config: the sources it lacks, named apart from its own."""

    added: tuple[tuple[str, Found], ...]  # (name, source), in the order given
    watched: tuple[str, ...]  # "URL: already watched as NAME", for each one it has
    text: str  # their [[sources]] tables


def plan_addition(found: Sequence[Found], configured: Sequence[SourceConfig],
                  name: str | None = None, headers: Sequence[tuple[str, str]] = ()
                  ) -> Addition:
    """The found sources a config does not poll yet (the same URL, or the same canonical
    one, is the same source), each named after its URL unless `name` is given (one URL)."""
    have = {canonical_url(s.url) or s.url: s.name for s in configured}
    taken = {s.name for s in configured}
    if name is not None and name in taken:
        raise ConfigError(f"a source named {name!r} exists already", key="--name")
    added, watched = [], []
    for f in found:
        already = have.get(canonical_url(f.url) or f.url)
        if already is not None:
            watched.append(f"{f.url}: already watched as {already}")
            continue
        added.append((name or _name_of(f.url, taken), f))
    return Addition(tuple(added), tuple(watched),
                    "\n".join(source_text(f, n, headers) for n, f in added))


__all__ = ["Addition", "Found", "Guess", "Survey", "common_feed", "config_text", "examine",
           "examine_page", "feed_entries", "fetch_given", "local_timezone", "plan_addition",
           "site_sitemap", "source_text", "survey"]
