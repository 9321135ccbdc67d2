"""The command line: thin wrappers over config, harvest and store.

Exit codes: 0 success, 1 a source (or delivery) failed, 2 a config or usage error.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .config import (
    Config,
    EditsTold,
    FirstRunMode,
    NotifierConfig,
    NotifierKind,
    SourceConfig,
    SourceKind,
    load_config,
    parse_duration,
)
from .dates import iso_utc, parse_date, shown_when
from .errors import ConfigError, HarvesterError, StoreError, printable
from .harvest import (
    NEVER,
    next_due,
    poll_sources,
    prune_log,
    read_by_earlier_version,
    read_settings,
    settings_changed,
    split_due,
    system_clock,
)
from .models import PollReport, PollStatus, RawEntry
from .store import SqliteStore
from .words import counted, duration, is_count

if TYPE_CHECKING:
    from .starter import Found


class _Exit(click.ClickException):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # click reads it from the instance

    def show(self, file: Any = None) -> None:
        click.echo(f"harvester: error: {self.message}", err=True)


@contextmanager
def _errors() -> Iterator[None]:
    """Our errors become one line and an exit code, never a traceback."""
    try:
        yield
    except ConfigError as e:
        raise _Exit(str(e), 2) from None
    except HarvesterError as e:
        raise _Exit(str(e), 1) from None
    except UnicodeEncodeError as e:
        # an argument in bytes that are not UTF-8 (Python keeps them as surrogates): SQLite
        # and the output cannot take it
        bad = e.object[e.start:e.end].encode("utf-8", "surrogateescape") if isinstance(
            e.object, str) else b""
        raise _Exit(f"an argument is not UTF-8 text (it holds {bad!r})", 2) from None


def _config(ctx: click.Context) -> Config:
    with _errors():
        return load_config(ctx.obj["config_path"])


def _daemon_takes(config: Config, what: str) -> str:
    """When a running daemon acts on an edit of its config."""
    if config.daemon.watch_config:
        return f"a running daemon {what} within seconds (it watches its config's files)"
    return f"a running daemon {what} once it reloads (SIGHUP)"


def _included_name(config: Config, file: Path) -> str:
    """An included file as its config names it: from the config's folder."""
    folder = config.path.parent
    return str(file.relative_to(folder)) if file.is_relative_to(folder) else str(file)


# --limit, --last (and --entries, from 0): a count SQLite can take (its integers are
# 64-bit), and that anyone asking for "all" reaches
COUNT = click.IntRange(1, 1_000_000_000)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="HARVESTER_CONFIG", metavar="PATH",
              help="Configuration file (TOML). Default: $HARVESTER_CONFIG, else ./harvester.toml.")
@click.version_option(package_name="harvester")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Watch news feeds and listing pages; store every item once; say what is new."""
    ctx.obj = {"config_path": config_path}


@cli.command()
@click.option("--source", "source_names", multiple=True, metavar="NAME",
              help="Poll only this source (repeatable).")
@click.option("--dry-run", is_flag=True,
              help="Show what would be stored and notified; write nothing.")
@click.option("--due", is_flag=True,
              help="Only sources whose `every` or `cron` has come round since their last poll "
                   "(failing ones backed off as the daemon backs them off): for a cron job "
                   "run more often than its slowest sources.")
@click.pass_context
def once(ctx: click.Context, source_names: tuple[str, ...], dry_run: bool, due: bool) -> None:
    """Poll every (or the named) source once, then exit.

    A source another harvester process is polling right now is left to it. Exit 0 when
    every source succeeded, 1 when any failed (the others are still stored), 2 on a
    configuration or usage error."""
    config = _config(ctx)
    with _errors():
        sources = [config.source(n) for n in source_names] if source_names else None
        asked = config.sources if sources is None else sources
        if not any(s.enabled for s in asked):
            # said, not silent: an empty run from cron looks like a healthy one
            click.echo("no sources to poll: " + (
                f"disabled: {', '.join(s.name for s in asked)}" if asked
                else f"{config.path} has no [[sources]]"), err=True)
        # a dry run before the first poll writes no database file
        store = SqliteStore(config.storage.path, new_in_memory=dry_run)
    failed = False
    unclosed: StoreError | None = None
    # a line per source as it lands on a terminal; in one write for cron and pipes
    lines: list[str] = []
    emit = _echo_err if sys.stderr.isatty() else lines.append
    try:
        if due:
            enabled = [s for s in asked if s.enabled]
            with _errors():
                states = store.source_states([s.name for s in enabled])
            sources, later = split_due(enabled, states, system_clock(),
                                       config.daemon.backoff_max)
            if later:
                src, at = min(later, key=lambda pair: pair[1])
                when = "never (its cron line names no date)" if at == NEVER else (
                    f"at {iso_utc(at)}")
                emit(f"not due yet: {counted(len(later), 'source')} (the next, {src.name}, "
                     f"{when})")
        with _errors():
            for report in poll_sources(config, store, sources=sources, dry_run=dry_run):
                failed |= report.status is PollStatus.ERROR
                emit(report.line(dry_run=dry_run))
                if dry_run:
                    from .cli_format import describe_dry_run

                    src = config.source(report.source)
                    for line in describe_dry_run(report, config.zone_of(report.source), store,
                                                 page=src.kind is SourceKind.PAGE):
                        click.echo(line)
        if not dry_run:
            # not imported for --help, items, sources…
            from .notify.deliver import deliver, orphan_notes

            # deliver what this poll (or an earlier one) queued; a row waiting for a retry
            # is not a failure, a dead one is
            with _errors():
                delivery = deliver(config, store, system_clock())
            if delivery.acted:
                emit(delivery.line())
            for err in delivery.errors:
                emit(f"  {err}")
            for note in orphan_notes(delivery.orphaned):
                emit(f"delivery: {note}")
            failed |= delivery.dead > 0
            with _errors():
                prune_log(config, store, system_clock())
    finally:
        if lines:
            click.echo("\n".join(lines), err=True)
        try:
            store.close()  # writes what the store still holds
        except StoreError as e:  # said below; an error already on its way out goes first
            unclosed = e
    if unclosed is not None:
        raise _Exit(str(unclosed), 1)
    ctx.exit(1 if failed else 0)


def _echo_err(text: str) -> None:
    click.echo(text, err=True)


def _item_json(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "source", "sources", "title", "category", "url", "published", "summary",
            "rules", "tags", "first_seen", "last_seen", "version", "date_flag", "language",
            "guid", "content_hash")
    return {k: row[k] for k in keys}


def _since(text: str, timezone: str) -> str:
    """--since: a date (in the configured zone when it has none), or a duration back from
    now ("7d": what was published this past week)."""
    try:
        ago = parse_duration(text, longest=None)
    except ValueError:
        dt = parse_date(text, timezone)
        if dt is None:
            raise click.BadParameter(f"{text!r} is not a date (2020-05-01) or a time ago "
                                     "(7d, 12h)", param_hint="--since") from None
        return iso_utc(dt)
    try:
        return iso_utc(system_clock() - timedelta(seconds=ago))
    except OverflowError:  # further back than the calendar goes: everything
        return iso_utc(datetime.min.replace(tzinfo=UTC))


@cli.command()
@click.option("--source", metavar="NAME", help="Only items this source has seen.")
@click.option("--rule", metavar="NAME", help="Only items matching this rule.")
@click.option("--since", metavar="DATE|AGO",
              help="Only items published on or after DATE (2020-05-01), or within AGO "
                   "(7d, 12h).")
@click.option("--search", metavar="WORDS",
              help="Only items whose title, category, summary or content hold every word.")
@click.option("--limit", type=COUNT, help="At most this many items.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--atom", is_flag=True,
              help="An Atom feed of the selection, for a feed reader (50 items unless --limit).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header line, for a spreadsheet.")
@click.pass_context
def items(ctx: click.Context, source: str | None, rule: str | None, since: str | None,
          search: str | None, limit: int | None, as_json: bool, atom: bool,
          as_csv: bool) -> None:
    """List stored items, newest first."""
    if as_json + atom + as_csv > 1:
        raise click.UsageError("--json, --atom and --csv are formats: choose one")
    if atom and limit is None:
        from .atom import NEWEST

        limit = NEWEST
    config = _config(ctx)
    since_iso = _since(since, config.defaults.timezone) if since else None
    # written as they are read: a dump of the whole archive holds one item at a time
    with _errors(), SqliteStore(config.storage.path, read_only=True) as store:
        rows = store.iter_items(source=source, rule=rule, since=since_iso, limit=limit,
                                text=search)
        if atom:
            from .atom import atom_feed, selection

            title, feed_id = selection(source, rule, search)
            click.echo(atom_feed(list(rows), title=title, feed_id=feed_id), nl=False)
            return
        if as_csv:  # a header line even when nothing matched: a script reads the same shape
            from .export import csv_lines

            for line in csv_lines(rows):
                click.echo(line, nl=False)
            return
        shown = 0
        for row in rows:
            shown += 1
            if as_json:
                click.echo(json.dumps(_item_json(row), ensure_ascii=False))
                continue
            rules = f"  [{', '.join(row['rules'])}]" if row["rules"] else ""
            cat = f"{row['category']} · " if row["category"] else ""
            day = shown_when(row["published"], config.zone_of(row["source"]))[:10]
            click.echo(f"{day}  {row['source']:<16} {cat}{row['title']}{rules}")
            if row["url"]:
                click.echo(f"{'':12}{row['url']}")
    if not shown and not as_json:
        alone = not (source or since or search)
        click.echo("no items" + _unknown_names(config, source, rule, alone), err=True)


@cli.command()
@click.argument("ref", metavar="ID|URL")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object: the item, with its earlier versions.")
@click.pass_context
def show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """One stored item in full, by id or URL, and what each edit changed."""
    from .cli_format import describe_item
    from .urls import canonical_url

    config = _config(ctx)
    with _errors():
        with SqliteStore(config.storage.path, read_only=True) as store:
            # a pasted link still finds its item with a utm_ tag or a fragment on it
            found = store.items(ref=canonical_url(ref) or ref.strip())
            versions = store.versions_of([row["id"] for row in found])
        shown = [(row, versions.get(row["id"], [])) for row in found]
    if not shown:
        raise _Exit(f"no stored item with id or URL {ref!r} (`harvester items --json` gives"
                    " ids)", 1)
    for i, (row, history) in enumerate(shown):
        if as_json:
            out = {**_item_json(row), "content": row["content"], "versions": history}
            click.echo(json.dumps(out, ensure_ascii=False))
        else:
            click.echo(("\n" if i else "") + describe_item(row, history,
                                                          config.zone_of(row["source"])))


RETAG_SHOWN = 20  # items `retag` lists by name; the rest are counted


@cli.command()
@click.option("--dry-run", is_flag=True, help="Say what would change; write nothing.")
@click.pass_context
def retag(ctx: click.Context, dry_run: bool) -> None:
    """Apply the configured rules to every stored item again, so that after a rule is
    added or changed `items --rule` covers the history too. Nothing is notified."""
    from .cli_format import describe_retag
    from .retag import retag_store

    config = _config(ctx)
    with _errors(), SqliteStore(config.storage.path) as store:
        report = retag_store(store, config.rules, write=not dry_run, shown=RETAG_SHOWN)
    for line in describe_retag(report, [r.name for r in config.rules], dry_run,
                               config.zone_of):
        click.echo(line)


def _unknown_names(config: Config, source: str | None, rule: str | None,
                   alone: bool = False) -> str:
    """Why a filter may have matched nothing: a name the config does not know (a typo, or
    one since removed, whose stored items would still have been listed), or, when the rule
    is the only filter (`alone`), a rule newer than the items."""
    notes = ""
    for kind, name, known in (("source", source, [s.name for s in config.sources]),
                              ("rule", rule, [r.name for r in config.rules])):
        if name is not None and name not in known:
            notes += (f"; no {kind} named {name!r} in the config"
                      f" ({kind}s: {', '.join(known) or 'none'})")
        elif kind == "rule" and name is not None and alone:
            # no stored item at all carries it: a rule newer than the items, most likely
            notes += ("; a rule tags items as they arrive (`harvester retag` applies it to"
                      " those stored before)")
    return notes


SENT_SHOWN = 10  # sent rows `outbox` lists by default, the newest


@cli.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(["pending", "sent", "dead"]),
              help="Only rows in this state.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def outbox(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """The notifications queue: what waits (for its time, or a retry), what is dead, and the
    newest of what was sent (--status sent lists all of it)."""
    if ctx.invoked_subcommand is not None:
        return
    config = _config(ctx)
    keys = ("id", "notifier", "event", "item_id", "source", "status", "attempts", "created_at",
            "next_attempt_at", "sent_at", "last_error", "response")
    shown = 0
    # written as read: the history of sent rows grows with the news
    with _errors(), SqliteStore(config.storage.path, read_only=True) as store:
        from .notify.deliver import orphan_notes, orphaned, sooner

        disabled = store.disabled_notifiers()
        waiting = orphaned(config, store)
        # held news goes by the schedule configured now, as the next pass will send it
        moved = {(n, c, d): new for n, c, d, new in sooner(config.notifiers,
                                                              store.held(system_clock()))}
        # read by eye, the queue and the newest of its history: a year's sent rows would
        # bury what waits (--status sent, and --json, list every one)
        older = 0 if status or as_json else max(
            0, dict(store.outbox_counts()).get("sent", 0) - SENT_SHOWN)
        skipped = 0
        for row in store.iter_outbox(status):
            if row["status"] == "sent" and skipped < older:
                skipped += 1
                continue
            shown += 1
            if row["status"] == "pending" and row["attempts"] == 0:
                row = {**row, "next_attempt_at": moved.get(
                    (row["notifier"], row["created_at"], row["next_attempt_at"]),
                    row["next_attempt_at"])}
            if as_json:
                click.echo(json.dumps({k: row[k] for k in keys}, ensure_ascii=False))
                continue
            when = row["sent_at"] if row["status"] == "sent" else row["next_attempt_at"]
            click.echo(f"{row['id']}  {row['status']:<7} {row['notifier']:<12} "
                       f"{row['event']:<16} {row['item_id'] or ''}  attempts {row['attempts']}"
                       f"  {when or ''}")
            if row["last_error"] and row["status"] != "sent":
                click.echo(f"    last error: {printable(row['last_error'])}")
    if not as_json:
        if skipped:
            click.echo(f"{counted(skipped, 'older sent row')} not shown (`harvester outbox "
                       "--status sent` lists every one)", err=True)
        for name, reason in disabled.items():
            click.echo(f"notifier {name} is DISABLED: {reason}", err=True)
        for note in orphan_notes(waiting):
            click.echo(note, err=True)
        if not shown:
            click.echo("outbox is empty" if status is None else f"no {status} rows", err=True)


@outbox.command("retry")
@click.argument("ids", nargs=-1)
@click.option("--dead", is_flag=True, help="Re-queue every dead row.")
@click.pass_context
def outbox_retry(ctx: click.Context, ids: tuple[str, ...], dead: bool) -> None:
    """Re-queue rows (by id, or every dead one) for the next delivery pass; re-enables
    notifiers a 410 had disabled."""
    if not ids and not dead:
        raise click.UsageError("name the rows to retry, or pass --dead")
    config = _config(ctx)
    with _errors(), SqliteStore(config.storage.path) as store:
        for name in store.disabled_notifiers():
            store.enable_notifier(name)
        found = {r["id"]: r["status"] for r in store.outbox(ids=ids)} if ids else {}
        n = store.requeue(system_clock(), ids, dead=dead)
    click.echo(f"{counted(n, 'row')} re-queued")
    pending = [i for i in ids if found.get(i) == "pending"]
    if pending:
        click.echo(f"already pending: {', '.join(pending)}", err=True)
    unknown = [i for i in ids if i not in found]
    if unknown:  # a mistyped id must not pass for a retried row
        rows = "no outbox row with id" if len(unknown) == 1 else "no outbox rows with ids"
        raise _Exit(f"{rows} {', '.join(unknown)} (`harvester outbox` lists them)", 1)


@outbox.command("move")
@click.argument("old")
@click.argument("new")
@click.pass_context
def outbox_move(ctx: click.Context, old: str, new: str) -> None:
    """Send what waits for notifier OLD (its pending and dead rows) through NEW instead,
    due now: for a notifier renamed or replaced in the config."""
    from .diff import notification_id

    if old == new:
        raise click.UsageError("OLD and NEW name the same notifier")
    config = _config(ctx)
    if new not in {n.name for n in config.notifiers}:
        names = ", ".join(n.name for n in config.notifiers) or "none configured"
        raise _Exit(f"no notifier named {new!r} (notifiers: {names})", 2)
    with _errors(), SqliteStore(config.storage.path) as store:
        moved, dropped = store.move_notifications(
            old, new, system_clock(), lambda item, event, ref: notification_id(
                new, item, event, ref))
    click.echo(f"{counted(moved, 'row')} moved from {old} to {new}, due now")
    if dropped:
        click.echo(f"{counted(dropped, 'row')} {new} had already, dropped", err=True)


@outbox.command("drop")
@click.argument("notifier")
@click.pass_context
def outbox_drop(ctx: click.Context, notifier: str) -> None:
    """Delete what waits for NOTIFIER (its pending and dead rows), never to be sent: for a
    notifier removed from the config for good. What it sent stays, as history."""
    config = _config(ctx)
    with _errors(), SqliteStore(config.storage.path) as store:
        pending, dead = store.drop_notifications(notifier)
    click.echo(f"{counted(pending + dead, 'row')} dropped ({pending} pending, {dead} dead)")


@cli.command("notify-test")
@click.argument("notifier")
@click.pass_context
def notify_test(ctx: click.Context, notifier: str) -> None:
    """Send a test message through NOTIFIER's real channel and report the answer."""
    from .notify import Message, OutcomeKind, make_channel

    config = _config(ctx)
    cfg = next((n for n in config.notifiers if n.name == notifier), None)
    if cfg is None:
        names = ", ".join(n.name for n in config.notifiers) or "none configured"
        raise _Exit(f"no notifier named {notifier!r} (notifiers: {names})", 2)
    now = system_clock()
    msg = Message(id=f"test_{int(now.timestamp())}", notifier=notifier, event="test",
                  source="harvester", created_at=iso_utc(now),
                  data={"url": "", "error": "", "since": iso_utc(now)})
    outcome = make_channel(cfg, config).send([msg], digest=False)
    answer = outcome.response or outcome.detail or ""
    if outcome.kind is OutcomeKind.SENT:
        click.echo(f"{notifier}: sent ({answer})" if answer else f"{notifier}: sent")
        return
    raise _Exit(f"{notifier}: {outcome.kind.value}: {outcome.detail}", 1)


_HEALTH_KEYS = ("last_polled", "last_status", "last_success", "last_error", "last_error_at",
                "failing_since", "not_before", "baseline_at", "last_warning")


def _source_json(name: str, row: dict[str, Any] | None, configured: SourceConfig | None,
                 due: datetime | None) -> dict[str, Any]:
    failures = row["consecutive_failures"] if row else 0
    return {"name": name, "configured": configured is not None,
            "enabled": configured.enabled if configured else None,
            "kind": configured.kind.value if configured else row and row["kind"],
            "url": configured.url if configured else row and row["url"],
            "health": "never polled" if row is None else "failing" if failures else "ok",
            "consecutive_failures": failures, "items": row["items"] if row else 0,
            **{k: row[k] if row else None for k in _HEALTH_KEYS},
            "next_due": iso_utc(due) if due else None,
            "last_new_item": row["last_new_item"] if row else None,
            "last_edit": row["last_edit"] if row else None}


@cli.command()
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per source, for monitoring scripts.")
@click.pass_context
def sources(ctx: click.Context, as_json: bool) -> None:
    """Each source's health: last success, last error, failures in a row, items stored."""
    config = _config(ctx)
    with _errors(), SqliteStore(config.storage.path, read_only=True) as store:
        stored = {r["name"]: r for r in store.sources()}
        polled = [s for s in config.sources if s.name in stored]
        states = store.source_states([s.name for s in polled])
        due = {s.name: next_due(s, states[s.name], config.daemon.backoff_max) for s in polled}
    from .models import StoredSource
    from .renames import renamed

    # a source renamed in the config, not polled under its new name yet
    rows = [StoredSource(r["name"], r["url"], r["kind"], r["read_as"]) for r in stored.values()]
    heir = {old: new for new, old in renamed(config.sources, rows, read_settings).items()}
    if as_json:
        gone = sorted(set(stored) - {s.name for s in config.sources})
        for name, src in [*((s.name, s) for s in config.sources), *((n, None) for n in gone)]:
            changed = src is not None and name in states and settings_changed(src, states[name])
            click.echo(json.dumps(_source_json(name, stored.get(name), src, due.get(name))
                                  | {"settings_changed": changed}, ensure_ascii=False))
        return
    for s in config.sources:
        r = stored.get(s.name)
        off = "" if s.enabled else "disabled (enabled = false), "
        if r is None:
            click.echo(f"{s.name}: {off}never polled  {s.url}")
            continue
        health = "ok" if r["consecutive_failures"] == 0 else (
            f"FAILING ({r['consecutive_failures']} in a row)")
        click.echo(f"{s.name}: {off}{health}, {counted(r['items'], 'item')}  {s.url}")
        when = due.get(s.name)
        click.echo(f"    last success: {r['last_success'] or 'never'}"
                   f"    last poll: {r['last_polled']} ({r['last_status']})"
                   + (f"    next due: {iso_utc(when)}" if when else ""))
        if s.kind is SourceKind.PAGE and r["last_new"]:  # a page's news is its edits
            click.echo("    last edit: " + (
                r["last_edit"] or f"none since the baseline, {r['last_new']}"))
        elif r["last_new"]:
            click.echo("    last new item: " + (
                r["last_new_item"] or f"none since the baseline, {r['last_new']}"))
        if r["last_warning"]:
            click.echo(f"    warning:      {printable(r['last_warning'])}")
        if read_by_earlier_version(s, states[s.name]):  # an upgrade, not the config
            click.echo("    last read by an earlier harvester version: its next poll reads it "
                       "anew, and stored items it reads otherwise are updated silently")
        elif settings_changed(s, states[s.name]):
            click.echo("    settings changed since its last read: its next poll reads it anew, "
                       "and the edits that makes are not told")
        if r["last_error"]:
            click.echo(f"    last error:   {r['last_error_at']}  {printable(r['last_error'])}")
        if r["not_before"]:
            click.echo(f"    no request before {r['not_before']} (the server's Retry-After)")
    for name in sorted(set(stored) - {s.name for s in config.sources}):
        if name in heir:
            click.echo(f"{name}: no longer configured, {counted(stored[name]['items'], 'item')}"
                       f" kept: {heir[name]} reads the same URL, and its first poll takes them"
                       " over (renamed)")
            continue
        click.echo(f"{name}: no longer configured, {counted(stored[name]['items'], 'item')}"
                   f" kept (`harvester forget {name}` deletes its data)")


@cli.command("log")
@click.option("--source", metavar="NAME", help="Only this source's polls.")
@click.option("--last", default=20, show_default=True, type=COUNT, metavar="N",
              help="How many of the newest polls.")
@click.option("--status", type=click.Choice([s.value for s in PollStatus
                                             if s not in (PollStatus.WAITING,
                                                          PollStatus.BUSY)]),
              help="Only polls that ended so (error: the failures).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def log_(ctx: click.Context, source: str | None, last: int, status: str | None,
         as_json: bool) -> None:
    """The newest polls, oldest first: when, what came back, what was found, or why it
    failed, in the words `once` printed. Kept for [storage] keep_log."""
    config = _config(ctx)
    with _errors(), SqliteStore(config.storage.path, read_only=True) as store:
        rows = store.fetch_log(source, last=last, status=status)
    for row in rows:
        if as_json:
            row["baseline"] = bool(row["baseline"])
            click.echo(json.dumps(row, ensure_ascii=False))
            continue
        click.echo(f"{row['at']}  {PollReport.from_log(row).line()}")
    if not rows and not as_json:
        click.echo("no polls logged" + _unknown_names(config, source, None), err=True)


@cli.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the configuration and say what would be polled."""
    config = _config(ctx)
    with _errors():  # a wrong proxy variable fails the check before "ok" is said
        proxy = config.http.proxy_routes(os.environ).describe()
    click.echo(f"{config.path}: ok")
    keep = config.storage.keep_log
    click.echo(f"database: {config.storage.path}, fetch log "
               + (f"kept {duration(keep)}" if keep else "kept in full"))
    click.echo(f"proxy: {proxy}")
    if config.included:
        click.echo("sources also from: " + ", ".join(_included_name(config, f)
                                                     for f in config.included))
    if not config.sources:
        click.echo("sources: none yet (config/example.toml shows a [[sources]] table)")
    from .advice import source_warnings

    for warning in source_warnings(config):
        click.echo(f"  warning: {warning}", err=True)
    for s in config.sources:
        state = "" if s.enabled else " (disabled)"
        sent = f", sends {', '.join(n for n, _ in s.headers)}" if s.headers else ""  # not values
        # a cron line is the source's schedule (its `every` only spaces out failures)
        pace = f"on cron '{s.cron}' ({s.timezone})" if s.cron else f"every {duration(s.every)}"
        quiet = f", silent after {duration(s.silent_after)}" if s.silent_after else ""
        aged = (f", new items older than {duration(s.max_age)} not notified" if s.max_age
                else "")
        if s.edits_match is not None:
            aged += f", edits told only when they add words matching '{s.edits_match.pattern}'"
        elif s.edits is EditsTold.ADDED:
            aged += ", edits told only when they add words"
        click.echo(f"source {s.name}: {s.kind.value} {s.url} {pace},"
                   f" first run {s.first_run}{aged}{quiet}{sent}{state}")
    for r in config.rules:
        parts = []
        if r.categories:
            parts.append("categories " + ", ".join(r.categories))
        if r.match is not None:
            parts.append(f"match in {'/'.join(r.fields)}")
        if r.sources:
            parts.append("from " + ", ".join(r.sources))
        if r.exclude is not None:
            parts.append("with exclude")
        click.echo(f"rule {r.name}: {'; '.join(parts)}")
    if config.sources and not config.notifiers:
        click.echo("notifiers: none, so nobody is told of new items (`items` lists them; "
                   "config/example.toml shows a [[notifiers]] table)")
    for n in config.notifiers:
        what = (f"{', '.join(n.rules) or 'every item'}, on {'/'.join(n.on)}" if n.on
                else "no items")
        click.echo(f"notifier {n.name}: {n.kind.value}, {what}"
                   + (f", events {', '.join(n.events)}" if n.events else "")
                   + (f", {n.at}" if n.at else "")
                   + (f", sends {', '.join(h for h, _ in n.headers)}" if n.headers else "")
                   + (f", runs {shlex.join(n.option('command'))}"
                      if n.kind is NotifierKind.COMMAND else "")
                   + ("; it hears nothing (`on = []` and no `events`)"
                      if not (n.on or n.events) else ""))
        for warning in _secret_warnings(n) + _program_warnings(n):
            click.echo(f"  warning: {warning}", err=True)
        if "source.silent" in n.events and not any(s.silent_after for s in config.sources):
            click.echo("  warning: no source sets silent_after, so source.silent never comes "
                       "(silent_after = \"30d\" in [defaults] or a source)", err=True)


def _program_warnings(n: NotifierConfig) -> list[str]:
    """A command notifier's program that cannot be run from here: said now, not as dead
    rows after the first news."""
    import shutil

    program = n.option("command", ("",))[0]
    if n.kind is not NotifierKind.COMMAND or shutil.which(program):
        return []
    where = "" if "/" in program else " on PATH"
    return [f"program {program} is not found{where}, or cannot be run: its notifications "
            "would fail"]


def _secret_warnings(n: NotifierConfig) -> list[str]:
    """What is wrong with the secrets a notifier reads from the environment, named and
    never shown: found now rather than as rows waiting after the first news."""
    out = []
    for key in ("secret_env", "username_env", "password_env"):
        var = n.option(key)
        if not var:
            continue
        if var not in os.environ:
            out.append(f"environment variable {var} ({key}) is not set here: the "
                       "notifications wait until it is")
        elif key == "secret_env":
            from .notify.webhook import secret_bytes

            try:
                secret_bytes(os.environ[var])
            except ValueError as e:
                out.append(f"environment variable {var} is no signing secret: {e}")
    return out


@cli.command()
@click.argument("url")
@click.option("--entries", default=5, show_default=True,
              type=click.IntRange(0, COUNT.max),
              help="How many entries to show (0: the block alone).")
@click.option("-H", "--header", "header_args", multiple=True, metavar="'NAME: VALUE'",
              help="Send this header too (a token, a cookie), as curl -H does.")
@click.pass_context
def probe(ctx: click.Context, url: str, entries: int, header_args: tuple[str, ...]) -> None:
    """Find the repeated entries of a listing page at URL and print a ready
    [sources.select] block, with the first entries read through it, and the feeds the
    page announces. A feed at URL is said to be one, with its block: it needs no
    selectors."""
    from .config import HttpConfig
    from .detect import announced_feeds, detect, pages_block, pagination, toml_block
    from .fetch import Fetcher
    from .parse.html import login_form
    from .parse.listing import extract
    from .starter import common_feed, feed_entries, fetch_given

    headers = _header_options(header_args)
    http = HttpConfig()
    if ctx.obj["config_path"]:
        http = _config(ctx).http
    with _errors():
        fr = fetch_given(Fetcher(http), url, headers)
        feed = feed_entries(fr)
        if feed is not None:  # none yet is a feed too
            click.echo(_source_block("feed", url, headers))
            _echo_entries("a feed, not a listing page (no selectors needed): "
                          + (counted(len(feed), "entry", "entries") if feed
                             else "no entries yet"), feed, entries)
            return
        feeds = announced_feeds(fr.body, fr.url, content_type=fr.content_type)
        found = detect(fr.body, fr.url, content_type=fr.content_type)
        if found is None:
            guessed = None if feeds else common_feed(fr.url, Fetcher(http), headers)
            feed_url = feeds[0].url if feeds else guessed.url if guessed else None
            said = ("the page announces a feed" if feeds else "its site has a sitemap, which "
                    "reads as a feed of its pages" if guessed and guessed.sitemap
                    else "its site serves a feed")
            also = (f"; {said}: {feed_url} (try `harvester probe {feed_url}`)"
                    if feed_url else "")
            if not feed_url and login_form(fr.body):
                also = ("; it shows a login form: probe it with -H 'Authorization: Bearer "
                        "…' (or a Cookie) if it wants credentials")
            elif not feed_url:
                also = (f"; to watch the page itself for edits: harvester add --page {url}"
                        " (a source of kind = \"page\")")
            raise _Exit(f"found no repeated entries with a link and a date on {fr.url}{also}", 1)
        listing = extract(fr.body, url=fr.url, select=found,
                          content_type=fr.content_type)
        pages = pages_block(pagination(fr.body, fr.url, content_type=fr.content_type))
    click.echo(_source_block("html", url, headers) + "\n" + toml_block(found)
               + ("\n" + pages if pages else ""))
    _echo_entries(f"{len(listing.document.entries)} entries on this page",
                  listing.document.entries, entries)
    if feeds:  # a feed needs no selectors, and no redesign of the page breaks it
        click.echo("\n# feeds this page announces (no selectors needed; `harvester probe "
                   "FEED-URL` shows one's entries):")
        for f in feeds:
            click.echo(f"#   {f.url}  ({f.kind}" + (f": {f.title})" if f.title else ")"))


def _header_options(args: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """-H 'Name: value' options, checked as the config checks a source's headers."""
    return tuple((name, value) for name, value, _ in _header_args(args))


def _header_args(args: Sequence[str]) -> tuple[tuple[str, str, str], ...]:
    """-H 'Name: value' options as (name, value to send, value as given): `${NAME}` in a
    value is read from the environment, as in the config."""
    from .config import expand_env, header_problem

    out = []
    for arg in args:
        name, colon, given = (part.strip() for part in arg.partition(":"))
        problem, value = None if colon else "expected 'NAME: VALUE'", given
        if colon:
            try:
                value = expand_env(given).strip()
            except KeyError as e:
                problem = f"environment variable {e.args[0]} is not set"
        problem = problem or header_problem(name, value)
        if problem:
            raise click.BadParameter(f"{name[:40]!r}: {problem}", param_hint="'-H' / '--header'")
        out.append((name, value, given))
    return tuple(out)


def _source_block(kind: str, url: str, headers: Sequence[tuple[str, str]] = ()) -> str:
    from .opml import source_block

    block = source_block("CHANGE-ME", kind, url).rstrip("\n")
    if headers:
        from .starter import headers_line

        # the values stay out of the config (and of this output): each from a variable
        env = {n: re.sub(r"[^A-Za-z0-9]", "_", n).upper() for n, _ in headers}
        line = headers_line([(n, f"${{{var}}}") for n, var in env.items()]).rstrip("\n")
        block += f"\n{line}  # set {', '.join(env.values())} in the environment"
    return block


def _what_found(found: Found) -> str:
    """What init and add say of a source they found: its kind, what it holds now, a note."""
    how = (found.kind.value if found.kind is SourceKind.PAGE
           else f"{found.kind.value}, {counted(found.entries, 'entry', 'entries')} now")
    return how + (f"; {found.note}" if found.note else "")


def _restless_lines(name: str, found: Found) -> list[str]:
    """What init and add say of a watched page that read otherwise at a second visit."""
    r = found.restless
    if r is None:
        return []
    lines = [f"  {name}: the page read otherwise at a second visit a moment later, so each "
             "poll would tell an edit:", *(f"    {printable(line)}" for line in r.lines)]
    if r.ignore:
        from .starter import toml_pattern

        lines.append("  written with ignore = [" + ", ".join(map(toml_pattern, r.ignore))
                     + "], which reads both visits the same")
    else:
        lines.append("  `remove` the element that changes, or `ignore` its text, in its "
                     "[sources.select] (README: Watched pages)")
    return lines


def _echo_entries(what: str, found: Sequence[RawEntry], n: int) -> None:
    if not found:
        click.echo(f"\n# {what}")
        return
    click.echo(f"\n# {what}; the first {min(n, len(found))}:")
    for e in found[:n]:  # as the site wrote them, before normalising: shown as text only
        cat = f" [{printable(e.categories[0])}]" if e.categories else ""
        click.echo(f"#   {printable(e.published or '(no date)')}{cat} "
                   f"{printable(e.title or '')}\n#     {printable(e.link or '')}")


@cli.command()
@click.argument("urls", nargs=-1, metavar="URL...")
@click.option("--page", "pages", is_flag=True, help="Watch each URL as one page whose edits "
              "are the news (kind = \"page\"), not as a feed or a listing.")
@click.pass_context
def init(ctx: click.Context, urls: tuple[str, ...], pages: bool) -> None:
    """Write a first config (--config, else ./harvester.toml) watching each URL: a feed, a
    page announcing one, or a listing page read with the selectors found on it (with
    --page: the page itself, for edits). Never overwrites a file."""
    from .config import HttpConfig
    from .fetch import Fetcher
    from .starter import config_text, local_timezone, survey

    target = Path(ctx.obj["config_path"] or "harvester.toml")
    if target.exists():
        raise _Exit(f"{target} exists: init writes a new config and never overwrites one "
                    "(edit it, or give --config another path)", 2)
    seen = survey(urls, Fetcher(HttpConfig()), pages=pages)
    if seen.failed:  # nothing is written: a config missing a source the user named is a trap
        raise _Exit("nothing written; " + "; ".join(seen.failed), 1)
    with _errors():
        text = config_text(seen.found, timezone=local_timezone())
    try:
        with open(target, "x", encoding="utf-8") as f:  # "x": not even a file made meanwhile
            f.write(text)
    except OSError as e:
        raise _Exit(f"cannot write {target}: {e.strerror or e}", 1) from None
    click.echo(f"wrote {target}: {counted(len(seen.found), 'source')}")
    for found in seen.found:
        click.echo(f"  {found.url}  ({_what_found(found)})")
        for line in _restless_lines(found.url, found):
            click.echo(line)
    for line in seen.repeats:
        click.echo(f"  {line}")
    click.echo(f"next: harvester --config {target} once   (a first poll stores what is there "
               "silently; what comes after is news)")


@cli.command()
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@click.option("--name", metavar="NAME", help="The source's name (one URL only); else one "
              "made from the URL.")
@click.option("--to", "to", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Append to FILE, a file the config includes (made if missing), not to the "
              "config itself.")
@click.option("--print", "show", is_flag=True, help="Print the [[sources]] tables; write "
              "nothing.")
@click.option("-H", "--header", "header_args", multiple=True, metavar="'NAME: VALUE'",
              help="Send this header (a token, a cookie) to the URL's site, now and on every "
                   "poll: written into the source as given, so give a secret as ${NAME}, "
                   "read from the environment (repeatable).")
@click.option("--page", "pages", is_flag=True, help="Watch each URL as one page whose edits "
              "are the news (kind = \"page\"), not as a feed or a listing.")
@click.pass_context
def add(ctx: click.Context, urls: tuple[str, ...], name: str | None, to: Path | None,
        show: bool, header_args: tuple[str, ...], pages: bool) -> None:
    """Add sources to the config, each URL examined as init does: a feed, a page announcing
    one, or a listing page with the selectors found on it (with --page: the page itself,
    for edits). URLs it polls already are said and left out; nothing is written when a URL
    is no source."""
    from .config import NAME_RULE, is_name
    from .configfile import appended, rewrite_verified
    from .fetch import Fetcher
    from .starter import plan_addition, survey

    if name is not None and len(urls) > 1:
        raise _Exit("--name names one source: give one URL with it", 2)
    if name is not None and not is_name(name):
        raise _Exit(f"--name: {name!r} is not a valid name ({NAME_RULE})", 2)
    given = Path(ctx.obj["config_path"] or "harvester.toml")  # as load_config finds it
    if not given.exists():
        raise _Exit(f"no config at {given} to add to: `harvester init URL…` writes a first one",
                    2)
    config = _config(ctx)
    headers = _header_args(header_args)
    # a URL given twice is one; the harvester's own HTTP settings, as its polls will fetch
    seen = survey(tuple(dict.fromkeys(urls)), Fetcher(config.http),
                  tuple((n, v) for n, v, _ in headers), pages=pages)
    if seen.failed:  # a config missing a source the user named is a trap
        raise _Exit("nothing written; " + "; ".join(seen.failed), 1)
    with _errors():
        plan = plan_addition(seen.found, config.sources, name,
                             tuple((n, given) for n, _, given in headers))
    if show:
        click.echo(plan.text, nl=False)
    elif plan.added:
        target = to or given
        names = [n for n, _ in plan.added]

        def verify() -> None:
            polled = {s.name for s in load_config(config.path).sources}
            if not polled.issuperset(names):
                raise ConfigError(f"{target} is not among the files {given} includes (its "
                                  "include = [...] names them); nothing written")

        try:
            with _errors():
                rewrite_verified({target: lambda old: appended(old, plan.text)}, verify,
                                 not_toml="cannot take [[sources]] tables at its end")
        except OSError as e:
            raise _Exit(f"cannot write {target}: {e.strerror or e}", 1) from None
        click.echo(f"added {counted(len(names), 'source')} to {target}:")
    out = click.echo if not show else partial(click.echo, err=True)
    for n, f in plan.added:
        out(f"  {n}  {f.url}  ({_what_found(f)})")
        for line in _restless_lines(n, f):
            out(line)
    for line in (*plan.watched, *seen.repeats):
        out(f"  {line}")
    if plan.added and (bare := [n for n, v, given in headers if v == given]):
        out(f"  note: {', '.join(bare)} written as given, not as ${{NAME}} from the "
            "environment: a secret is better kept out of the file")
    if not plan.added:
        out("nothing added: the config polls each of these already")
    elif not show:
        first = config.defaults.first_run
        how = ("stores what is there silently" if first.mode is FirstRunMode.BASELINE
               else f"notifies as first_run = {str(first)!r} says")
        command = " ".join(["harvester", *(["--config", str(given)] if ctx.obj["config_path"]
                                           else []), "once",
                            *(f"--source {n}" for n in names)])
        out(f"next: {command}   (a first poll {how}); {_daemon_takes(config, 'polls them')}")


def _configured(config: Config, names: Sequence[str]) -> None:
    """Exit 2 naming the first of `names` the config has no source of."""
    known = {s.name for s in config.sources}
    for name in names:
        if name not in known:
            raise _Exit(f"no source named {name!r} in the config (`check` lists them)", 2)


def _rewrite_sources(ctx: click.Context, config: Config, names: set[str],
                     edit: Callable[..., str], expected: Config, *, failed: str,
                     not_toml: str) -> dict[str, set[str]]:
    """`edit(text, names=…, shown=…)` each file of the config (its own, an included one)
    that holds some of `names`, checked: the config read again must be `expected` (else
    ConfigError `failed`, and every file put back). {file as shown: the names it held}."""
    from .configfile import rewrite_verified, sources_in

    given = Path(ctx.obj["config_path"] or "harvester.toml")  # as load_config found it
    shown = {config.path: str(given), **{f: _included_name(config, f) for f in config.included}}
    with _errors():
        holders = {f: ns for f in shown if (ns := sources_in(f, shown[f]) & names)}

    def verify() -> None:
        if load_config(config.path) != expected:
            raise ConfigError(failed, file=str(given))

    changes = {f: partial(edit, names=ns, shown=shown[f]) for f, ns in holders.items()}
    try:
        with _errors():
            rewrite_verified(changes, verify, not_toml=not_toml, shown=shown)
    except OSError as e:
        raise _Exit(f"cannot write the config: {e.strerror or e}", 1) from None
    return {shown[f]: ns for f, ns in holders.items()}


@cli.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.pass_context
def remove(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Take sources out of the config (or the included file that holds them): their tables
    go, with the comments just above them; the rest of the text stays as it was. Their
    stored items stay in the database."""
    from dataclasses import replace

    from .configfile import without_sources

    config = _config(ctx)
    _configured(config, names)
    gone = set(names)
    for rule in config.rules:
        if named := [n for n in rule.sources if n in gone]:
            raise _Exit(f"rule {rule.name!r} names {named[0]!r} in its sources: take it out "
                        "of there first; nothing changed", 2)
    expected = replace(config, sources=tuple(s for s in config.sources if s.name not in gone))
    done = _rewrite_sources(ctx, config, gone, without_sources, expected,
                            failed="the config read again was not the one without those "
                                   "sources (a table that does not end where it seems to?): "
                                   "edit it by hand; nothing changed",
                            not_toml="would not be TOML without those tables")
    for file, ns in done.items():
        for name in sorted(ns, key=names.index):
            click.echo(f"removed {name} from {file}; its stored items stay in the database "
                       f"(items --source {name} lists them, forget {name} deletes them)")
    click.echo(_daemon_takes(config, "stops polling them"))


@cli.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.pass_context
def disable(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Stop polling sources but keep them: `enabled = false` goes into each one's table (or
    the included file's), dated; their items and health stay. `enable` polls them again."""
    _switch(ctx, names, enabled=False)


@cli.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.pass_context
def enable(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Poll disabled sources again: the `enabled = false` line goes from each one's table."""
    _switch(ctx, names, enabled=True)


def _switch(ctx: click.Context, names: tuple[str, ...], *, enabled: bool) -> None:
    """Write `enabled` for these sources into the files that hold them, checked as `remove`
    checks: the config read again must be the one asked for, else every file is put back."""
    from dataclasses import replace

    from .configfile import with_enabled

    config = _config(ctx)
    _configured(config, names)
    by_name = {s.name: s for s in config.sources}
    word = "enabled" if enabled else "disabled"
    todo = {n for n in names if by_name[n].enabled != enabled}
    for name in dict.fromkeys(names):
        if name not in todo:
            click.echo(f"{name} is {word} already")
    if not todo:
        return
    expected = replace(config, sources=tuple(
        replace(s, enabled=enabled) if s.name in todo else s for s in config.sources))
    note = f"harvester disable, {system_clock().date().isoformat()}"
    done = _rewrite_sources(ctx, config, todo, partial(with_enabled, enabled=enabled, note=note),
                            expected,
                            failed=f"the config read again was not the one with those sources "
                                   f"{word} (an `enabled` line that is not what it seems?): "
                                   "edit it by hand; nothing changed",
                            not_toml="would not be TOML with that `enabled` line")
    for file, ns in done.items():
        for name in sorted(ns, key=names.index):
            click.echo(f"{word} {name} in {file}" + (
                "" if enabled else f" (its items and health stay; `harvester enable {name}` "
                "polls it again)"))
    click.echo(_daemon_takes(config, "polls them" if enabled else "stops polling them"))


@cli.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@click.pass_context
def forget(ctx: click.Context, names: tuple[str, ...], dry_run: bool) -> None:
    """Delete what the database holds of sources no longer in the config: their items
    (with earlier versions and notifications), their log and health. An item another
    source has seen too stays, as that source's. `remove` takes a source out of the
    config first; `backup` keeps a copy."""
    config = _config(ctx)
    for name in names:
        if any(s.name == name for s in config.sources):
            raise _Exit(f"{name!r} is still in the config: `harvester remove {name}` takes it "
                        "out first (forget deletes what a source no longer polled left)", 2)
    db = Path(config.storage.path)
    if not db.exists():
        raise _Exit(f"no database at {db} yet: nothing is stored", 2)
    with _errors(), SqliteStore(db) as store:
        forgotten = store.forget(names, dry_run=dry_run)  # all or, with one missing, none
    if missing := next((f.source for f in forgotten if not f.stored), None):
        raise _Exit(f"nothing is stored for {missing!r} (`sources` lists what is); "
                    "nothing deleted", 2)
    for f in forgotten:
        text = (f"{'would forget' if dry_run else 'forgot'} {f.source}: "
                f"{counted(f.items, 'item')}, {counted(f.versions, 'earlier version')}, "
                f"{counted(f.notifications, 'notification')}, "
                f"{counted(f.polls, 'poll')} of its log")
        if f.kept:
            text += (f"; {counted(f.kept, 'item')} other sources have seen too "
                     f"{'would stay' if dry_run else 'stayed'}")
        click.echo(text)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.pass_context
def backup(ctx: click.Context, file: Path) -> None:
    """Copy the database to FILE, safely while the harvester runs: a consistent snapshot,
    compacted and checked. A backup already at FILE is replaced only by a whole one."""
    config = _config(ctx)
    db = Path(config.storage.path)
    if not db.exists():
        raise _Exit(f"no database at {db} yet: nothing has been polled", 1)
    from .store import backup_database

    with _errors():  # not through SqliteStore: that would migrate an older schema first
        items, size = backup_database(db, file)
    click.echo(f"backed up {counted(items, 'item')} to {file} ({size / 2**20:.1f} MiB, checked)")


@cli.command()
@click.option("--http", metavar="HOST:PORT",
              help="Serve /healthz, /metrics and a status page (off by default).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: one object a line, for containers.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True,
              help="warning: only what needs a look, not every poll that went well.")
@click.pass_context
def run(ctx: click.Context, http: str | None, log_format: str, log_level: str) -> None:
    """Run as a daemon: poll every source on its schedule and deliver notifications.

    SIGTERM/SIGINT stop it cleanly (exit 0); SIGHUP reloads the configuration."""
    from .daemon import run_daemon

    port = http.rpartition(":")[2] if http else ""
    if http and (":" not in http or not is_count(port) or int(port) > 65535):
        raise click.BadParameter(f"{http!r} is not HOST:PORT (a port up to 65535)",
                                 param_hint="--http")
    with _errors():
        ctx.exit(run_daemon(ctx.obj["config_path"], http, log_format, log_level))


@cli.group()
def opml() -> None:
    """Subscription lists from and for feed readers (OPML)."""


@opml.command("import")
@click.argument("file", type=click.File("rb"))
@click.pass_context
def opml_import(ctx: click.Context, file: Any) -> None:
    """Print a [[sources]] block for each feed in FILE ('-': standard input), to paste into
    the config; feeds the config already has are left out."""
    from .opml import plan_import, read_opml, sources_toml

    configured: list[SourceConfig] = []
    if ctx.obj["config_path"] or Path("harvester.toml").exists():
        configured = list(_config(ctx).sources)
    with _errors():
        plan = plan_import(read_opml(file.read()), (s.url for s in configured))
    if plan.new:
        click.echo(sources_toml(plan.new, {s.name for s in configured}), nl=False)
    notes = [f"{counted(len(plan.new), 'feed')} as [[sources]] blocks"]
    if plan.already:
        notes.append(f"{plan.already} already configured")
    if plan.repeated:
        notes.append(f"{counted(plan.repeated, 'feed')} listed twice, once is enough")
    if plan.naming:
        notes.append(f"{counted(plan.naming, 'URL')} holding ${{NAME}} written %24{{NAME}}:"
                     " the list's words, which the config does not read from your "
                     "environment (write ${NAME} back where you mean a variable of yours)")
    notes += [f"{why}, left out: {printable(url)}" for why, url in plan.left_out]
    click.echo("; ".join(notes), err=True)


@opml.command("export")
@click.pass_context
def opml_export(ctx: click.Context) -> None:
    """Print the configured feed sources as OPML, for a feed reader. (Listing and watched
    pages are not feeds: they are left out, and said so on stderr.)"""
    from .opml import Subscription, write_opml

    config = _config(ctx)
    feeds = [Subscription(s.name, s.url) for s in config.sources if s.kind is SourceKind.FEED]
    click.echo(write_opml(feeds), nl=False)
    for s in config.sources:
        if s.kind is not SourceKind.FEED:
            what = "an HTML listing page" if s.kind is SourceKind.HTML else "a watched page"
            # said where a shell redirect does not take it: the list itself stays clean
            click.echo(f"left out: {s.name} ({what}: no feed reader reads it; `harvester "
                       f"items --atom --source {s.name}` writes its items as a feed)", err=True)


@cli.command()
def demo() -> None:
    """Run the pipeline on bundled fixtures over loopback: no network, temp database."""
    from .demo import run_demo

    with _errors():
        run_demo(click.echo)


def main() -> None:
    from .pid1 import be_init

    be_init()  # a container's first process: its own init (see pid1.py)
    # What is loaded by now lives as long as the process: moved out of the collector's
    # sight, a run's garbage collections stop walking it (measured: a re-poll with 5 % of
    # 200 feeds changed 0.230 → 0.215 s), and forked workers leave its pages shared.
    gc.freeze()
    cli(prog_name="harvester")


if __name__ == "__main__":  # pragma: no cover
    main()
