"""TOML configuration into frozen dataclasses.

Every error names the file, the key (as a dotted path such as ``sources[1].url``)
and what is wrong with it, so `harvester check` can say exactly what to fix.
"""

from __future__ import annotations

import difflib
import glob
import os
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .crontab import parse as parse_crontab
from .errors import ConfigError
from .netpolicy import IPNetwork, parse_networks
from .proxy import ProxyRoutes, parse_proxy, routes
from .urls import bad_port, control_in, is_http_url

DEFAULT_USER_AGENT = "harvester/0.1 (+https://github.com/harvester/harvester)"
ITEM_FIELDS = ("title", "summary", "content", "category", "url", "author")
CONFIG_ENV = "HARVESTER_CONFIG"
DATABASE_ENV = "HARVESTER_DATABASE"  # overrides [storage] path (containers: a /data volume)


class SourceKind(StrEnum):
    FEED = "feed"
    HTML = "html"  # a listing page: its repeated entries are the items
    PAGE = "page"  # one page watched as a whole: its edits are the news


class EditsTold(StrEnum):
    """Which edits of a source's items are told (`edits`): all, or only those that put
    words in — where what a page takes down (a closed call, an expired notice) is no news."""

    ALL = "all"
    ADDED = "added"


class FirstRunMode(StrEnum):
    BASELINE = "baseline"
    LATEST = "latest"
    ALL = "all"


class NotifierKind(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"
    CONSOLE = "console"
    COMMAND = "command"


@dataclass(frozen=True, slots=True)
class FirstRun:
    """What a source's first successful poll notifies: nothing, the newest N, or all."""

    mode: FirstRunMode = FirstRunMode.BASELINE
    n: int = 0

    def __str__(self) -> str:
        return f"latest:{self.n}" if self.mode is FirstRunMode.LATEST else self.mode.value


KEEP_VERSIONS = 100  # an item's earlier versions kept: a feed's edits never come near it
KEEP_LOG = 90 * 86400.0  # the fetch log's default reach: a season of polls to look back on
# The longest duration any setting takes. Far past any sensible interval, timeout or
# retention, and far short of what a date or a thread's wait can hold, so that "every =
# '99999999d'" or "every = inf" is refused here rather than overflowing in the scheduler.
LONGEST = 3650 * 86400.0


@dataclass(frozen=True, slots=True)
class StorageConfig:
    path: Path
    # how long a poll's fetch-log row is kept, in seconds; None keeps every row. The log is
    # the only table that grows with each poll rather than with each item.
    keep_log: float | None = KEEP_LOG
    # how many earlier versions of an item are kept, newest first; None keeps every one (a
    # watched page that changes on every poll would otherwise keep a copy a poll for ever)
    keep_versions: int | None = KEEP_VERSIONS


@dataclass(frozen=True, slots=True)
class HttpConfig:
    user_agent: str = DEFAULT_USER_AGENT
    timeout: float = 30.0
    max_bytes: int = 10 * 1024 * 1024
    concurrency: int = 8
    per_host: int = 2  # requests in flight to one host at once: polite by default
    max_redirects: int = 5
    retries: int = 2
    # ranges the network policy lets sources reach on purpose (see netpolicy.py)
    allow_networks: tuple[IPNetwork, ...] = ()
    # None: the environment's proxy settings (http_proxy, …); "": none at all
    proxy: str | None = None
    no_proxy: tuple[str, ...] = ()  # hosts that go direct, as in the no_proxy variable

    def proxy_routes(self, environ: Mapping[str, str]) -> ProxyRoutes:
        """Where requests go: `proxy` and `no_proxy`, or without `proxy` the environment's
        variables. ConfigError names a variable that is wrong."""
        return routes(self.proxy, self.no_proxy, environ)


@dataclass(frozen=True, slots=True)
class Defaults:
    every: float = 1800.0
    first_run: FirstRun = FirstRun()
    timezone: str = "UTC"
    failures_before_alert: int = 3
    silent_after: float | None = None  # operators hear of a source with no news this long
    max_age: float | None = None  # new items dated longer ago are stored, not notified
    edits: EditsTold = EditsTold.ALL  # which edits are told


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """How the outbox retries: exponential backoff with jitter, then `dead`."""

    max_attempts: int = 8
    backoff: float = 30.0  # first retry after ~this many seconds, doubling each time
    backoff_max: float = 6 * 3600.0
    timeout: float = 30.0  # per delivery attempt (SMTP session, webhook request)


@dataclass(frozen=True, slots=True)
class SourceConfig:
    name: str
    kind: SourceKind
    url: str
    every: float
    first_run: FirstRun
    timezone: str
    category_from_title: bool = False
    encoding: str | None = None
    enabled: bool = True
    failures_before_alert: int = 3
    # no new item for this long, the source answering all the while: "source.silent"
    silent_after: float | None = None
    # a new item dated longer ago than this (resurfaced, or re-identified) is stored, not told
    max_age: float | None = None
    edits: EditsTold = EditsTold.ALL  # "added": an edit that only takes words out is not told
    # an edit is told only when the words it put in match this ("call for tenders")
    edits_match: re.Pattern[str] | None = None
    cron: str | None = None  # "*/15 * * * *": the daemon polls on this instead of `every`
    listing: ListingConfig | None = None  # kind = "html": how to read the pages
    page: PageConfig | None = None  # kind = "page": what of the page is watched
    follow: bool = False  # fetch each new item's article page and store its main text
    # sent with every request to the source's own site (its URL's origin), never elsewhere;
    # out of the repr, as its values are often secrets
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def request_url(self) -> str:
        """`url` with each ${NAME} (a token in its path or query) read from the environment:
        what is requested, and never said; `url`, as written, is what every message shows.
        FetchError naming the variable should it have been unset since the config loaded."""
        return filled_url(self.url, self.name)


def filled_url(url: str, source: str | None = None) -> str:
    """`url` with each ${NAME} read from the environment, to be requested, never said;
    FetchError naming a variable that is not set."""
    if "${" not in url:
        return url
    from .errors import FetchError

    try:
        return expand_env(url)
    except KeyError as e:
        raise FetchError(f"environment variable {e.args[0]} is not set", source=source,
                         url=url) from None


@dataclass(frozen=True, slots=True)
class ListingConfig:
    """[sources.select] and [sources.pages] of an HTML listing source."""

    item: str | None = None  # None: find the repeated entry blocks automatically
    title: str | None = None
    link: str | None = None
    date: str | None = None
    category: str | None = None
    summary: str | None = None
    content: str | None = None  # the article page's main block, for `follow`
    date_formats: tuple[str, ...] = ("%d %B %Y",)
    next: str | None = None  # pagination by a "next" link…
    param: str | None = None  # …or by a query parameter (?page=2, 3, …)
    max_pages: int = 5


@dataclass(frozen=True, slots=True)
class PageConfig:
    """[sources.select] of a watched page (kind = "page")."""

    content: str | None = None  # the block watched; None: the page but for its chrome
    remove: tuple[str, ...] = ()  # what changes on every visit (a counter, a clock)
    ignore: tuple[re.Pattern[str], ...] = ()  # text that does, where no element holds it alone


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """`harvester run`: jitter, failure backoff, delivery timer, shutdown grace."""

    jitter: float = 0.1  # up to this fraction of a source's interval, so hosts do not align
    backoff_max: float = 6 * 3600.0  # a failing source's polls spread out up to this
    deliver_every: float = 30.0  # retries come due on this timer; new items go at once
    grace: float = 30.0  # on SIGTERM, how long a poll in progress may take to finish
    misfire_grace: float = 300.0  # a run missed by less than this still happens (once)
    watch_config: bool = True  # reload when the config's files change, as on SIGHUP


@dataclass(frozen=True, slots=True)
class RuleConfig:
    name: str
    categories: tuple[str, ...] = ()
    match: re.Pattern[str] | None = None
    fields: tuple[str, ...] = ("title", "summary")
    exclude: re.Pattern[str] | None = None
    sources: tuple[str, ...] = ()


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class Schedule:
    """A notifier's delivery time: every day, or on some days of the week, at a local time."""

    hour: int
    minute: int
    timezone: str = "UTC"
    days: tuple[int, ...] = ()  # the weekdays it goes on, 0 = Monday; () = every day

    def next_at(self, now: datetime) -> datetime:
        """The first such time at or after `now` (an aware datetime), in UTC."""
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        for ahead in range(8):  # today, or a day of the week to come, or today a week on
            day = local.date() + timedelta(days=ahead)
            if self.days and day.weekday() not in self.days:
                continue
            at = datetime(day.year, day.month, day.day, self.hour, self.minute, tzinfo=zone)
            if at >= now:
                return at.astimezone(UTC)
        raise AssertionError("unreachable: one of the next eight days is such a day")

    def __str__(self) -> str:
        when = f"{self.hour:02d}:{self.minute:02d}"
        return f"every {_days_text(self.days)} at {when} ({self.timezone})"


def _days_text(days: tuple[int, ...]) -> str:
    """'day', 'mon', 'mon-fri', 'mon,wed,fri': as a config would write them."""
    if not days:
        return "day"
    runs: list[list[int]] = []
    for d in days:
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return ",".join(f"{_WEEKDAYS[r[0]]}-{_WEEKDAYS[r[-1]]}" if len(r) > 2 else
                    ",".join(_WEEKDAYS[d] for d in r) for r in runs)


_DAY_SETS = {"weekdays": (0, 1, 2, 3, 4), "weekends": (5, 6)}


def _day(word: str) -> int:
    """A weekday by its name or its first three letters or more ('mon', 'Monday')."""
    if len(word) >= 3:
        for i, name in enumerate(_FULL_WEEKDAYS):
            if name.startswith(word):
                return i
    raise ValueError(word)



def parse_schedule(text: str, timezone: str) -> Schedule:
    """'08:00' (every day), 'mon 08:00' (weekly), 'mon-fri 08:00', 'mon,thu 08:00' or
    'weekdays 08:00', in `timezone`; ValueError otherwise."""
    m = re.fullmatch(r"(?:([a-z][a-z,\s-]*?)\s+)?(\d{1,2}):(\d{2})", text.strip().lower())
    problem = ValueError(f"{text!r} is not a time like '08:00', 'mon 08:00' or "
                         "'mon-fri 08:00'")
    if not m or int(m.group(2)) > 23 or int(m.group(3)) > 59:
        raise problem
    days: set[int] = set()
    for item in (m.group(1) or "").replace(" ", "").split(",") if m.group(1) else ():
        try:
            if item in _DAY_SETS:
                days.update(_DAY_SETS[item])
                continue
            first, dash, last = item.partition("-")
            start = _day(first)
            end = _day(last) if dash else start
        except ValueError:
            raise problem from None
        days.update((start + k) % 7 for k in range((end - start) % 7 + 1))  # fri-mon wraps
    return Schedule(int(m.group(2)), int(m.group(3)), timezone,
                    () if len(days) == 7 else tuple(sorted(days)))


@dataclass(frozen=True, slots=True)
class NotifierConfig:
    """Who hears about what. Channel settings stay in `options` for the channel to read."""

    name: str
    kind: NotifierKind
    rules: tuple[str, ...] = ()  # () = every new item
    on: tuple[str, ...] = ("new",)
    events: tuple[str, ...] = ()  # operators' events, e.g. "source.failing"
    options: tuple[tuple[str, Any], ...] = ()
    at: Schedule | None = None  # item news waits for this time, then goes as one digest
    # a webhook's extra request headers (a receiver's token): secrets, so never in a repr
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    storage: StorageConfig
    http: HttpConfig
    defaults: Defaults
    sources: tuple[SourceConfig, ...]
    rules: tuple[RuleConfig, ...]
    notifiers: tuple[NotifierConfig, ...] = ()
    delivery: DeliveryConfig = DeliveryConfig()
    daemon: DaemonConfig = DaemonConfig()
    included: tuple[Path, ...] = ()  # the files `include` read sources from, in order
    # what a change of the config shows in: its file, the files it includes, and the
    # folders a new included file would appear in (the daemon's watch_config looks at them;
    # not the config's own folder, where the database and its journal come and go)
    watched: tuple[Path, ...] = ()

    def zone_of(self, source: str) -> str:
        """The time zone `source`'s dates were read in, and are shown in: its own, or the
        default one for a source no longer configured."""
        return next((s.timezone for s in self.sources if s.name == source),
                    self.defaults.timezone)

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(
            f"no source named {name!r} (sources: {', '.join(s.name for s in self.sources)})",
            file=str(self.path),
        )


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def parse_duration(text: str, longest: float | None = LONGEST) -> float:
    """'90s', '15m', '2h', '1d' or compounds like '1h30m' → seconds, at most `longest`;
    ValueError otherwise."""
    s = text.strip().lower()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if s[pos : m.start()].strip():
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos == 0 or s[pos:].strip() or total <= 0:
        raise ValueError(f"{text!r} is not a duration like '90s', '15m', '2h' or '1d'")
    if longest is not None and total > longest:
        raise ValueError(_too_long(repr(text), longest))
    return total


def is_mailbox(value: str) -> bool:
    """One address, bare or with a display name ("ICMPD watch <watch@example.org>"): one
    line, nothing a header could be split at, and nothing a lenient parser would drop."""
    from email.utils import parseaddr

    if not value.isprintable():  # CR, LF and the like: a header of its own
        return False
    addr = parseaddr(value)[1]
    if "@" not in addr or any(c in addr for c in ",;<> \"'"):
        return False
    text = value.strip()
    return text == addr or (text.endswith(f"<{addr}>") and text.count("<") == 1)


def _too_long(what: str, longest: float) -> str:
    return f"{what} is longer than {longest / 86400:g}d (ten years), the longest a setting takes"


def parse_first_run(text: str) -> FirstRun:
    s = text.strip().lower()
    if s in ("baseline", "all"):
        return FirstRun(FirstRunMode(s))
    m = re.fullmatch(r"latest:(\d+)", s)
    if m and int(m.group(1)) > 0:
        return FirstRun(FirstRunMode.LATEST, int(m.group(1)))
    raise ValueError(f"{text!r} is not one of 'baseline', 'all' or 'latest:N' (N ≥ 1)")


_TYPE_NAMES = {str: "a string", bool: "true or false", int: "an integer", list: "a list",
               dict: "a table", float: "a number"}
_VALUE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
                list: "a list", dict: "a table"}


def _type_name(v: Any) -> str:
    return _VALUE_NAMES.get(type(v), type(v).__name__)


class _Reader:
    """Reads one TOML table, remembering which keys were used so the rest are errors."""

    def __init__(self, data: Mapping[str, Any], where: str, file: str):
        self.data = data
        self.where = where
        self.file = file
        self.used: set[str] = set()

    def key(self, k: str) -> str:
        return f"{self.where}.{k}" if self.where else k

    def error(self, k: str | None, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, key=self.key(k) if k else self.where or None)

    def get(self, k: str, types: type | tuple[type, ...], default: Any = None,
            required: bool = False) -> Any:
        self.used.add(k)
        if k not in self.data:
            if required:
                typo = difflib.get_close_matches(k, [d for d in self.data if d not in self.used])
                if typo:  # the missing key is most likely this misspelt one
                    raise self.error(typo[0], f"unknown key (did you mean {k!r}?)")
                raise self.error(k, "is required")
            return default
        v = self.data[k]
        ok = isinstance(v, types) and not (isinstance(v, bool) and bool not in _as_tuple(types))
        if not ok:
            want = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in _as_tuple(types))
            raise self.error(k, f"expected {want}, got {_type_name(v)} {v!r}")
        return v

    def str_list(self, k: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        v = self.get(k, list, None)
        if v is None:
            return default
        for i, x in enumerate(v):
            if not isinstance(x, str):
                raise self.error(f"{k}[{i}]", f"expected a string, got {_type_name(x)} {x!r}")
        return tuple(v)

    def sub(self, k: str) -> _Reader | None:
        v = self.get(k, dict, None)
        return None if v is None else _Reader(v, self.key(k), self.file)

    def finish(self) -> None:
        for k in self.data:
            if k not in self.used:
                close = difflib.get_close_matches(k, sorted(self.used), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.error(k, f"unknown key{hint}")


def _as_tuple(t: type | tuple[type, ...]) -> tuple[type, ...]:
    return t if isinstance(t, tuple) else (t,)


def _duration(r: _Reader, k: str, default: float) -> float:
    """Seconds, given as a number or as a duration ("90s", "15m", "2h", "1d")."""
    v = r.get(k, (str, int, float), None)
    return default if v is None else _seconds(r, k, v)


def _optional_duration(r: _Reader, k: str, default: float | None) -> float | None:
    """A duration, or None where neither the table nor the default gives one."""
    v = r.get(k, (str, int, float), None)
    return default if v is None else _seconds(r, k, v)


def _seconds(r: _Reader, k: str, v: str | float) -> float:
    if isinstance(v, int | float):
        if not v > 0:  # nan too
            raise r.error(k, f"must be positive, got {v}")
        if v > LONGEST:
            raise r.error(k, _too_long(f"{v} seconds", LONGEST))
        return float(v)
    try:
        return parse_duration(v)
    except ValueError as e:
        raise r.error(k, str(e)) from None


def _keep(r: _Reader, k: str, default: float) -> float | None:
    """A retention period: a duration, or 0 to keep everything (None)."""
    v = r.get(k, (str, int, float), None)
    if v is None:
        return default
    if isinstance(v, int | float):
        if not v >= 0:  # nan too
            raise r.error(k, f"must be a duration, or 0 to keep every row; got {v}")
        if v > LONGEST:
            raise r.error(k, _too_long(f"{v} seconds", LONGEST) + ", or 0 to keep every row")
        return float(v) or None
    try:
        return parse_duration(v)
    except ValueError as e:
        raise r.error(k, f"{e}, or 0 to keep every row") from None


def _first_run(r: _Reader, k: str, default: FirstRun) -> FirstRun:
    v = r.get(k, str, None)
    if v is None:
        return default
    try:
        return parse_first_run(v)
    except ValueError as e:
        raise r.error(k, str(e)) from None


def _timezone(r: _Reader, k: str, default: str) -> str:
    v = r.get(k, str, None)
    if v is None:
        return default
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        near = _zone_like(v)
        hint = f"did you mean {near!r}?" if near else "an IANA name like 'Europe/Vienna'"
        raise r.error(k, f"unknown time zone {v!r} ({hint})") from None
    return v


def _zone_like(name: str) -> str | None:
    """The known zone a mistyped name most likely meant: 'europe/vienna', 'Europe/Viena'."""
    import difflib
    from zoneinfo import available_timezones

    zones = available_timezones()
    by_case = {z.lower(): z for z in zones}
    if name.lower() in by_case:
        return by_case[name.lower()]
    near = difflib.get_close_matches(name.lower(), list(by_case), n=1, cutoff=0.85)
    return by_case[near[0]] if near else None


def _regex(r: _Reader, k: str) -> re.Pattern[str] | None:
    v = r.get(k, str, None)
    return None if v is None else _compiled(r, k, v)


def _compiled(r: _Reader, k: str, v: str) -> re.Pattern[str]:
    if "\b" in v:  # TOML read the "\b" of a "double-quoted" string: the rule would never match
        raise r.error(k, '"\\b" in a "double-quoted" TOML string is a backspace, not a word '
                         "boundary: write the pattern in 'single quotes' ('\\bword\\b'), or "
                         'double each backslash ("\\\\bword\\\\b")')
    try:
        # composed (NFC), as items' text is stored: "ü" typed as "u" and a combining mark
        # (some editors save it so) would otherwise never match
        return re.compile(unicodedata.normalize("NFC", v))
    except re.error as e:
        raise r.error(k, f"bad regular expression {v!r}: {e}") from None


def _positive(r: _Reader, k: str, types: type | tuple[type, ...], default: Any) -> Any:
    v = r.get(k, types, default)
    if v <= 0:
        raise r.error(k, f"must be positive, got {v}")
    return v


def _count(r: _Reader, k: str, default: int) -> int:
    """A number of times: 0 or more."""
    v = r.get(k, int, default)
    if v < 0:
        raise r.error(k, f"must be 0 or more, got {v}")
    return v


def _cron(r: _Reader, k: str) -> str | None:
    """A five-field crontab line, read as cron reads it (crontab.py), every field checked."""
    v = r.get(k, str, None)
    if v is None:
        return None
    try:
        parse_crontab(v)
    except ValueError as e:
        raise r.error(k, str(e)) from None
    return v


def _selector(r: _Reader, k: str) -> str | None:
    v = r.get(k, str, None)
    return None if v is None else _valid_selector(r, k, v)


def _valid_selector(r: _Reader, k: str, v: str) -> str:
    """A CSS selector, or an XPath expression after "xpath:", that compiles."""
    try:
        if v.startswith("xpath:"):
            from lxml.etree import XPath, XPathSyntaxError

            try:
                XPath(v[len("xpath:"):])
            except XPathSyntaxError as e:
                raise ValueError(str(e)) from None
        else:
            from cssselect import GenericTranslator, SelectorError

            try:
                GenericTranslator().css_to_xpath(v)
            except SelectorError as e:
                raise ValueError(str(e)) from None
    except ValueError as e:
        raise r.error(k, f"bad selector {v!r}: {e}") from None
    return v


# The most listing pages a source may walk: a first poll reads up to `max` of them, one
# request each, and a site's pagination can be endless.
MAX_PAGES = 1_000


def _date_formats(r: _Reader, k: str) -> tuple[str, ...]:
    """strptime formats, each checked by a round trip through a date: a directive Python
    does not know ("%Q") would otherwise fail every date, silently."""
    formats = r.str_list(k, ("%d %B %Y",))
    probe = datetime(2020, 5, 20, 9, 41, tzinfo=UTC)  # aware: a format may hold %z
    for i, fmt in enumerate(formats):
        try:
            datetime.strptime(probe.strftime(fmt), fmt)
        except ValueError as e:
            raise r.error(f"{k}[{i}]", f"bad date format {fmt!r}: {e}") from None
    return formats


def _read_listing(source: _Reader) -> ListingConfig:
    sel = source.sub("select") or _Reader({}, source.key("select"), source.file)
    pages = source.sub("pages") or _Reader({}, source.key("pages"), source.file)
    listing = ListingConfig(
        item=_selector(sel, "item"), title=_selector(sel, "title"), link=_selector(sel, "link"),
        date=_selector(sel, "date"), category=_selector(sel, "category"),
        summary=_selector(sel, "summary"), content=_selector(sel, "content"),
        date_formats=_date_formats(sel, "date_formats"),
        next=_selector(pages, "next"), param=pages.get("param", str, None),
        max_pages=_positive(pages, "max", int, 5))
    if listing.max_pages > MAX_PAGES:
        raise pages.error("max", f"at most {MAX_PAGES} pages (each a request to the site on a "
                                 f"first poll), got {listing.max_pages}")
    if listing.item and not (listing.title and listing.link):
        raise sel.error("title" if not listing.title else "link",
                        "is required with 'item' (or leave out 'item' to detect entries)")
    if listing.next and listing.param:
        raise pages.error("param", "give either 'next' or 'param', not both")
    sel.finish()
    pages.finish()
    return listing


def _read_page(source: _Reader) -> PageConfig:
    if "pages" in source.data:
        raise source.error("pages", "a watched page is one page: only an html listing source "
                                    "has pages")
    sel = source.sub("select") or _Reader({}, source.key("select"), source.file)
    remove = tuple(_valid_selector(sel, f"remove[{i}]", v)
                   for i, v in enumerate(sel.str_list("remove")))
    ignore = tuple(_cutting(sel, f"ignore[{i}]", v) for i, v in enumerate(sel.str_list("ignore")))
    page = PageConfig(content=_selector(sel, "content"), remove=remove, ignore=ignore)
    sel.finish()
    return page


def _matching(r: _Reader, k: str) -> re.Pattern[str] | None:
    """A pattern an edit's added words must match: one that matched the empty text would
    let every edit through, as if unset."""
    v = r.get(k, str, None)
    return None if v is None else _cutting(r, k, v)


def _cutting(r: _Reader, k: str, v: str) -> re.Pattern[str]:
    """A pattern of text to cut from a page: one that matched the empty text would cut
    nothing and still be found in every element, each then read as plain text."""
    pattern = _compiled(r, k, v)
    if pattern.search(""):
        raise r.error(k, f"{v!r} matches empty text too: give a pattern that needs at least "
                         "one character")
    return pattern


def _read_daemon(r: _Reader | None) -> DaemonConfig:
    if r is None:
        return DaemonConfig()
    jitter = r.get("jitter", (int, float), 0.1)
    if not 0 <= jitter <= 1:
        raise r.error("jitter", f"must be a fraction of the interval, 0 to 1; got {jitter}")
    d = DaemonConfig(
        jitter=float(jitter),
        backoff_max=_duration(r, "backoff_max", 6 * 3600.0),
        deliver_every=_duration(r, "deliver_every", 30.0),
        grace=_duration(r, "grace", 30.0),
        misfire_grace=_duration(r, "misfire_grace", 300.0),
        watch_config=r.get("watch_config", bool, True),
    )
    r.finish()
    return d


def _control_problem(shown: str, c: str) -> str:
    return (f"{shown} holds a control character (U+{ord(c):04X}): a URL has none; write it "
            f"percent-encoded ({quote(c, safe='')}) if the site means one")


def _http_url(r: _Reader, k: str, v: str) -> str:
    if (c := control_in(v)) is not None:
        raise r.error(k, _control_problem(repr(v), c))
    if bad_port(v):
        raise r.error(k, f"the port in {v!r} is not a number from 1 to 65535")
    if not is_http_url(v):
        raise r.error(k, f"expected an http:// or https:// URL, got {v!r}")
    return v


NAME_RULE = "letters, digits, '.', '_', '-'; up to 64"


def is_name(v: str) -> bool:
    """Is `v` a valid name for a source, rule or notifier?"""
    return bool(_NAME.match(v))


def _name(r: _Reader, v: str, k: str = "name") -> str:
    if not is_name(v):
        raise r.error(k, f"{v!r} is not a valid name ({NAME_RULE})")
    return v


def _networks(r: _Reader, k: str) -> tuple[IPNetwork, ...]:
    values = r.str_list(k)
    try:
        return parse_networks(values)
    except ValueError as e:
        raise r.error(k, str(e)) from None


def _read_http(r: _Reader | None) -> HttpConfig:
    if r is None:
        return HttpConfig()
    user_agent = r.get("user_agent", str, DEFAULT_USER_AGENT)
    # sent with every request: what a source's own header value may hold, it may hold
    problem = header_problem("User-Agent", user_agent) if user_agent.strip() else (
        "cannot be empty: servers refuse requests that name no client")
    if problem:
        raise r.error("user_agent", problem)
    h = HttpConfig(
        user_agent=user_agent,
        timeout=_duration(r, "timeout", 30.0),
        max_bytes=_positive(r, "max_bytes", int, 10 * 1024 * 1024),
        concurrency=_positive(r, "concurrency", int, 8),
        per_host=_positive(r, "per_host", int, 2),
        max_redirects=_count(r, "max_redirects", 5),
        retries=_count(r, "retries", 2),
        allow_networks=_networks(r, "allow_networks"),
        proxy=_proxy(r, "proxy"),
        no_proxy=r.str_list("no_proxy"),
    )
    r.finish()
    return h


def _proxy(r: _Reader, k: str) -> str | None:
    v = r.get(k, str, None)
    if v:
        try:
            parse_proxy(v)
        except ValueError as e:
            raise r.error(k, str(e)) from None
    return v


def _read_defaults(r: _Reader | None) -> Defaults:
    if r is None:
        return Defaults()
    d = Defaults(
        every=_duration(r, "every", 1800.0),
        first_run=_first_run(r, "first_run", FirstRun()),
        timezone=_timezone(r, "timezone", "UTC"),
        failures_before_alert=_positive(r, "failures_before_alert", int, 3),
        silent_after=_optional_duration(r, "silent_after", None),
        max_age=_optional_duration(r, "max_age", None),
        edits=_edits(r, EditsTold.ALL),
    )
    r.finish()
    return d


def _edits(r: _Reader, default: EditsTold) -> EditsTold:
    v = r.get("edits", str, None)
    if v is None:
        return default
    try:
        return EditsTold(v)
    except ValueError:
        raise r.error("edits", f"expected one of {', '.join(EditsTold)}, got {v!r}") from None


def _read_delivery(r: _Reader | None) -> DeliveryConfig:
    if r is None:
        return DeliveryConfig()
    d = DeliveryConfig(
        max_attempts=_positive(r, "max_attempts", int, 8),
        backoff=_duration(r, "backoff", 30.0),
        backoff_max=_duration(r, "backoff_max", 6 * 3600.0),
        timeout=_duration(r, "timeout", 30.0),
    )
    r.finish()
    return d


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection", "te",
                      "upgrade", "proxy-authorization"})
# what the fetcher sets itself: a source's own value would break conditional GET,
# decompression or the framing of the request
_MANAGED_HEADERS = _FRAMING | {"if-none-match", "if-modified-since", "accept-encoding"}
# what a webhook POST sets itself: the body's type and the Standard Webhooks headers,
# which a receiver verifies the signature with
_WEBHOOK_MANAGED = _FRAMING | {"content-type", "webhook-id", "webhook-timestamp",
                               "webhook-signature"}


def header_problem(name: str, value: str = "", *, webhook: bool = False) -> str | None:
    """What is wrong with a request header a user gives (a source's, a webhook's or
    `probe -H`), else None. Never quotes the value: it is often a secret."""
    if not _TOKEN.match(name):
        return f"{name!r} is not an HTTP header name"
    managed, why = ((_WEBHOOK_MANAGED, "the body's type, the Standard Webhooks headers")
                    if webhook else (_MANAGED_HEADERS, "conditional GET, compression"))
    if name.lower() in managed:
        return f"the harvester sets this header itself ({why}, connections)"
    if any(c in value for c in "\r\n\0"):
        return "a header value cannot hold a line break or NUL"
    if any((c < " " and c != "\t") or c == "\x7f" or c > "\xff" for c in value):
        # what HTTP/1.1 can carry: visible ASCII, tabs, and Latin-1 (http.client's encoding)
        return ("a header value can hold only visible ASCII or Latin-1 text "
                "(percent-encode the rest)")
    return None


def env_refs(text: str) -> list[str]:
    """The environment variables `text` names as ${NAME}."""
    return _ENV_REF.findall(text)


def expand_env(text: str) -> str:
    """`text` with each ${NAME} replaced by environment variable NAME; KeyError naming the
    first that is not set."""
    return _ENV_REF.sub(lambda m: os.environ[m.group(1)], text)


def as_written(url: str, own: str = "") -> str:
    """A URL in others' words (a server's move, a page's link, a reader's list) as a config
    should hold it: each ${NAME} in it that `own` (the URL the user gave, whose references
    a move quotes back) does not name is written %24{NAME}, the same characters to the
    site but no reference to the config, which would send that variable to the site."""
    mine = set(env_refs(own))
    return _ENV_REF.sub(lambda m: m[0] if m[1] in mine else "%24" + m[0][1:], url)


def _headers(r: _Reader, k: str, *, webhook: bool = False) -> tuple[tuple[str, str], ...]:
    """A source's (or a webhook's) extra request headers; `${NAME}` in a value is the
    environment variable NAME, so a token need not sit in the file. Values are never
    echoed: they are secrets."""
    table = r.get(k, dict, None)
    if table is None:
        return ()
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in table.items():
        key = f"{k}.{name}"
        if not isinstance(value, str):
            raise r.error(key, f"expected a string, got {_type_name(value)}")

        try:
            value = expand_env(value).strip()  # a secret file's trailing newline, too
        except KeyError as e:
            raise r.error(key, f"environment variable {e.args[0]} is not set") from None
        problem = header_problem(name, value, webhook=webhook)
        if problem:
            raise r.error(key, problem)
        if name.lower() in seen:
            raise r.error(key, "given twice (header names are case-insensitive)")
        seen.add(name.lower())
        out.append((name, value))
    return tuple(out)


def _read_source(r: _Reader, defaults: Defaults) -> SourceConfig:
    name = _name(r, r.get("name", str, required=True))
    kind_s = r.get("kind", str, "feed")
    try:
        kind = SourceKind(kind_s)
    except ValueError:
        raise r.error("kind", f"expected one of {', '.join(k.value for k in SourceKind)}, "
                              f"got {kind_s!r}{_kind_hint(kind_s)}") from None
    url = _http_url(r, "url", r.get("url", str, required=True))
    if env_refs(url):  # a token in the path or query, kept in the environment
        if "${" in urlsplit(url).netloc:
            raise r.error("url", "${NAME} may stand only in the path or query, after the "
                                 "host: the site's address is no secret")
        try:
            filled = expand_env(url)
        except KeyError as e:
            raise r.error("url", f"environment variable {e.args[0]} is not set") from None
        if not is_http_url(filled):  # not echoed: it holds the secret
            raise r.error("url", f"{url!r}, as the environment fills it in, is no longer "
                                 "an http(s) URL")
    if "@" in urlsplit(url).netloc:  # not echoed: it holds a password
        raise r.error("url", "credentials in a URL are not sent (and would show wherever the "
                             "URL does): give them as a header instead, e.g. headers = "
                             '{ Authorization = "Basic ${NEWS_BASIC}" }')
    encoding = r.get("encoding", str, None)
    if encoding is not None:
        import codecs

        try:
            codecs.lookup(encoding)
        except LookupError:
            raise r.error("encoding", f"unknown encoding {encoding!r}") from None
    s = SourceConfig(
        name=name,
        kind=kind,
        url=url,
        every=_duration(r, "every", defaults.every),
        first_run=_first_run(r, "first_run", defaults.first_run),
        timezone=_timezone(r, "timezone", defaults.timezone),
        category_from_title=r.get("category_from_title", bool, False),
        encoding=encoding,
        enabled=r.get("enabled", bool, True),
        failures_before_alert=_positive(r, "failures_before_alert", int,
                                        defaults.failures_before_alert),
        # a watched page brings no new items after its first, only edits: never "silent"
        silent_after=(None if kind is SourceKind.PAGE
                      else _optional_duration(r, "silent_after", defaults.silent_after)),
        max_age=_optional_duration(r, "max_age", defaults.max_age),
        edits=_edits(r, defaults.edits),
        edits_match=_matching(r, "edits_match"),
        cron=_cron(r, "cron"),
        listing=_read_listing(r) if kind is SourceKind.HTML else None,
        page=_read_page(r) if kind is SourceKind.PAGE else None,
        follow=r.get("follow", bool, False),
        headers=_headers(r, "headers"),
    )
    if kind is SourceKind.FEED and "select" in r.data:
        raise r.error("select", "only an html or a page source has selectors")
    if kind is SourceKind.FEED and "pages" in r.data:
        raise r.error("pages", "only an html source has pages")
    if kind is SourceKind.PAGE and "silent_after" in r.data:
        raise r.error("silent_after", "a watched page brings no new items, only edits: "
                                      "silent_after does not apply to it")
    if kind is SourceKind.PAGE and s.follow:
        raise r.error("follow", "a watched page is read whole already: follow is for the "
                                "items of a feed or a listing")
    if s.cron is not None and "every" in r.data:
        raise r.error("cron", "give either 'every' or 'cron', not both")
    r.finish()
    return s


def _read_rule(r: _Reader) -> RuleConfig:
    name = _name(r, r.get("name", str, required=True))
    fields = r.str_list("fields", ("title", "summary"))
    for i, f in enumerate(fields):
        if f not in ITEM_FIELDS:
            raise r.error(f"fields[{i}]", f"unknown field {f!r} (one of {', '.join(ITEM_FIELDS)})")
    rule = RuleConfig(
        name=name,
        categories=r.str_list("categories"),
        match=_regex(r, "match"),
        fields=fields,
        exclude=_regex(r, "exclude"),
        sources=r.str_list("sources"),
    )
    if not rule.categories and rule.match is None and not rule.sources:
        # a rule of `sources` alone takes all their items ("everything the press office
        # publishes"); with none of the three it would take every item, which is `rules = []`
        raise r.error(None, "a rule needs 'categories', 'match' or 'sources' (or several)")
    r.finish()
    return rule


# Keys each channel reads; validated here so a typo is a config error, not a silent no-op.
_NOTIFIER_OPTIONS: dict[NotifierKind, dict[str, type | tuple[type, ...]]] = {
    NotifierKind.EMAIL: {"host": str, "port": int, "security": str, "username_env": str,
                         "password_env": str, "from": str, "to": list, "digest": bool,
                         "max_per_run": int, "timeout": (str, int, float),
                         "subject_prefix": str},
    NotifierKind.WEBHOOK: {"url": str, "secret_env": str, "max_per_run": int,
                           "timeout": (str, int, float), "format": str, "digest": bool,
                           "chat_id": (str, int)},
    NotifierKind.CONSOLE: {"digest": bool, "max_per_run": int},
    NotifierKind.COMMAND: {"command": list, "digest": bool, "max_per_run": int,
                           "timeout": (str, int, float), "input": str},
}
_REQUIRED_OPTIONS: dict[NotifierKind, tuple[str, ...]] = {
    NotifierKind.EMAIL: ("host", "from", "to"),
    NotifierKind.WEBHOOK: ("url",),
    NotifierKind.CONSOLE: (),
    NotifierKind.COMMAND: ("command",),
}
NOTIFY_ON = ("new", "changed")
# a webhook's body: the harvester's own JSON, or a chat or push service's message
WEBHOOK_FORMATS = ("standard", "slack", "discord", "teams", "ntfy", "telegram", "matrix")
# a Matrix room's message-sending endpoint, to which the channel adds the transaction id
_MATRIX_SEND = re.compile(r"/_matrix/client/(?:v3|r0)/rooms/[^/]+/send/m\.room\.message/?")
OPERATOR_EVENTS = ("source.failing", "source.recovered", "source.silent")
_NTFY_TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")  # what ntfy accepts as a topic name


def ntfy_endpoint(url: str) -> tuple[str, str] | None:
    """An ntfy topic URL ("https://ntfy.sh/icmpd-news") → (the server's URL to publish JSON
    to, the topic), as ntfy's JSON publishing wants them; None if the URL names no topic.
    A query (ntfy's ?auth=…) stays on the URL published to."""
    parts = urlsplit(url)
    folder, _, topic = parts.path.rstrip("/").rpartition("/")
    if not _NTFY_TOPIC.fullmatch(topic) or folder.endswith("/"):
        return None
    return urlunsplit(parts._replace(path=folder + "/", fragment="")), topic


def _read_notifier(r: _Reader, timezone: str, folder: Path) -> NotifierConfig:
    name = _name(r, r.get("name", str, required=True))
    kind_s = r.get("kind", str, required=True)
    try:
        kind = NotifierKind(kind_s)
    except ValueError:
        raise r.error("kind", f"expected one of {', '.join(k.value for k in NotifierKind)}, "
                              f"got {kind_s!r}{_kind_hint(kind_s, notifier=True)}") from None
    events = r.str_list("events")
    # an operators' channel (only `events`) hears no items unless it asks with `on`
    on = r.str_list("on", () if events else ("new",))
    for i, o in enumerate(on):
        if o not in NOTIFY_ON:
            raise r.error(f"on[{i}]", f"expected one of {', '.join(NOTIFY_ON)}, got {o!r}")
    for i, ev in enumerate(events):
        if ev not in OPERATOR_EVENTS:
            raise r.error(f"events[{i}]",
                          f"expected one of {', '.join(OPERATOR_EVENTS)}, got {ev!r}")
    opts: dict[str, Any] = {}
    for k, t in _NOTIFIER_OPTIONS[kind].items():
        v = r.get(k, t, None, required=k in _REQUIRED_OPTIONS[kind])
        if v is not None:
            opts[k] = tuple(v) if isinstance(v, list) else v
    if "timeout" in opts:  # as every other timeout: seconds, or a duration like "30s"
        opts["timeout"] = _seconds(r, "timeout", opts["timeout"])
    headers = _headers(r, "headers", webhook=True) if kind is NotifierKind.WEBHOOK else ()
    if kind is NotifierKind.EMAIL:
        if "port" in opts and not 0 < opts["port"] < 65536:
            raise r.error("port", f"expected a TCP port, 1 to 65535, got {opts['port']}")
        if opts.get("security", "starttls") not in ("none", "starttls", "tls"):
            raise r.error("security", f"expected one of none, starttls, tls, got "
                                      f"{opts['security']!r}")
        if not opts["to"]:
            raise r.error("to", "needs at least one address")
        prefix = opts.get("subject_prefix", "")
        if not prefix.isprintable() or len(prefix) > 50:
            raise r.error("subject_prefix", f"a subject prefix is one line of up to 50 "
                                            f"printable characters, got {prefix!r}")
        for i, addr in enumerate((opts["from"], *opts["to"])):
            if not is_mailbox(addr):
                raise r.error("from" if i == 0 else f"to[{i - 1}]",
                              f"{addr!r} is not an e-mail address (name@example.org, or "
                              "with a name: 'ICMPD watch <name@example.org>')")
    if kind is NotifierKind.WEBHOOK:
        # A chat service's webhook URL is its credential: `url = "${SLACK_HOOK}"` keeps it
        # in the environment. Checked here as the channel will expand it; the template is
        # what is kept, so no message, log or outbox row ever shows the secret.
        try:
            url = expand_env(opts["url"]).strip()
        except KeyError as e:
            raise r.error("url", f"environment variable {e.args[0]} is not set") from None
        shown = repr(opts["url"]) + (" (as the environment fills it in)"
                                     if url != opts["url"] else "")
        if (c := control_in(url)) is not None:
            raise r.error("url", _control_problem(shown, c))
        if bad_port(url):
            raise r.error("url", f"the port in {shown} is not a number from 1 to 65535")
        if not is_http_url(url):
            raise r.error("url", f"expected an http:// or https:// URL, got {shown}")
        if opts.get("format", "standard") not in WEBHOOK_FORMATS:
            raise r.error("format", f"expected one of {', '.join(WEBHOOK_FORMATS)}, got "
                                    f"{opts['format']!r}")
        if opts.get("format") == "ntfy" and ntfy_endpoint(url) is None:
            raise r.error("url", f"an ntfy URL ends in its topic, e.g. "
                                 f"https://ntfy.sh/icmpd-news; got {shown}")
        if opts.get("format") == "telegram":
            if not urlsplit(url).path.endswith("/sendMessage"):
                raise r.error("url", "a Telegram URL is its bot's sendMessage method, e.g. "
                                     '"https://api.telegram.org/bot${TELEGRAM_TOKEN}/sendMessage";'
                                     f" got {shown}")
            if "chat_id" not in opts:
                raise r.error("chat_id", 'format = "telegram" needs the chat to post to: its id '
                                         '(-1001234567890) or "@channelname"')
        elif "chat_id" in opts:
            raise r.error("chat_id", 'only format = "telegram" takes a chat_id')
        if opts.get("format") == "matrix":
            if not _MATRIX_SEND.fullmatch(urlsplit(url).path):
                raise r.error("url", "a Matrix URL is its room's send endpoint, e.g. "
                                     '"https://matrix.example.org/_matrix/client/v3/rooms/'
                                     f'!roomid:example.org/send/m.room.message"; got {shown}')
            if not any(h.lower() == "authorization" for h, _ in headers):
                raise r.error("headers", 'format = "matrix" needs the bot account\'s access '
                                         'token: headers = { Authorization = "Bearer '
                                         '${MATRIX_TOKEN}" }')
    if kind is NotifierKind.COMMAND and (
            not opts["command"] or not all(isinstance(a, str) for a in opts["command"])
            or not opts["command"][0].strip()):
        raise r.error("command", "expected the program and its arguments as a list of "
                                 'strings, e.g. ["/usr/local/bin/post-news", "--team", "press"]'
                                 f", got {list(opts['command'])!r}")
    if kind is NotifierKind.COMMAND and opts.get("input", "json") not in ("json", "text"):
        raise r.error("input", "expected json (the webhook's JSON) or text (the message as an "
                               f"email's text part reads), got {opts['input']!r}")
    if kind is NotifierKind.COMMAND and "/" in opts["command"][0]:
        # ./post-news.sh is the config's neighbour, as the database is; a bare name is
        # looked for on PATH when it runs
        opts["command"] = (str(folder / opts["command"][0]), *opts["command"][1:])
    if "max_per_run" in opts and opts["max_per_run"] < 1:
        raise r.error("max_per_run", f"must be positive, got {opts['max_per_run']}")
    at = None
    if "timezone" in r.data and "at" not in r.data:
        raise r.error("timezone", "only a notifier with `at` takes a timezone (the zone its "
                                  "time of day is read in)")
    if "at" in r.data:
        zone = _timezone(r, "timezone", timezone)
        try:
            at = parse_schedule(r.get("at", str), zone)
        except ValueError as e:
            raise r.error("at", str(e)) from None
    n = NotifierConfig(name=name, kind=kind, rules=r.str_list("rules"), on=on, events=events,
                       options=tuple(opts.items()), at=at, headers=headers)
    r.finish()
    return n


# what people write for `kind`, and what they mean
_FEED_WORDS = {"rss", "atom", "rdf", "json", "jsonfeed", "json_feed", "json-feed", "xml"}
_PROGRAM_WORDS = {"exec", "script", "shell", "program", "run", "cmd", "pipe", "sendmail"}
_PAGE_WORDS = {"listing", "web", "webpage", "website", "scrape", "css", "xpath"}
_MAIL_WORDS = {"smtp", "mail", "e-mail"}


def _kind_hint(kind: str, notifier: bool = False) -> str:
    k = kind.strip().lower()
    if not notifier and k in _FEED_WORDS:
        return ' (RSS, Atom, RDF and JSON Feed are all kind = "feed")'
    if not notifier and k in _PAGE_WORDS:
        return (' (an HTML listing page is kind = "html"; one page watched for edits, '
                'kind = "page")')
    if notifier and k in WEBHOOK_FORMATS and k != "standard":
        return f' (a chat or push service is kind = "webhook" with format = "{k}")'
    if notifier and k in _MAIL_WORDS:
        return ' (mail is kind = "email")'
    if notifier and k in _PROGRAM_WORDS:
        return ' (a program of yours is kind = "command", with command = ["program", …])'
    return ""


def _unknown_name(what: str, name: str, known: Iterable[str]) -> str:
    """"unknown source 'b' (sources: a, c)", or "(did you mean 'a'?)" for a near miss."""
    names = sorted(known)
    near = {n.strip().lower(): n for n in names}.get(name.strip().lower()) or next(
        iter(difflib.get_close_matches(name, names, n=1)), None)
    if near is not None:
        return f"unknown {what} {name!r} (did you mean {near!r}?)"
    shown = ", ".join(names[:10]) + (f", … ({len(names)} in all)" if len(names) > 10 else "")
    return f"unknown {what} {name!r} ({what}s: {shown or 'none defined'})"


def _tables(r: _Reader, k: str) -> list[_Reader]:
    v = r.get(k, list, [])
    out = []
    for i, t in enumerate(v):
        if not isinstance(t, dict):
            raise r.error(f"{k}[{i}]", f"expected a table ([[{k}]]), got {_type_name(t)}")
        out.append(_Reader(t, f"{k}[{i}]", r.file))
    return out


def parse_config(data: Mapping[str, Any], path: Path) -> Config:
    """Validate parsed TOML; relative paths resolve against the file's folder."""
    file = str(path)
    top = _Reader(data, "", file)
    storage_r = top.sub("storage")
    db = "harvester.db"
    keep_log: float | None = KEEP_LOG
    keep_versions: int | None = KEEP_VERSIONS
    if storage_r is not None:
        db = storage_r.get("path", str, db)
        keep_log = _keep(storage_r, "keep_log", KEEP_LOG)
        keep_versions = _count(storage_r, "keep_versions", KEEP_VERSIONS) or None
        storage_r.finish()
    http = _read_http(top.sub("http"))
    defaults = _read_defaults(top.sub("defaults"))

    included, include_dirs = _included(top, path)
    sources: list[SourceConfig] = []
    for reader in (top, *(_include_reader(f) for f in included)):
        for sr in _tables(reader, "sources"):
            s = _read_source(sr, defaults)
            if any(o.name == s.name for o in sources):
                raise sr.error("name", f"duplicate source name {s.name!r}")
            sources.append(s)
        if reader is not top:
            for k in reader.data:
                if k != "sources":
                    raise reader.error(k, "an included file holds [[sources]] tables only")

    rules: list[RuleConfig] = []
    for rr in _tables(top, "rules"):
        rule = _read_rule(rr)
        if any(o.name == rule.name for o in rules):
            raise rr.error("name", f"duplicate rule name {rule.name!r}")
        for i, sname in enumerate(rule.sources):
            if sname not in {s.name for s in sources}:
                raise rr.error(f"sources[{i}]",
                               _unknown_name("source", sname, (s.name for s in sources)))
        rules.append(rule)

    notifiers: list[NotifierConfig] = []
    rule_names = {r.name for r in rules}
    for nr in _tables(top, "notifiers"):
        n = _read_notifier(nr, defaults.timezone, path.parent)
        if any(o.name == n.name for o in notifiers):
            raise nr.error("name", f"duplicate notifier name {n.name!r}")
        for i, rn in enumerate(n.rules):
            if rn not in rule_names:
                raise nr.error(f"rules[{i}]", _unknown_name("rule", rn, rule_names))
        notifiers.append(n)
    delivery = _read_delivery(top.sub("delivery"))
    daemon = _read_daemon(top.sub("daemon"))
    top.finish()

    db_path = Path(os.path.expanduser(os.environ.get(DATABASE_ENV) or db))
    if not db_path.is_absolute():
        db_path = path.parent / db_path
    return Config(path=path, storage=StorageConfig(db_path, keep_log, keep_versions), http=http,
                  defaults=defaults, sources=tuple(sources), rules=tuple(rules),
                  notifiers=tuple(notifiers), delivery=delivery, daemon=daemon,
                  included=included,
                  watched=tuple(dict.fromkeys((path, *include_dirs, *included))))


def _included(top: _Reader, path: Path) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """The files `include = ["sources.d/*.toml"]` names, relative to the config's folder:
    each pattern's matches in name order, each file once. A pattern that names one file
    must find it; a wildcard may match nothing yet (an empty sources.d/). With them, the
    folders the patterns look in."""
    files: list[Path] = []
    folders: list[Path] = []
    for i, pattern in enumerate(top.str_list("include")):
        if "\0" in pattern:
            raise top.error(f"include[{i}]", "a file name cannot hold NUL")
        full = Path(os.path.expanduser(pattern))
        if not full.is_absolute():
            full = path.parent / full
        folders.append(full.parent)
        try:
            if glob.has_magic(pattern):
                found = sorted(Path(f) for f in glob.glob(str(full)) if Path(f).is_file())
            elif full.is_file():
                found = [full]
            else:
                raise top.error(f"include[{i}]", f"no such file: {full}")
            files += [f.resolve() for f in found if f.resolve() not in files]
        except OSError as e:  # a name too long, a folder it may not read
            raise top.error(f"include[{i}]", f"cannot read {full}: {e.strerror or e}") from None
    if path.resolve() in files:
        raise top.error("include", "a config file cannot include itself")
    return tuple(files), tuple(folders)


def _include_reader(file: Path) -> _Reader:
    return _Reader(_read_toml(file), "", str(file))


def _read_toml(path: Path, shown: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """A TOML file's tables; ConfigError naming the file when it cannot be read as TOML."""
    shown = str(shown or path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror or e}", file=shown) from None
    try:
        # utf-8-sig: a byte-order mark, as Windows editors write one, is not a TOML error
        return tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", file=shown) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"invalid TOML: {e}", file=shown) from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the config from `path`, else $HARVESTER_CONFIG, else ./harvester.toml."""
    if path is None:
        path = os.environ.get(CONFIG_ENV) or "harvester.toml"
        if not Path(path).exists():
            raise ConfigError(f"no configuration file: pass --config PATH or set {CONFIG_ENV}",
                              file=str(path))
    p = Path(path).resolve()
    return parse_config(_read_toml(p, shown=path), p)


__all__ = [
    "NAME_RULE", "Config", "DaemonConfig", "Defaults", "DeliveryConfig", "EditsTold", "FirstRun",
    "FirstRunMode", "HttpConfig", "ListingConfig", "NotifierConfig", "NotifierKind",
    "RuleConfig", "Schedule", "SourceConfig", "SourceKind", "StorageConfig", "env_refs",
    "expand_env", "filled_url", "header_problem", "is_name", "load_config", "ntfy_endpoint",
    "parse_config", "parse_duration", "parse_first_run", "parse_schedule",
]
