"""Pad a harvester database with K stored items of other sources (the 'flat with history'
scenario): a poll must cost the same whether the store holds 10 thousand items or a million.

    python bench/history.py --db PATH --items 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3


def pad(db: str, items: int, batch: int = 20_000) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    body = "<p>" + "archived news item text " * 12 + "</p>"
    for start in range(0, items, batch):
        rows, sights = [], []
        for n in range(start, min(items, start + batch)):
            src = f"history-{n % 500}"
            iid = "i_" + hashlib.sha256(f"{src}:{n}".encode()).hexdigest()[:24]
            url = f"https://archive{n % 500}.example.org/news/{n}/"
            rows.append((iid, src, "url:" + url, url, f"Archived item {n}", "Project News",
                         "summary", body, f"2019-{n % 12 + 1:02d}-01T00:00:00Z", "v1:" + iid,
                         "2019-01-01T00:00:00Z", "2019-01-01T00:00:00Z"))
            sights.append((src, "url:" + url, iid, "2019-01-01T00:00:00Z", "2019-01-01T00:00:00Z"))
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO items (id, source, key, url, title, category, summary, content,"
            " published, content_hash, first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            rows)
        conn.executemany("INSERT INTO sightings (source, key, item_id, first_seen, last_seen)"
                         " VALUES (?,?,?,?,?)", sights)
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--items", type=int, required=True)
    a = ap.parse_args()
    pad(a.db, a.items)
