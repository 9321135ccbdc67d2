"""Where a first poll's CPU goes: each stage timed alone, and the whole poll's CPU by process.

    python bench/stages.py              # 200 feeds × 50 items, as bench/run.py's cold row

README › Performance › "Why the first poll misses 10×" quotes its figures. Part one times
each stage of reading and storing the corpus uncontended, in this process, best of three
(what the work costs with both cores to itself); part two runs `harvester once` cold as
the benchmark does and reports getrusage for the writer's process and for its worker
processes (what the work costs as it runs: the difference is the price of running it in
parallel on two cores).
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from run import PY, Server, write_config

# `harvester once` in a child process that reports its own CPU and its workers' on exit
_ONCE_WITH_RUSAGE = """
import atexit, json, resource, sys
from harvester.cli import main

def report():
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"writer": me.ru_utime + me.ru_stime, "writer_sys": me.ru_stime,
                      "workers": kids.ru_utime + kids.ru_stime}), file=sys.stderr)

atexit.register(report)
sys.argv = ["harvester", "--config", sys.argv[1], "once"]
main()
"""


def best(fn: Callable[[], object], reps: int = 3) -> tuple[float, object]:
    """The fastest of `reps` runs of fn (seconds), and its result."""
    times, result = [], None
    for _ in range(reps):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def stages(config_path: Path, work: Path) -> dict[str, float]:
    """Each stage of a first poll over the whole corpus, timed alone."""
    from harvester import normalise as norm
    from harvester.config import load_config
    from harvester.fetch import Fetcher, decode
    from harvester.harvest import Fetched, read_body, record
    from harvester.models import SourceState
    from harvester.normalise import Context, normalise
    from harvester.parse import parse_feed
    from harvester.rules import classify
    from harvester.store import SqliteStore

    config = load_config(config_path)
    now = datetime.now(UTC)
    fetcher = Fetcher(config.http)
    out: dict[str, float] = {}

    def fetch_all() -> list:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(config.http.concurrency) as pool:
            return list(pool.map(lambda s: fetcher.fetch(s.url, source=s.name, decode=False),
                                 config.sources))

    fetch_all()  # connections open, as they are by the time a poll is busy
    out["fetch (16 threads, bodies left gzipped)"], coded = best(fetch_all)
    limit = config.http.max_bytes
    out["gunzip"], bodies = best(lambda: [decode(fr, limit, "bench").body for fr in coded])
    out["parse (lxml fast path)"], docs = best(lambda: [
        parse_feed(b, url=fr.url, content_type=fr.content_type)
        for b, fr in zip(bodies, coded, strict=True)])
    ctxs = [Context(source=s.name, base_url=d.base_url, now=now,
                    category_from_title=s.category_from_title, language=d.language)
            for s, d in zip(config.sources, docs, strict=True)]

    def normalise_all() -> list:
        return [[normalise(e, c) for e in d.entries] for d, c in zip(docs, ctxs, strict=True)]

    out["normalise"], items = best(normalise_all)
    sanitise = norm.clean_content
    norm.clean_content = lambda markup, base: ""  # type: ignore[assignment]
    try:
        out["  of which sanitising (clean_content: nh3 and its checks)"] = (
        out["normalise"] - best(normalise_all)[0])
    finally:
        norm.clean_content = sanitise  # type: ignore[assignment]
    out["classify"], _ = best(lambda: [[classify(it, config.rules) for it in batch]
                                        for batch in items])
    reads = [read_body(s, b, fr.url, fr.content_type, now, config.rules)
             for s, b, fr in zip(config.sources, bodies, coded, strict=True)]
    out["pickle the reads (workers)"], pickled = best(lambda: [
        pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in reads])
    out["unpickle the reads (writer)"], _ = best(lambda: [pickle.loads(p) for p in pickled])

    def store_all() -> None:
        db = work / "stages.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        cfg = replace(config, storage=replace(config.storage, path=db))
        with SqliteStore(db) as store, store.group():
            for src, fr, read in zip(config.sources, coded, reads, strict=True):
                fetched = Fetched(src, SourceState(src.name), result=fr)
                record(fetched, read, cfg, store, now)

    out["store (fresh database)"], _ = best(store_all)
    out["start-up (harvester --help, whole process)"], _ = best(lambda: subprocess.run(
        [PY, "-m", "harvester", "--help"], capture_output=True, check=True))
    return out


def rusage(config_path: Path, work: Path, runs: int) -> list[dict[str, float]]:
    """getrusage of `harvester once` run cold `runs` times: the writer's process, the
    workers'."""
    figures = []
    for _ in range(runs):
        for suffix in ("", "-wal", "-shm"):
            (work / f"harvester.db{suffix}").unlink(missing_ok=True)
        r = subprocess.run([PY, "-c", _ONCE_WITH_RUSAGE, str(config_path)], cwd=work,
                           capture_output=True, text=True, check=True)
        figures.append(json.loads(r.stderr.strip().splitlines()[-1]))
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--m", type=int, default=50)
    ap.add_argument("--runs", type=int, default=5, help="cold polls for the getrusage part")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    srv = Server(a.n, a.m)
    try:
        config_path = write_config(work, srv, a.n, 16)
        timed = stages(config_path, work)
        print(f"{a.n} feeds × {a.m} items: each stage alone, best of 3 (seconds)")
        for name, seconds in timed.items():
            print(f"  {name:58} {seconds:6.3f}")
        total = sum(v for k, v in timed.items() if not k.startswith(" "))
        print(f"  {'sum':58} {total:6.3f}")
        figures = rusage(config_path, work, a.runs)
        print(f"\n`harvester once`, cold, {a.runs} runs: CPU seconds by process")
        for f in figures:
            print(f"  writer {f['writer']:.3f} (system {f['writer_sys']:.3f})"
                  f"   workers {f['workers']:.3f}   all {f['writer'] + f['workers']:.3f}")
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
