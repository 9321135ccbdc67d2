"""Memory over a long run: the daemon's job body (`poll_one`) called again and again in one
process; prints resident memory after 100 and after N polls.

    python bench/daemon_rss.py --config CFG --server URL --polls 1000
"""

from __future__ import annotations

import argparse
import gc
import json
import urllib.request

from harvester.config import load_config
from harvester.harvest import poll_one
from harvester.store import SqliteStore


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--polls", type=int, default=1000)
    a = ap.parse_args()
    config = load_config(a.config)
    store = SqliteStore(config.storage.path)
    sources = config.sources
    marks = {}
    # new items from the start, so the first 100 polls already parse (lxml and nh3 are
    # imported on first use: loading them later would read as growth)
    urllib.request.urlopen(a.server + "/_control/advance?pct=50", timeout=10).read()
    for n in range(1, a.polls + 1):
        if n % len(sources) == 0:  # new items now and then, as in life
            urllib.request.urlopen(a.server + "/_control/advance?pct=5", timeout=10).read()
        poll_one(sources[n % len(sources)], config, store)
        if n in (100, a.polls):
            gc.collect()
            marks[n] = round(rss_mib(), 1)
    store.close()
    print(json.dumps({"rss_mib": marks}))


if __name__ == "__main__":
    main()
