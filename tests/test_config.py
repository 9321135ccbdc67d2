"""Configuration: the documented shape loads; every mistake names file, key and problem."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harvester.config import (
    EditsTold,
    FirstRun,
    FirstRunMode,
    PageConfig,
    Schedule,
    SourceKind,
    load_config,
    parse_config,
    parse_duration,
    parse_schedule,
)
from harvester.errors import ConfigError

from .conftest import CONFIG_DIR, run_cli


def test_shipped_configs_load():
    icmpd = load_config(CONFIG_DIR / "icmpd.toml")
    assert [s.name for s in icmpd.sources] == ["icmpd-rss", "icmpd-news"]
    assert icmpd.sources[1].listing.item is None and icmpd.sources[1].listing.param == "page"
    src = icmpd.sources[0]
    assert src.url == "https://www.icmpd.org/news-centre/rss"
    assert src.category_from_title and src.timezone == "Europe/Vienna" and src.every == 1800
    assert src.first_run == FirstRun(FirstRunMode.BASELINE)
    assert [r.name for r in icmpd.rules] == ["press-release", "project-launch"]
    assert icmpd.storage.path == CONFIG_DIR / "icmpd.db"  # relative to the file's folder
    assert icmpd.storage.keep_versions == 100  # the default
    example = load_config(CONFIG_DIR / "example.toml")
    assert example.http.max_bytes == 10485760 and example.http.concurrency == 8
    page = example.sources[2]  # [defaults] silent_after is for sources of new items
    assert page.kind is SourceKind.PAGE and page.page == PageConfig(
        "main", (".page-views",), (re.compile(r"Last updated \d+ \w+ \d{4}"),))
    assert page.silent_after is None and example.sources[0].silent_after == 30 * 86400


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("0.5h", 1800)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_a_listings_date_formats_with_a_zone_pass_the_check(tmp_path: Path):
    path = tmp_path / "t.toml"
    path.write_text('[[sources]]\nname = "l"\nkind = "html"\nurl = "https://e.org/"\n'
                    '[sources.select]\ndate_formats = ["%d.%m.%Y %H:%M %z", "%d %B %Y %Z"]\n',
                    "utf-8")
    assert load_config(path).sources[0].listing.date_formats == ("%d.%m.%Y %H:%M %z",
                                                                 "%d %B %Y %Z")


def test_the_longest_duration_is_ten_years_unless_the_caller_lifts_it():
    assert parse_duration("3650d") == 3650 * 86400
    with pytest.raises(ValueError, match=r"^'3651d' is longer than 3650d"):
        parse_duration("3651d")
    assert parse_duration("99999999999d", longest=None) == 99999999999 * 86400


def test_every_timeout_takes_seconds_or_a_duration(tmp_path: Path):
    """Like `every` and `grace`: 30 or "30s", wherever a timeout is set."""
    path = tmp_path / "t.toml"
    path.write_text('[http]\ntimeout = "2m"\n[delivery]\ntimeout = 12.5\n'
                    '[[notifiers]]\nname = "hook"\nkind = "webhook"\nurl = "https://h.example/"\n'
                    'timeout = "5s"\n', "utf-8")
    config = load_config(path)
    assert (config.http.timeout, config.delivery.timeout) == (120.0, 12.5)
    assert config.notifiers[0].option("timeout") == 5.0


@pytest.mark.parametrize(("value", "kept"), [
    (None, 90 * 86400.0), ('"30d"', 30 * 86400.0), ("3600", 3600.0), ("0", None)])
def test_fetch_log_retention(tmp_path: Path, value, kept):
    path = tmp_path / "t.toml"
    path.write_text("[storage]\n" + (f"keep_log = {value}\n" if value else ""), "utf-8")
    assert load_config(path).storage.keep_log == kept


def test_a_sources_headers_take_values_from_the_environment(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HV_NEWS_TOKEN", "t0ken")
    path = tmp_path / "t.toml"
    path.write_text(GOOD_SOURCE + 'headers = { Authorization = "Bearer ${HV_NEWS_TOKEN}", '
                    'Cookie = "consent=yes; $HOME ${not a name}" }\n', "utf-8")
    [src] = load_config(path).sources
    assert src.headers == (("Authorization", "Bearer t0ken"),
                           ("Cookie", "consent=yes; $HOME ${not a name}"))
    assert "t0ken" not in repr(src)  # a logged config never shows it
    monkeypatch.setenv("HV_NEWS_TOKEN", "t0ken\n")  # as read from a secret file
    assert load_config(path).sources[0].headers[0] == ("Authorization", "Bearer t0ken")
    monkeypatch.setenv("HV_NEWS_TOKEN", "t0ken\r\nX-Injected: 1")
    with pytest.raises(ConfigError) as e:  # a line break from the environment is refused too
        load_config(path)
    assert "t0ken" not in str(e.value)


def test_a_webhook_takes_a_chat_format_and_digest(tmp_path: Path):
    path = tmp_path / "t.toml"
    path.write_text('[[notifiers]]\nname = "chat"\nkind = "webhook"\nurl = "https://h.example/"\n'
                    'format = "discord"\ndigest = true\n', "utf-8")
    [n] = load_config(path).notifiers
    assert (n.option("format"), n.option("digest")) == ("discord", True)


def test_a_webhooks_headers_take_values_from_the_environment(tmp_path: Path, monkeypatch):
    """A receiver that wants a token (n8n, Home Assistant, an API gateway) gets it from the
    environment; a webhook's If-None-Match or Accept-Encoding is nobody's business but its."""
    monkeypatch.setenv("HV_HOOK_TOKEN", "t0ken\n")
    path = tmp_path / "t.toml"
    path.write_text('[[notifiers]]\nname = "hook"\nkind = "webhook"\nurl = "https://h.example/"\n'
                    'headers = { Authorization = "Bearer ${HV_HOOK_TOKEN}", '
                    'Accept-Encoding = "identity" }\n', "utf-8")
    [n] = load_config(path).notifiers
    assert n.headers == (("Authorization", "Bearer t0ken"), ("Accept-Encoding", "identity"))
    assert "t0ken" not in repr(n)


@pytest.mark.parametrize(("text", "expected"), [
    ("08:00", Schedule(8, 0, "Europe/Vienna")),
    ("7:30", Schedule(7, 30, "Europe/Vienna")),
    ("Mon 07:30", Schedule(7, 30, "Europe/Vienna", (0,))),
    ("sunday 23:59", Schedule(23, 59, "Europe/Vienna", (6,))),
    # work days only: the weekend's news waits for Monday's digest
    ("mon-fri 08:00", Schedule(8, 0, "Europe/Vienna", (0, 1, 2, 3, 4))),
    ("Monday - Friday 8:00", Schedule(8, 0, "Europe/Vienna", (0, 1, 2, 3, 4))),
    ("weekdays 08:00", Schedule(8, 0, "Europe/Vienna", (0, 1, 2, 3, 4))),
    ("mon,thu 08:00", Schedule(8, 0, "Europe/Vienna", (0, 3))),
    ("fri-mon 18:00", Schedule(18, 0, "Europe/Vienna", (0, 4, 5, 6))),  # across the week's end
    ("weekends, wed 10:15", Schedule(10, 15, "Europe/Vienna", (2, 5, 6))),
    ("mon-sun 08:00", Schedule(8, 0, "Europe/Vienna")),  # every day is every day
])
def test_schedules(text, expected):
    assert parse_schedule(text, "Europe/Vienna") == expected


@pytest.mark.parametrize("text", ["8am", "mo 08:00", "mon- 08:00", "mon,,tue 08:00",
                                  "workdays 08:00", "mon 24:00", "mon-fri"])
def test_a_schedule_that_is_no_time_says_how_one_is_written(text):
    with pytest.raises(ValueError) as e:
        parse_schedule(text, "Europe/Vienna")
    assert str(e.value) == (f"{text!r} is not a time like '08:00', 'mon 08:00' or "
                            "'mon-fri 08:00'")


@pytest.mark.parametrize(("text", "said"), [
    ("08:00", "every day at 08:00 (UTC)"), ("mon 7:30", "every mon at 07:30 (UTC)"),
    ("mon-fri 08:00", "every mon-fri at 08:00 (UTC)"),
    ("mon,wed,fri,sat 08:00", "every mon,wed,fri,sat at 08:00 (UTC)"),
    ("sat-tue 09:00", "every mon,tue,sat,sun at 09:00 (UTC)")])
def test_a_schedule_says_itself_as_a_config_writes_it(text, said):
    assert str(parse_schedule(text, "UTC")) == said


VIENNA_8 = Schedule(8, 0, "Europe/Vienna")


@pytest.mark.parametrize(("schedule", "now", "expected"), [
    (VIENNA_8, "2020-05-28T05:00:00Z", "2020-05-28T06:00:00Z"),  # 07:00 CEST: today
    (VIENNA_8, "2020-05-28T06:00:00Z", "2020-05-28T06:00:00Z"),  # at the minute: now
    (VIENNA_8, "2020-05-28T06:00:01Z", "2020-05-29T06:00:00Z"),  # past it: tomorrow
    (VIENNA_8, "2020-03-28T07:30:00Z", "2020-03-29T06:00:00Z"),  # over the clock change
    (Schedule(8, 0, "Europe/Vienna", (0,)), "2020-05-28T05:00:00Z", "2020-06-01T06:00:00Z"),
    (Schedule(8, 0, "UTC", (3,)), "2020-05-28T09:00:00Z", "2020-06-04T08:00:00Z"),  # a week on
    # Friday evening, work days only: Monday morning, not Saturday's
    (Schedule(8, 0, "Europe/Vienna", (0, 1, 2, 3, 4)), "2020-05-29T16:00:00Z",
     "2020-06-01T06:00:00Z"),
    (Schedule(8, 0, "Europe/Vienna", (0, 1, 2, 3, 4)), "2020-05-26T16:00:00Z",
     "2020-05-27T06:00:00Z"),  # a Tuesday evening: Wednesday's
])
def test_a_schedules_next_time(schedule, now, expected):
    when = datetime.fromisoformat(now.replace("Z", "+00:00"))
    assert schedule.next_at(when).strftime("%Y-%m-%dT%H:%M:%SZ") == expected


GOOD_SOURCE = '[[sources]]\nname = "a"\nurl = "https://example.org/rss"\n'
PAGE_SOURCE = '[[sources]]\nname = "a"\nkind = "page"\nurl = "https://example.org/about"\n'


@pytest.mark.parametrize(("body", "key", "problem"), [
    (GOOD_SOURCE.replace("url", "urll"), "sources[0].urll", "unknown key (did you mean 'url'?)"),
    (GOOD_SOURCE + "category_from_title = 1\n", "sources[0].category_from_title",
     "expected true or false, got an integer 1"),
    ('[http]\ntimeout = "30"\n', "http.timeout",
     "'30' is not a duration like '90s', '15m', '2h' or '1d'"),
    ('[http]\ntimeout = true\n', "http.timeout",
     "expected a string or an integer or a number, got a boolean True"),
    ('[delivery]\ntimeout = 0\n', "delivery.timeout", "must be positive, got 0"),
    ('[http]\nconcurrency = 0\n', "http.concurrency", "must be positive, got 0"),
    ('[http]\nallow_networks = ["10.1.0.0/16", "intranet"]\n', "http.allow_networks",
     "'intranet' is not an IP network ('intranet' does not appear to be an IPv4 or IPv6 "
     "network)"),
    ('[http]\nallow_networks = "10.0.0.0/8"\n', "http.allow_networks",
     "expected a list, got a string '10.0.0.0/8'"),
    ('[http]\nproxy = "socks5://me:hunter2@proxy.corp:1080"\n', "http.proxy",
     "socks5 proxies are not supported, only http:// and https:// ones: "
     "'socks5://me:***@proxy.corp:1080'"),
    ('[http]\nproxy = "http://proxy.corp:3128/pac"\n', "http.proxy",
     "a proxy URL is scheme://host:port only, got 'http://proxy.corp:3128/pac'"),
    ('[http]\nno_proxy = "intranet"\n', "http.no_proxy", "expected a list, got a string 'intranet'"),
    (GOOD_SOURCE + GOOD_SOURCE, "sources[1].name", "duplicate source name 'a'"),
    (GOOD_SOURCE.replace("https://", "https://me:hunter2@"), "sources[0].url",
     "credentials in a URL are not sent (and would show wherever the URL does): give them as "
     'a header instead, e.g. headers = { Authorization = "Basic ${NEWS_BASIC}" }'),
    (GOOD_SOURCE + 'headers = { "Bad Name" = "x" }\n', 'sources[0].headers.Bad Name',
     "'Bad Name' is not an HTTP header name"),
    (GOOD_SOURCE + 'headers = { Accept-Encoding = "br" }\n', "sources[0].headers.Accept-Encoding",
     "the harvester sets this header itself (conditional GET, compression, connections)"),
    (GOOD_SOURCE + 'headers = { Cookie = "a=1", cookie = "b=2" }\n', "sources[0].headers.cookie",
     "given twice (header names are case-insensitive)"),
    (GOOD_SOURCE + 'headers = { X-Page = 2 }\n', "sources[0].headers.X-Page",
     "expected a string, got an integer"),
    (GOOD_SOURCE + 'headers = { Authorization = "Bearer ${HV_UNSET_TOKEN}" }\n',
     "sources[0].headers.Authorization", "environment variable HV_UNSET_TOKEN is not set"),
    (GOOD_SOURCE + 'headers = { X-Evil = "a\\r\\nHost: evil" }\n', "sources[0].headers.X-Evil",
     "a header value cannot hold a line break or NUL"),
    (GOOD_SOURCE + 'headers = { X-Token = "t\u20acken" }\n', "sources[0].headers.X-Token",
     "a header value can hold only visible ASCII or Latin-1 text (percent-encode the rest)"),
    (GOOD_SOURCE + 'headers = { X-Token = "t\\u0001ken" }\n', "sources[0].headers.X-Token",
     "a header value can hold only visible ASCII or Latin-1 text (percent-encode the rest)"),
    (GOOD_SOURCE + '[[rules]]\nname = "r"\nmatch = "(unclosed"\n', "rules[0].match",
     "bad regular expression '(unclosed': missing ), unterminated subpattern at position 0"),
    # TOML reads "\b" as a backspace: the rule would silently never match
    (GOOD_SOURCE + '[[rules]]\nname = "r"\nmatch = "(?i)\\blaunch(es|ed)?\\b"\n',
     "rules[0].match", '"\\b" in a "double-quoted" TOML string is a backspace, not a word '
     "boundary: write the pattern in 'single quotes' ('\\bword\\b'), or double each backslash "
     '("\\\\bword\\\\b")'),
    (GOOD_SOURCE + '[[rules]]\nname = "r"\nmatch = "x"\nexclude = "\\bcall\\b"\n',
     "rules[0].exclude", '"\\b" in a "double-quoted" TOML string is a backspace, not a word '
     "boundary: write the pattern in 'single quotes' ('\\bword\\b'), or double each backslash "
     '("\\\\bword\\\\b")'),
    (GOOD_SOURCE + '[[notifiers]]\nname = "n"\nkind = "console"\nrules = ["nope"]\n',
     "notifiers[0].rules[0]", "unknown rule 'nope' (rules: none defined)"),
    (GOOD_SOURCE + '[[rules]]\nname = "r"\nsources = ["b"]\n', "rules[0].sources[0]",
     "unknown source 'b' (sources: a)"),
    (GOOD_SOURCE + '[[rules]]\nname = "r"\nsources = ["A "]\n', "rules[0].sources[0]",
     "unknown source 'A ' (did you mean 'a'?)"),
    ('[defaults]\nevery = "often"\n', "defaults.every",
     "'often' is not a duration like '90s', '15m', '2h' or '1d'"),
    ('[defaults]\nfirst_run = "latest:0"\n', "defaults.first_run",
     "'latest:0' is not one of 'baseline', 'all' or 'latest:N' (N ≥ 1)"),
    ('[defaults]\ntimezone = "Mars/Base"\n', "defaults.timezone",
     "unknown time zone 'Mars/Base' (an IANA name like 'Europe/Vienna')"),
    # a zone mistyped or in the wrong case: the one it most likely meant
    ('[defaults]\ntimezone = "europe/vienna"\n', "defaults.timezone",
     "unknown time zone 'europe/vienna' (did you mean 'Europe/Vienna'?)"),
    ('[defaults]\ntimezone = "America/New York"\n', "defaults.timezone",
     "unknown time zone 'America/New York' (did you mean 'America/New_York'?)"),
    ('[[sources]]\nname = "a"\nurl = "ftp://example.org/rss"\n', "sources[0].url",
     "expected an http:// or https:// URL, got 'ftp://example.org/rss'"),
    ('[[sources]]\nname = "a"\nurl = "http://[intranet/rss"\n', "sources[0].url",
     "expected an http:// or https:// URL, got 'http://[intranet/rss'"),
    ('[[sources]]\nname = "a"\nurl = "http://127.0.0.1:99999/rss"\n', "sources[0].url",
     "the port in 'http://127.0.0.1:99999/rss' is not a number from 1 to 65535"),
    ('[[sources]]\nname = "a"\nurl = "https://example.org:0/rss"\n', "sources[0].url",
     "the port in 'https://example.org:0/rss' is not a number from 1 to 65535"),
    ('[[sources]]\nname = "a"\nurl = "https://example.org:https/rss"\n', "sources[0].url",
     "the port in 'https://example.org:https/rss' is not a number from 1 to 65535"),
    # a control character in a URL: no URL holds one (written as an escape, it would
    # reach requests and every display as it is)
    ('[[sources]]\nname = "a"\nurl = "https://example.org/r\\u001Bss"\n', "sources[0].url",
     "'https://example.org/r\\x1bss' holds a control character (U+001B): a URL has none; "
     "write it percent-encoded (%1B) if the site means one"),
    ('[[sources]]\nname = "a"\nurl = "https://example.org/rss\\t"\n', "sources[0].url",
     "'https://example.org/rss\\t' holds a control character (U+0009): a URL has none; "
     "write it percent-encoded (%09) if the site means one"),
    ('[[sources]]\nname = "a"\nurl = "https://example.org/\\u0085"\n', "sources[0].url",
     "'https://example.org/\\x85' holds a control character (U+0085): a URL has none; "
     "write it percent-encoded (%C2%85) if the site means one"),
    ('[[sources]]\nname = "a"\nkind = "carrier-pigeon"\nurl = "https://e.org/"\n',
     "sources[0].kind", "expected one of feed, html, page, got 'carrier-pigeon'"),
    ('[[sources]]\nname = "a"\nurl = "https://${HV_FEED_HOST}/rss"\n', "sources[0].url",
     "${NAME} may stand only in the path or query, after the host: the site's address is "
     "no secret"),
    (GOOD_SOURCE.replace("/rss", "/rss?key=${HV_UNSET_TOKEN}"), "sources[0].url",
     "environment variable HV_UNSET_TOKEN is not set"),
    (GOOD_SOURCE + 'kind = "RSS"\n', "sources[0].kind", "expected one of feed, html, page, got "
     "'RSS' (RSS, Atom, RDF and JSON Feed are all kind = \"feed\")"),
    (GOOD_SOURCE + 'kind = "listing"\n', "sources[0].kind", "expected one of feed, html, page, "
     "got 'listing' (an HTML listing page is kind = \"html\"; one page watched for edits, "
     "kind = \"page\")"),
    (GOOD_SOURCE + '[sources.select]\ncontent = "main"\n', "sources[0].select",
     "only an html or a page source has selectors"),
    (PAGE_SOURCE + '[sources.pages]\nmax = 2\n', "sources[0].pages",
     "a watched page is one page: only an html listing source has pages"),
    (PAGE_SOURCE + 'silent_after = "30d"\n', "sources[0].silent_after",
     "a watched page brings no new items, only edits: silent_after does not apply to it"),
    (PAGE_SOURCE + 'follow = true\n', "sources[0].follow",
     "a watched page is read whole already: follow is for the items of a feed or a listing"),
    (PAGE_SOURCE + '[sources.select]\nitem = "div.news"\n', "sources[0].select.item",
     "unknown key"),
    (PAGE_SOURCE + '[sources.select]\nremove = [".views", "a[["]\n', "sources[0].select.remove[1]",
     "bad selector 'a[[': Expected ident or '*', got <DELIM '[' at 2>"),
    (PAGE_SOURCE + '[sources.select]\nremove = ".views"\n', "sources[0].select.remove",
     "expected a list, got a string '.views'"),
    (PAGE_SOURCE + "[sources.select]\nignore = ['Read \\d+ times', '(unclosed']\n",
     "sources[0].select.ignore[1]",
     "bad regular expression '(unclosed': missing ), unterminated subpattern at position 0"),
    # a pattern that matches nothing at all would cut no text and flatten every element
    (PAGE_SOURCE + "[sources.select]\nignore = ['(views)?']\n", "sources[0].select.ignore[0]",
     "'(views)?' matches empty text too: give a pattern that needs at least one character"),
    (PAGE_SOURCE + '[sources.select]\nignore = "Read"\n', "sources[0].select.ignore",
     "expected a list, got a string 'Read'"),
    ('[[sources]]\nname = "l"\nkind = "html"\nurl = "https://e.org/"\n[sources.select]\n'
     "ignore = ['x']\n", "sources[0].select.ignore", "unknown key"),
    ('[[sources]]\nurl = "https://e.org/"\n', "sources[0].name", "is required"),
    ('[[sources]]\nname = "bad name!"\nurl = "https://e.org/"\n', "sources[0].name",
     "'bad name!' is not a valid name (letters, digits, '.', '_', '-'; up to 64)"),
    ('[[rules]]\nname = "r"\n', "rules[0]",
     "a rule needs 'categories', 'match' or 'sources' (or several)"),
    ('[[rules]]\nname = "r"\nmatch = "x"\nfields = ["body"]\n', "rules[0].fields[0]",
     "unknown field 'body' (one of title, summary, content, category, url, author)"),
    ('sources = "x"\n', "sources", "expected a list, got a string 'x'"),
    ('[storag]\npath = "x"\n', "storag", "unknown key (did you mean 'storage'?)"),
    ('[storage]\nkeep_log = "forever"\n', "storage.keep_log",
     "'forever' is not a duration like '90s', '15m', '2h' or '1d', or 0 to keep every row"),
    ('[storage]\nkeep_log = -1\n', "storage.keep_log",
     "must be a duration, or 0 to keep every row; got -1"),
    # past any sensible setting, and past what a date or a thread's wait holds: refused
    # here, not an OverflowError in the scheduler
    (GOOD_SOURCE + 'every = "99999999999d"\n', "sources[0].every",
     "'99999999999d' is longer than 3650d (ten years), the longest a setting takes"),
    ('[http]\ntimeout = inf\n', "http.timeout",
     "inf seconds is longer than 3650d (ten years), the longest a setting takes"),
    ('[daemon]\ngrace = nan\n', "daemon.grace", "must be positive, got nan"),
    ('[storage]\nkeep_log = 1e12\n', "storage.keep_log",
     "1000000000000.0 seconds is longer than 3650d (ten years), the longest a setting takes, "
     "or 0 to keep every row"),
    ('[storage]\nkeep_log = nan\n', "storage.keep_log",
     "must be a duration, or 0 to keep every row; got nan"),
    ('[http]\nretries = -1\n', "http.retries", "must be 0 or more, got -1"),
    ('[[notifiers]]\nname = "m"\nkind = "email"\nhost = "smtp.example.org"\nport = 99999\n'
     'from = "h@example.org"\nto = ["t@example.org"]\n', "notifiers[0].port",
     "expected a TCP port, 1 to 65535, got 99999"),
    # a directive Python does not know failed every date of the source, silently
    ('[[sources]]\nname = "l"\nkind = "html"\nurl = "https://e.org/"\n[sources.select]\n'
     'date_formats = ["%d.%m.%Y", "%Q %Y"]\n', "sources[0].select.date_formats[1]",
     "bad date format '%Q %Y': 'Q' is a bad directive in format '%Q %Y'"),
    ('[[sources]]\nname = "l"\nkind = "html"\nurl = "https://e.org/"\n[sources.pages]\n'
     'max = 100000\n', "sources[0].pages.max",
     "at most 1000 pages (each a request to the site on a first poll), got 100000"),
    # sent with every request: a line break in it was a traceback at the first fetch
    ('[http]\nuser_agent = "x\\r\\nX-Evil: 1"\n', "http.user_agent",
     "a header value cannot hold a line break or NUL"),
    ('[http]\nuser_agent = " "\n', "http.user_agent",
     "cannot be empty: servers refuse requests that name no client"),
    ('[[notifiers]]\nname = "n"\nkind = "console"\ntimezone = "Asia/Tokyo"\n',
     "notifiers[0].timezone",
     "only a notifier with `at` takes a timezone (the zone its time of day is read in)"),
    ('[http]\nmax_redirects = -3\n', "http.max_redirects", "must be 0 or more, got -3"),
    (GOOD_SOURCE + 'max_age = "a month"\n', "sources[0].max_age",
     "'a month' is not a duration like '90s', '15m', '2h' or '1d'"),
    ('[defaults]\nmax_age = 0\n', "defaults.max_age", "must be positive, got 0"),
    (GOOD_SOURCE + "edits_match = '(tender'\n", "sources[0].edits_match",
     "bad regular expression '(tender': missing ), unterminated subpattern at position 0"),
    (GOOD_SOURCE + "edits_match = 'x*'\n", "sources[0].edits_match",
     "'x*' matches empty text too: give a pattern that needs at least one character"),
    (GOOD_SOURCE + 'edits = "additions"\n', "sources[0].edits",
     "expected one of all, added, got 'additions'"),
    ('[defaults]\nedits = true\n', "defaults.edits", "expected a string, got a boolean True"),
    ('[storage]\nkeep_versions = -1\n', "storage.keep_versions", "must be 0 or more, got -1"),
    ('[storage]\nkeep_versions = "all"\n', "storage.keep_versions",
     "expected an integer, got a string 'all'"),
])
def test_config_errors_name_file_key_and_problem(tmp_path: Path, body, key, problem):
    expect_error(tmp_path, body, key, problem)


def expect_error(tmp_path: Path, body: str, key: str, problem: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body, "utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(exc.value) == f"{path}: {key}: {problem}"


def test_invalid_toml_and_missing_file(tmp_path: Path):
    path = tmp_path / "broken.toml"
    path.write_text("[storage\n", "utf-8")
    with pytest.raises(ConfigError, match=r"broken\.toml: invalid TOML: "):
        load_config(path)
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read: No such file"):
        load_config(tmp_path / "nope.toml")


def test_cli_config_error_exits_2_without_traceback(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD_SOURCE + GOOD_SOURCE, "utf-8")
    for cmd in (["check"], ["once"], ["items"], ["sources"]):
        r = run_cli("--config", str(path), *cmd)
        assert r.returncode == 2, (cmd, r.stderr)
        assert r.stderr == f"harvester: error: {path}: sources[1].name: duplicate source name 'a'\n"
        assert r.stdout == ""


def test_config_from_environment_variable(tmp_path: Path):
    path = tmp_path / "env.toml"
    path.write_text(GOOD_SOURCE, "utf-8")
    r = run_cli("check", env={"HARVESTER_CONFIG": str(path)})
    assert r.returncode == 0, r.stderr
    assert f"{path}: ok" in r.stdout
    assert "source a: feed https://example.org/rss every 30m, first run baseline" in r.stdout


def test_no_config_anywhere_is_a_clear_error(tmp_path: Path):
    r = run_cli("check", cwd=tmp_path)
    assert r.returncode == 2
    assert "no configuration file: pass --config PATH or set HARVESTER_CONFIG" in r.stderr


NOTIFIER = '[[notifiers]]\nname = "n"\n'


@pytest.mark.parametrize(("body", "key", "problem"), [
    (NOTIFIER + 'kind = "email"\nfrom = "a@b.org"\nto = ["c@d.org"]\n', "notifiers[0].host",
     "is required"),
    (NOTIFIER + 'kind = "slack"\nurl = "https://hooks.slack.com/x"\n', "notifiers[0].kind",
     "expected one of email, webhook, console, command, got 'slack' (a chat or push service is "
     "kind = \"webhook\" with format = \"slack\")"),
    (NOTIFIER + 'kind = "smtp"\n', "notifiers[0].kind",
     "expected one of email, webhook, console, command, got 'smtp' (mail is kind = \"email\")"),
    (NOTIFIER + 'kind = "exec"\n', "notifiers[0].kind",
     "expected one of email, webhook, console, command, got 'exec' (a program of yours is "
     "kind = \"command\", with command = [\"program\", …])"),
    (NOTIFIER + 'kind = "email"\nhost = "h"\nfrom = "a@b.org"\nto = ["c@d.org"]\n'
     'security = "ssl"\n', "notifiers[0].security",
     "expected one of none, starttls, tls, got 'ssl'"),
    (NOTIFIER + 'kind = "email"\nhost = "h"\nfrom = "a@b.org"\nto = ["c@d.org\\nBcc: e@f"]\n',
     "notifiers[0].to[0]", "'c@d.org\\nBcc: e@f' is not an e-mail address (name@example.org, or with a name: "
     "'ICMPD watch <name@example.org>')"),
    (NOTIFIER + 'kind = "email"\nhost = "h"\nfrom = "a@b.org"\nto = []\n', "notifiers[0].to",
     "needs at least one address"),
    (NOTIFIER + 'kind = "email"\nhost = "h"\nfrom = "a@b.org"\nto = ["c@d.org"]\n'
     'subject_prefix = "[News]\\nBcc: e@f"\n', "notifiers[0].subject_prefix",
     "a subject prefix is one line of up to 50 printable characters, got '[News]\\nBcc: e@f'"),
    (NOTIFIER + 'kind = "webhook"\nurl = "file:///etc/passwd"\n', "notifiers[0].url",
     "expected an http:// or https:// URL, got 'file:///etc/passwd'"),
    (NOTIFIER + 'kind = "webhook"\nurl = "https://h/\\u007F"\n', "notifiers[0].url",
     "'https://h/\\x7f' holds a control character (U+007F): a URL has none; write it "
     "percent-encoded (%7F) if the site means one"),
    (NOTIFIER + 'kind = "webhook"\nurl = "https://h/"\nsecret = "inline"\n',
     "notifiers[0].secret", "unknown key (did you mean 'secret_env'?)"),
    (NOTIFIER + 'kind = "console"\nevents = ["source.exploded"]\n', "notifiers[0].events[0]",
     "expected one of source.failing, source.recovered, source.silent, got 'source.exploded'"),
    (NOTIFIER + 'kind = "console"\non = ["deleted"]\n', "notifiers[0].on[0]",
     "expected one of new, changed, got 'deleted'"),
    (NOTIFIER + 'kind = "console"\nat = "8am"\n', "notifiers[0].at",
     "'8am' is not a time like '08:00', 'mon 08:00' or 'mon-fri 08:00'"),
    (NOTIFIER + 'kind = "console"\nat = "25:00"\n', "notifiers[0].at",
     "'25:00' is not a time like '08:00', 'mon 08:00' or 'mon-fri 08:00'"),
    (NOTIFIER + 'kind = "console"\nat = "someday 08:00"\n', "notifiers[0].at",
     "'someday 08:00' is not a time like '08:00', 'mon 08:00' or 'mon-fri 08:00'"),
    (NOTIFIER + 'kind = "console"\nat = "08:00"\ntimezone = "Mars/Base"\n',
     "notifiers[0].timezone", "unknown time zone 'Mars/Base' (an IANA name like 'Europe/Vienna')"),
    (NOTIFIER + 'kind = "webhook"\nurl = "https://h/"\nformat = "irc"\n',
     "notifiers[0].format",
     "expected one of standard, slack, discord, teams, ntfy, telegram, matrix, got 'irc'"),
    (NOTIFIER + 'kind = "webhook"\nurl = "https://ntfy.sh/"\nformat = "ntfy"\n',
     "notifiers[0].url",
     "an ntfy URL ends in its topic, e.g. https://ntfy.sh/icmpd-news; got 'https://ntfy.sh/'"),
    (NOTIFIER + 'kind = "webhook"\nurl = "https://h/"\ntimeout = "soon"\n',
     "notifiers[0].timeout", "'soon' is not a duration like '90s', '15m', '2h' or '1d'"),
    (NOTIFIER + 'kind = "console"\nmax_per_run = 0\n', "notifiers[0].max_per_run",
     "must be positive, got 0"),
    (NOTIFIER + 'kind = "webhook"\nurl = "https://h/"\nheaders = { Content-Type = "text/plain" }\n',
     "notifiers[0].headers.Content-Type", "the harvester sets this header itself (the body's "
     "type, the Standard Webhooks headers, connections)"),
    (NOTIFIER + 'kind = "webhook"\nurl = "https://h/"\nheaders = { webhook-signature = "v1,x" }\n',
     "notifiers[0].headers.webhook-signature", "the harvester sets this header itself (the "
     "body's type, the Standard Webhooks headers, connections)"),
    (NOTIFIER + 'kind = "webhook"\nurl = "https://h/"\nheaders = { X-Key = "${HV_UNSET_KEY}" }\n',
     "notifiers[0].headers.X-Key", "environment variable HV_UNSET_KEY is not set"),
    (NOTIFIER + 'kind = "webhook"\nurl = "https://h/"\nheaders = { X-Key = "a\\nb" }\n',
     "notifiers[0].headers.X-Key", "a header value cannot hold a line break or NUL"),
    (NOTIFIER + 'kind = "console"\nheaders = { X-Key = "k" }\n', "notifiers[0].headers",
     "unknown key"),
    ('[delivery]\nbackoff = "soon"\n', "delivery.backoff",
     "'soon' is not a duration like '90s', '15m', '2h' or '1d'"),
])
def test_notifier_config_errors(tmp_path: Path, body, key, problem):
    expect_error(tmp_path, body, key, problem)


def test_sources_can_live_in_included_files(tmp_path: Path):
    """include = ["sources.d/*.toml"]: one file per team or per import (`opml import`),
    read in name order after the main file's own sources."""
    (tmp_path / "sources.d").mkdir()
    (tmp_path / "sources.d" / "b.toml").write_text(
        '[[sources]]\nname = "b1"\nurl = "https://b.example/rss"\n', "utf-8")
    (tmp_path / "sources.d" / "a.toml").write_text(
        '[[sources]]\nname = "a1"\nurl = "https://a.example/rss"\n'
        '[[sources]]\nname = "a2"\nkind = "html"\nurl = "https://a.example/news/"\n', "utf-8")
    (tmp_path / "sources.d" / "notes.txt").write_text("not matched", "utf-8")
    path = tmp_path / "h.toml"
    path.write_text('include = ["sources.d/*.toml", "sources.d/a.toml", "empty.d/*.toml"]\n'
                    + GOOD_SOURCE + '[[rules]]\nname = "r"\nmatch = "x"\nsources = ["b1"]\n',
                    "utf-8")
    config = load_config(path)
    assert [s.name for s in config.sources] == ["a", "a1", "a2", "b1"]
    assert config.included == (tmp_path / "sources.d" / "a.toml", tmp_path / "sources.d" / "b.toml")


@pytest.mark.parametrize(("included", "key", "problem"), [
    ('[[sources]]\nname = "x"\nurll = "https://x.example/"\n', "sources[0].urll",
     "unknown key (did you mean 'url'?)"),
    ('[http]\ntimeout = 5\n', "http", "an included file holds [[sources]] tables only"),
    ('[[sources]]\nname = "a"\nurl = "https://x.example/"\n', "sources[0].name",
     "duplicate source name 'a'"),
])
def test_an_included_files_errors_name_that_file(tmp_path: Path, included, key, problem):
    (tmp_path / "more.toml").write_text(included, "utf-8")
    path = tmp_path / "h.toml"
    path.write_text('include = ["more.toml"]\n' + GOOD_SOURCE, "utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(exc.value) == f"{tmp_path / 'more.toml'}: {key}: {problem}"


def test_an_include_that_names_a_missing_file_or_itself_is_an_error(tmp_path: Path):
    expect_error(tmp_path, 'include = ["sources.d/news.toml"]\n', "include[0]",
                 f"no such file: {tmp_path / 'sources.d' / 'news.toml'}")
    expect_error(tmp_path, 'include = ["*.toml"]\n', "include",
                 "a config file cannot include itself")
    # found by fuzzing: pathlib raised ValueError for a NUL, OSError for a name too long
    expect_error(tmp_path, 'include = ["a\\u0000b.toml"]\n', "include[0]",
                 "a file name cannot hold NUL")
    long = "x" * 5000
    expect_error(tmp_path, f'include = ["{long}"]\n', "include[0]",
                 f"cannot read {tmp_path / long}: File name too long")
    (tmp_path / "broken.toml").write_text("[[sources]\n", "utf-8")
    (tmp_path / "h.toml").write_text('include = ["broken.toml"]\n', "utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "h.toml")
    assert str(exc.value) == (f"{tmp_path / 'broken.toml'}: invalid TOML: Expected ']]' at the "
                              "end of an array declaration (at line 1, column 10)")


def test_which_edits_are_told_defaults_to_all_and_may_be_set_in_defaults(tmp_path):
    path = tmp_path / "h.toml"
    path.write_text('[defaults]\nedits = "added"\n'
                    '[[sources]]\nname = "a"\nurl = "https://e.org/rss"\n'
                    '[[sources]]\nname = "b"\nurl = "https://e.org/b"\nkind = "page"\n'
                    'edits = "all"\n')
    assert [s.edits for s in load_config(path).sources] == [EditsTold.ADDED, EditsTold.ALL]
    path.write_text('[[sources]]\nname = "a"\nurl = "https://e.org/rss"\n')
    assert load_config(path).sources[0].edits is EditsTold.ALL


# -- any document at all: loaded, or one ConfigError naming file and key ------------------

def _documented() -> dict[str | None, dict[str, list]]:
    """config/example.toml's keys, table by table, each with the values it shows (written
    or commented out): what a document is made of, so the fuzzing reaches every check."""
    import tomllib

    keys: dict[str | None, dict[str, list]] = {}
    section = None
    for line in (CONFIG_DIR / "example.toml").read_text("utf-8").splitlines():
        text = line.strip().lstrip("#").strip()
        if m := re.match(r"\[\[?\s*([a-z_.]+)\s*\]\]?", text):
            section = m.group(1)
        elif m := re.match(r"([a-z_]+)\s*=\s*(.+)", text):
            for value in (m.group(2), m.group(2).split("  #")[0]):
                try:
                    keys.setdefault(section, {}).setdefault(m.group(1), []).append(
                        tomllib.loads(f"k = {value}")["k"])
                    break
                except tomllib.TOMLDecodeError:
                    continue
    return keys


_KEYS = _documented()
_WORDS = ["0s", "-1h", "1e400d", "http://127.0.0.1/", "ftp://x", "page", "sitemap",
          "Mars/Base", "25:00", "* * * * * *", "[", "(", "xpath://h3", "xpath:][", "all",
          "latest:0", "changed", "${HV_UNSET}", "", " ", "\x00"]
_SCALAR = st.one_of(st.sampled_from(_WORDS), st.text(max_size=12),
                    st.integers(-3, 2**70), st.floats(), st.booleans(), st.datetimes())
_VALUE = st.recursive(_SCALAR, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=2), max_leaves=6)


def _table(section: str | None, **fixed: object) -> st.SearchStrategy[dict]:
    shown = _KEYS[section]
    return st.lists(st.sampled_from(sorted(shown)).flatmap(
        lambda k: st.tuples(st.just(k), st.one_of(st.sampled_from(shown[k]), _VALUE))),
        max_size=4, unique_by=lambda kv: kv[0]).map(lambda kvs: {**fixed, **dict(kvs)})


_SOURCE = st.builds(lambda t, kind, select, pages: {**t, "kind": kind, **(
    {"select": select} if select else {}), **({"pages": pages} if pages else {})},
    _table("sources", name="s", url="https://www.icmpd.org/rss"),
    st.sampled_from(["feed", "html", "page", "sitemap"]),
    _table("sources.select"), _table("sources.pages"))
_DOCUMENT = st.fixed_dictionaries({}, optional={
    "storage": _table("storage"), "http": _table("http"), "defaults": _table("defaults"),
    "daemon": _table("daemon"), "delivery": _table("delivery"),
    "sources": st.lists(_SOURCE, max_size=2), "rules": st.lists(_table("rules"), max_size=2),
    "notifiers": st.lists(_table("notifiers", name="n"), max_size=2), "include": _VALUE})


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(_DOCUMENT)
def test_any_document_loads_or_is_one_error_naming_its_file(tmp_path, document):
    """Whatever a config holds — each documented key with a value of any type and size,
    in any table — it loads, or it is refused with a ConfigError that names the file:
    never another exception, which the command line would show as a traceback."""
    path = tmp_path / "harvester.toml"
    try:
        parse_config(document, path)
    except ConfigError as e:
        assert str(e).startswith(f"{path}: "), str(e)
