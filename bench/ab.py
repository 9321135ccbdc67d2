"""Interleaved A/B of `harvester once`: this tree against another one, on the bench corpus.

    mkdir /tmp/base && git archive REV | tar -x -C /tmp/base     # the tree to compare with
    python bench/ab.py --base /tmp/base --scenario cold --reps 9
    python bench/ab.py --base /tmp/base --scenario latency    # 50 ms added per request
    python bench/ab.py --base /tmp/base --scenario warm5      # 5 % of feeds changed
    python bench/ab.py --base /tmp/base --scenario listing    # cold, the HTML listing pages

Each round runs both trees, order alternating, after one warm-up round; each run is a whole
process on a fresh database (cold) or a copy of that tree's own database after its cold
poll (warm5, so a newer schema never meets an older harvester). Both trees are byte-compiled
first, as an installed harvester is: with PYTHONDONTWRITEBYTECODE set, a tree on
PYTHONPATH would otherwise compile itself on every run. Prints each tree's median and runs.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from run import PY, Server, copy_db, fresh, write_config

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="the other tree (its root)")
    ap.add_argument("--scenario", choices=["cold", "latency", "warm5", "listing"],
                    default="cold")
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--m", type=int, default=50)
    a = ap.parse_args()
    trees = {"this": HERE.parent, "base": a.base.resolve()}
    for tree in trees.values():
        compileall.compile_dir(tree / "harvester", quiet=1)
    # run from a folder holding neither tree: `-m` puts the working directory first
    envs = {"this": {**os.environ, "PYTHONPATH": str(trees["this"])},
            "base": {**os.environ, "PYTHONPATH": str(trees["base"])}}
    srv = Server(a.n, a.m, latency_ms=50 if a.scenario == "latency" else 0)
    work = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    listing = a.scenario == "listing"
    write_config(work, srv, a.n, 16, listings=listing)
    cfg, db = ("bench-listings.toml", "listings.db") if listing else ("bench.toml", "harvester.db")

    def once(who: str) -> float:
        t = time.perf_counter()
        r = subprocess.run([PY, "-m", "harvester", "--config", str(work / cfg), "once"],
                           cwd=work, env=envs[who], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{who}: exit {r.returncode}: {r.stderr[-500:]}")
        return time.perf_counter() - t

    def prepare(who: str) -> None:
        if a.scenario == "warm5":
            srv.get("/_control/reset")
            srv.get("/_control/advance?pct=5")
            copy_db(work / f"{who}-after-cold.db", work / "harvester.db")
        else:
            fresh(work, db)

    times: dict[str, list[float]] = {who: [] for who in trees}
    try:
        if a.scenario == "warm5":
            for who in trees:
                srv.get("/_control/reset")
                fresh(work, "harvester.db")
                once(who)
                copy_db(work / "harvester.db", work / f"{who}-after-cold.db")
        for i in range(a.reps + 1):
            for who in (["this", "base"] if i % 2 else ["base", "this"]):
                prepare(who)
                dt = once(who)
                if i:  # the first round warms the page cache and the server
                    times[who].append(dt)
    finally:
        srv.stop()
    for who, ts in times.items():
        print(f"{who:5} {trees[who]}: median {statistics.median(ts):.3f} s  "
              + " ".join(f"{t:.3f}" for t in ts))


if __name__ == "__main__":
    main()
