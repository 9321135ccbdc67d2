"""`harvester demo`: the whole pipeline on bundled fixtures, over loopback, in a temp dir.

Serves the ICMPD feed as it was on 15 May 2020, polls it (the baseline: stored,
not notified), switches to the 27 May snapshot, polls again and prints what is
new and what changed, with the rules each item matched. The listing pages go the same
way, and so does one article page watched whole (kind = "page"), whose edit is its news.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path

from .cli_format import describe_change
from .config import (
    NotifierConfig,
    NotifierKind,
    PageConfig,
    RuleConfig,
    SourceConfig,
    SourceKind,
    StorageConfig,
    load_config,
)
from .devserver import FixtureServer, Response
from .harvest import poll_sources, system_clock
from .models import ChangeKind, PollReport, PollStatus
from .notify import deliver
from .store import SqliteStore
from .words import counted

FEED_PATH = "/news-centre/rss"
LISTING_PATH = "/news-centre/"
PAGE_PATH = "/news-centre/news-detail/kyiv/"
SNAPSHOTS = (("icmpd-2020-05-a.rss", "a", "kyiv-a.html"),
             ("icmpd-2020-05-b.rss", "b", "kyiv-b.html"))


def _fixture(name: str, folder: str = "feeds") -> bytes:
    return (resources.files("harvester._fixtures") / folder / name).read_bytes()


def _serve_listing(server: FixtureServer, snapshot: str) -> None:
    for n in range(1, 6):
        page = Response(_fixture(f"news-{snapshot}-page-{n}.html", "listings"),
                        content_type="text/html; charset=utf-8")
        server.route(f"{LISTING_PATH}?page={n}", page)
        if n == 1:
            server.route(LISTING_PATH, page)


def _show(report: PollReport, store: SqliteStore, echo: Callable[[str], None],
          zone: str) -> None:
    """One source's poll, as the demo tells it: what was stored and each change (dated in
    the source's `zone`, as it gave its dates)."""
    if report.status is PollStatus.ERROR:
        raise SystemExit(f"demo poll failed: {report.error}")
    if report.baseline:
        echo(f"{report.source}: baseline — {counted(report.new, 'item')} stored, "
             "none notified (a new source never floods anyone)")
    elif report.status is PollStatus.NOT_MODIFIED:
        echo(f"{report.source}: not modified (HTTP {report.http_status})")
    else:
        echo(f"{report.source}: {report.new} new, {report.changed} changed, "
             f"{report.unchanged} unchanged")
        for ch in report.changes:
            if ch.kind is not ChangeKind.UNCHANGED:
                echo(describe_change(ch, store, zone))


def run_demo(echo: Callable[[str], None] = print) -> None:
    with tempfile.TemporaryDirectory(prefix="harvester-demo-") as tmp, FixtureServer() as server:
        conf_text = (resources.files("harvester._config") / "icmpd.toml").read_text("utf-8")
        conf_path = Path(tmp) / "icmpd.toml"
        conf_path.write_text(conf_text, "utf-8")
        config = load_config(conf_path)
        # an article page watched whole (its view counter is no edit), and a console
        # notifier, so the demo shows what a person would be told
        page = SourceConfig("icmpd-kyiv-article", SourceKind.PAGE, server.url(PAGE_PATH),
                            every=3600, first_run=config.defaults.first_run,
                            timezone=config.defaults.timezone,
                            page=PageConfig(remove=(".page-views",)))
        watched = RuleConfig("watched-pages", sources=(page.name,))
        console = NotifierConfig("demo-console", NotifierKind.CONSOLE,
                                 rules=("press-release", "project-launch", watched.name))
        config = replace(
            config,
            storage=StorageConfig(Path(tmp) / "demo.db"),
            sources=(*(replace(s, url=server.url(FEED_PATH if s.kind.value == "feed"
                                                 else LISTING_PATH))
                       for s in config.sources), page),
            rules=(*config.rules, watched),
            notifiers=(*config.notifiers, console),
        )
        store = SqliteStore(config.storage.path)
        try:
            echo(f"harvester demo: serving the bundled ICMPD feed, listing pages and an "
                 f"article page on {server.base} (config: icmpd.toml, and the article page "
                 f"watched whole; database in {tmp})")
            for step, (snapshot, listing, article) in enumerate(SNAPSHOTS, 1):
                server.route(FEED_PATH, Response(_fixture(snapshot)))
                _serve_listing(server, listing)
                server.route(PAGE_PATH, Response(_fixture(article, "pages"),
                                                 content_type="text/html; charset=utf-8"))
                echo(f"\n== poll {step}: the feed as in {snapshot}, the listing's snapshot "
                     f"{listing.upper()}, the article page as in {article}")
                for report in poll_sources(config, store):
                    _show(report, store, echo, config.zone_of(report.source))
                queued = len(store.outbox("pending"))
                if queued:
                    echo(f"notifications: {queued} queued, delivered to the console:")
                    echo(deliver(config, store, system_clock()).line())
            echo("\n== poll 3: nothing changed since")
            for report in poll_sources(config, store):
                _show(report, store, echo, config.zone_of(report.source))
            rows = store.items()
            alerted = [r for r in rows if r["rules"]]
            echo(f"\n{len(rows)} items stored; {len(alerted)} match a rule")
        finally:
            store.close()
