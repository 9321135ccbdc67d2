"""lemon24/reader on the benchmark corpus: the yardstick (runs in the `bench` extra's venv).

    python bench/run_reader.py --server URL --db PATH --phase cold|warm --workers 8
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.request

from reader import make_reader


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--phase", choices=["cold", "warm"], required=True)
    ap.add_argument("--workers", type=int, default=8)
    a = ap.parse_args()
    if a.phase == "cold":
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(a.db + suffix):
                os.remove(a.db + suffix)
    reader = make_reader(a.db)
    if a.phase == "cold":
        with urllib.request.urlopen(a.server + "/feeds.txt", timeout=30) as r:
            for url in r.read().decode().split():
                reader.add_feed(url)
    new = errors = 0
    # scheduled=False: reader ≥ 3.21 would otherwise skip feeds polled within the hour
    for result in reader.update_feeds_iter(workers=a.workers, scheduled=False):
        if isinstance(result.value, Exception):
            errors += 1
        elif result.value is not None:
            new += result.value.new
    print(json.dumps({"new": new, "errors": errors, "entries": reader.get_entry_counts().total}))
    reader.close()


if __name__ == "__main__":
    main()
