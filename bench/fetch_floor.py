"""The network's floor: fetch every feed with requests on N threads and do nothing else.

    python bench/fetch_floor.py --server URL --workers 16 [--validators FILE]

With --validators, sends the ETags saved in FILE (written by a previous run with
--save), so every answer is a 304: the floor of a re-poll where nothing changed.
"""

from __future__ import annotations

import argparse
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--validators")
    ap.add_argument("--save")
    a = ap.parse_args()
    urls = requests.get(a.server + "/feeds.txt", timeout=30).text.split()
    etags = json.loads(Path(a.validators).read_text()) if a.validators else {}
    local = threading.local()

    def get(url: str) -> tuple[str, int, str | None, int]:
        s = getattr(local, "s", None) or requests.Session()
        local.s = s
        headers = {"If-None-Match": etags[url]} if url in etags else {}
        r = s.get(url, headers=headers, timeout=30)
        return url, r.status_code, r.headers.get("ETag"), len(r.content)

    with ThreadPoolExecutor(a.workers) as pool:
        results = list(pool.map(get, urls))
    if a.save:
        Path(a.save).write_text(json.dumps({u: e for u, _, e, _ in results if e}))
    print(json.dumps({"requests": len(results), "bytes": sum(r[3] for r in results),
                      "status": sorted({r[1] for r in results})}))


if __name__ == "__main__":
    main()
