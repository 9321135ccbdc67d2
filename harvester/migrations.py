"""The database schema, as an ordered list of sqlite-utils migrations."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("harvester")


@migrations()
def m001_initial(db: Database) -> None:
    db.execute("""
        CREATE TABLE sources (
            name TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            kind TEXT NOT NULL,
            etag TEXT,
            last_modified TEXT,
            body_hash TEXT,
            baseline_at TEXT,            -- first successful poll; NULL = next poll is the baseline
            last_polled TEXT,
            last_status TEXT,            -- ok | not-modified | error
            last_success TEXT,
            last_error TEXT,
            last_error_at TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0
        )""")
    db.execute("""
        CREATE TABLE items (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL,        -- where it was first seen
            key TEXT NOT NULL,
            guid TEXT,
            url TEXT,
            title TEXT NOT NULL,
            category TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            summary TEXT NOT NULL DEFAULT '',
            content TEXT NOT NULL DEFAULT '',
            published TEXT NOT NULL,
            date_flag TEXT NOT NULL DEFAULT '',
            language TEXT,
            author TEXT,
            content_hash TEXT NOT NULL,
            rules TEXT NOT NULL DEFAULT '[]',
            version INTEGER NOT NULL DEFAULT 1,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            updated_at TEXT
        )""")
    db.execute("CREATE INDEX items_url ON items(url) WHERE url IS NOT NULL")
    db.execute("CREATE INDEX items_published ON items(published)")
    # One row per (source, identity key): how a source refers to an item. An item seen
    # through a feed and a listing has two sightings and stays one item.
    db.execute("""
        CREATE TABLE sightings (
            source TEXT NOT NULL,
            key TEXT NOT NULL,
            item_id TEXT NOT NULL REFERENCES items(id),
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            PRIMARY KEY (source, key)
        ) WITHOUT ROWID""")
    db.execute("CREATE INDEX sightings_item ON sightings(item_id)")
    db.execute("""
        CREATE TABLE item_versions (
            id INTEGER PRIMARY KEY,
            item_id TEXT NOT NULL REFERENCES items(id),
            version INTEGER NOT NULL,
            recorded_at TEXT NOT NULL,   -- when this version was replaced
            content_hash TEXT NOT NULL,
            title TEXT NOT NULL,
            url TEXT,
            category TEXT,
            summary TEXT NOT NULL,
            content TEXT NOT NULL,
            published TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX item_versions_item ON item_versions(item_id, version)")
    db.execute("""
        CREATE TABLE fetch_log (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            at TEXT NOT NULL,
            status TEXT NOT NULL,        -- ok | not-modified | error
            http_status INTEGER,
            duration_ms INTEGER,
            bytes INTEGER NOT NULL DEFAULT 0,
            new INTEGER NOT NULL DEFAULT 0,
            changed INTEGER NOT NULL DEFAULT 0,
            unchanged INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            warning TEXT
        )""")
    db.execute("CREATE INDEX fetch_log_source_at ON fetch_log(source, at)")
    db.execute("""
        CREATE TABLE outbox (
            id TEXT PRIMARY KEY,         -- derived from the unique key: stable across re-queues
            notifier TEXT NOT NULL,
            item_id TEXT,
            event TEXT NOT NULL,         -- item.new | item.changed | source.failing | …
            ref TEXT NOT NULL DEFAULT '',
            source TEXT,
            created_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',   -- pending | sent | dead
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            last_error TEXT,
            sent_at TEXT,
            UNIQUE (notifier, item_id, event, ref)
        )""")
    db.execute("CREATE INDEX outbox_due ON outbox(status, next_attempt_at)")


@migrations()
def m002_delivery(db: Database) -> None:
    """Operators' alerts and the delivery loop's bookkeeping."""
    db.execute("ALTER TABLE sources ADD COLUMN failing_since TEXT")  # first failure in a row
    db.execute("ALTER TABLE sources ADD COLUMN alerted INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE outbox ADD COLUMN data TEXT")  # event details (source events)
    db.execute("ALTER TABLE outbox ADD COLUMN response TEXT")  # the receiver's last answer
    db.execute("""
        CREATE TABLE notifier_state (
            name TEXT PRIMARY KEY,
            disabled_at TEXT,            -- set when a webhook answered 410 Gone
            disabled_reason TEXT
        )""")


@migrations()
def m003_raw_hash(db: Database) -> None:
    """Each source's raw form of an item, so a re-poll skips entries it has read before."""
    db.execute("ALTER TABLE sightings ADD COLUMN raw_hash TEXT")


@migrations()
def m004_title_index(db: Database) -> None:
    """Matching one article across sources by title and date, when their URLs differ."""
    db.execute("CREATE INDEX items_title ON items(title)")


@migrations()
def m005_retry_after(db: Database) -> None:
    """A server's Retry-After outlives the process: a cron-driven `once` honours it too."""
    db.execute("ALTER TABLE sources ADD COLUMN not_before TEXT")


@migrations()
def m006_outbox_claims(db: Database) -> None:
    """Who is delivering a row right now: overlapping runs (cron beside a daemon) must not
    both send it, and a run killed mid-delivery must not hold it for long."""
    db.execute("ALTER TABLE outbox ADD COLUMN claimed_by TEXT")  # "host:pid"
    db.execute("ALTER TABLE outbox ADD COLUMN claimed_until TEXT")


@migrations()
def m007_fetch_log_outcome(db: Database) -> None:
    """What a poll queued and whether it was a source's silent baseline, so `harvester
    log` can tell a poll's story in the words `once` printed for it."""
    db.execute("ALTER TABLE fetch_log ADD COLUMN queued INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE fetch_log ADD COLUMN baseline INTEGER NOT NULL DEFAULT 0")


@migrations()
def m008_fetch_log_old(db: Database) -> None:
    """How many of a poll's new items were older than the source's max_age, stored
    without a notification: `harvester log` says them as `once` did."""
    db.execute("ALTER TABLE fetch_log ADD COLUMN old INTEGER NOT NULL DEFAULT 0")


@migrations()
def m009_read_as(db: Database) -> None:
    """The settings a source was last read under, so a poll under changed ones reads the
    page anew and keeps its edits quiet; and how many edits a poll kept quiet so, for
    `harvester log`."""
    db.execute("ALTER TABLE sources ADD COLUMN read_as TEXT")
    db.execute("ALTER TABLE fetch_log ADD COLUMN reread INTEGER NOT NULL DEFAULT 0")


@migrations()
def m010_fetch_log_cut(db: Database) -> None:
    """How many of a poll's edits only took words out, under a source's edits = "added":
    stored, not told; `harvester log` says them as `once` did."""
    db.execute("ALTER TABLE fetch_log ADD COLUMN cut INTEGER NOT NULL DEFAULT 0")


@migrations()
def m011_fetch_log_unmatched(db: Database) -> None:
    """How many of a poll's edits put in no words a source's edits_match finds: stored,
    not told; `harvester log` says them as `once` did."""
    db.execute("ALTER TABLE fetch_log ADD COLUMN unmatched INTEGER NOT NULL DEFAULT 0")


@migrations()
def m012_version_identity(db: Database) -> None:
    """An item's former links and titles, looked up: another source may show an item as it
    was before its title and link were both fixed, and it is that item, not news."""
    db.execute("CREATE INDEX item_versions_url ON item_versions(url) WHERE url IS NOT NULL")
    db.execute("CREATE INDEX item_versions_title ON item_versions(title)")


@migrations()
def m013_url_spelling(db: Database) -> None:
    """Links in one spelling of each character (urls._one_spelling): a link stored as a
    page wrote it (raw letters, lower-case escapes, an IDN host) is rewritten as the feed
    that percent-encodes it will now read it, with the identity keys made of it, so the
    next poll finds those items, not news. Their hashes, of an earlier HASH_VERSION, are
    made anew at that poll, silently: a feed that now spells a link otherwise edits
    nothing."""
    import re

    from .urls import canonical_url

    # only a link with a character outside printable ASCII, a "%" or an ASCII character
    # a URL escapes can be spelled otherwise now: the rest (all but a few) are passed by
    # a look at the indexed links, 2 s for a million where canonicalising each took 7
    odd = re.compile(r'[^ -~]|[%"<>\\^`{|}\[\]]').search

    def respelled(url: str) -> str:
        return canonical_url(url) or url

    def key_of(key: str) -> str:
        return "url:" + respelled(key[4:]) if key.startswith("url:") else key

    conn = db.conn
    urls = [u for (u,) in conn.execute(
        "SELECT url FROM items INDEXED BY items_url WHERE url IS NOT NULL") if odd(u)]
    sightings = [(source, key, item_id) for source, key, item_id in conn.execute(
        "SELECT source, key, item_id FROM sightings") if odd(key)]
    items = {row[0]: row for url in urls for row in conn.execute(
        "SELECT id, key, url FROM items WHERE url = ?", (url,))}
    items.update((row[0], row) for _, _, item_id in sightings for row in conn.execute(
        "SELECT id, key, url FROM items WHERE id = ?", (item_id,)))
    conn.executemany("UPDATE items SET url = ?, key = ? WHERE id = ?", [
        (new, new_key, item_id) for item_id, key, url in items.values()
        if (new_key := key_of(key), new := respelled(url) if url else None) != (key, url)])
    conn.executemany("UPDATE item_versions SET url = ? WHERE url = ?", [
        (new, url) for (url,) in conn.execute(
            "SELECT DISTINCT url FROM item_versions INDEXED BY item_versions_url"
            " WHERE url IS NOT NULL") if odd(url) and (new := respelled(url)) != url])
    # a source that saw one article under both spellings keeps its older sighting as is
    conn.executemany("UPDATE OR IGNORE sightings SET key = ? WHERE source = ? AND key = ?", [
        (new, source, key) for source, key, _ in sightings if (new := key_of(key)) != key])


__all__ = ["migrations"]


@migrations()
def m014_fetch_log_markup(db: Database) -> None:
    """How many of a poll's edits changed markup only (no word, no link's target): stored,
    not told; `harvester log` says them as `once` did."""
    db.execute("ALTER TABLE fetch_log ADD COLUMN markup INTEGER NOT NULL DEFAULT 0")
