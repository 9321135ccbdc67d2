"""harvester beside reader on one loopback corpus: the performance issue's scenarios.

    python bench/run.py                 # full: 200 feeds × 50 items, 3 reps, all scenarios
    python bench/run.py --smoke         # tiny sizes, 1 rep: CI keeps this working

Needs the `bench` extra (reader) for the reader rows; without it they are skipped.
Every scenario runs each tool as a whole process (start-up included); wall is the
median of the reps, and the reps of the tools compared in a scenario are interleaved
(order rotated each round), so a slow spell of the machine falls on them alike; peak
RSS is the process tree's (main + worker processes).
Prints a Markdown table and writes the raw figures to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable


class Server:
    def __init__(self, n: int, m: int, latency_ms: float = 0):
        self.dir = Path(tempfile.mkdtemp(prefix="bench-srv-"))
        port = self.dir / "port"
        self.proc = subprocess.Popen(
            [PY, str(HERE / "server.py"), "--n", str(n), "--m", str(m), "--latency-ms",
             str(latency_ms), "--port-file", str(port)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not (port.exists() and port.read_text()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("bench server did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port.read_text()}"

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=60) as r:
            return r.read()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def _tree_kib(pid: int, pss: bool = False) -> int:
    """Memory of a process and all its descendants: resident (statm, cheap to read) or
    proportional (smaps_rollup)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            if pss:
                with open(f"/proc/{p}/smaps_rollup") as f:
                    total += next(int(ln.split()[1]) for ln in f if ln.startswith("Pss:"))
            else:
                with open(f"/proc/{p}/statm") as f:
                    total += int(f.read().split()[1]) * 4
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
          pss: bool = False) -> tuple[float, float, float]:
    """Run a command; (wall seconds, peak memory of its process tree in MiB, CPU seconds):
    memory as RSS, or with `pss` the proportional set size, which counts pages a forked
    worker shares with its parent once (exact, but reading it slows the process: memory
    scenarios only); CPU as user + system time of the process and every process it
    waited for (its workers)."""
    peak = [0]
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_kib(proc.pid, pss))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _out, err = proc.communicate()
    wall = time.perf_counter() - t0
    cpu = _children_cpu() - cpu0
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]}… exited {proc.returncode}:\n{err[-2000:]}")
    return wall, peak[0] / 1024, cpu


def example_selectors() -> dict[str, object]:
    """The listing selectors config/example.toml documents for the ICMPD news centre,
    whose page shape the corpus's listing pages copy: the benchmark reads them from there
    so the two cannot drift apart."""
    cfg = tomllib.loads((HERE.parent / "config" / "example.toml").read_text("utf-8"))
    return next(s["select"] for s in cfg["sources"] if s.get("kind") == "html")


def write_config(work: Path, server: Server, n: int, concurrency: int,
                 listings: bool = False) -> Path:
    """bench.toml: the server's feeds; with `listings`, bench-listings.toml: its HTML
    listing pages, read with the selectors config/example.toml documents."""
    urls = server.get("/listings.txt" if listings else "/feeds.txt").decode().split()[:n]
    db = "listings.db" if listings else "harvester.db"
    # JSON strings and lists of strings are valid TOML values
    select = [f"{k} = {json.dumps(v)}" for k, v in example_selectors().items()]
    lines = ["[storage]", f'path = "{db}"', "[http]", 'user_agent = "harvester-bench"',
             "timeout = 60", f"concurrency = {concurrency}",
             # every feed is on 127.0.0.1 here; a real deployment keeps the polite default
             f"per_host = {concurrency}", ""]
    for i, u in enumerate(urls):
        if listings:
            lines += ["[[sources]]", f'name = "l{i}"', 'kind = "html"', f'url = "{u}"',
                      "[sources.select]", *select, ""]
        else:
            lines += ["[[sources]]", f'name = "f{i}"', f'url = "{u}"',
                      "category_from_title = true", ""]
    lines += ["[[rules]]", 'name = "press-release"', 'categories = ["Press Release"]', "",
              "[[rules]]", 'name = "project-launch"',
              "match = '(?i)\\b(launch(es|ed|ing)?|kick-?off|inception)\\b'", ""]
    cfg = work / ("bench-listings.toml" if listings else "bench.toml")
    cfg.write_text("\n".join(lines))
    return cfg


def fresh(work: Path, name: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        (work / (name + suffix)).unlink(missing_ok=True)


def copy_db(src: Path, dst: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        s, d = Path(str(src) + suffix), Path(str(dst) + suffix)
        d.unlink(missing_ok=True)
        if s.exists():
            shutil.copyfile(s, d)
    # write the copy back now, or the kernel does it during the next timed run
    os.sync()


def median_run(reps: int, prepare, cmd: list[str], cwd: Path,
               pss: bool = False) -> dict[str, float]:
    """The median of `reps` runs of one command (see interleaved)."""
    return interleaved(reps, {"run": (prepare, cmd, cwd)}, pss=pss)["run"]


def interleaved(reps: int, runs: dict[str, tuple],
                pss: bool = False) -> dict[str, dict[str, float]]:
    """The median of `reps` runs of each command, their reps interleaved and the order
    rotated each round: a slow spell of this shared VM, or an after-effect of one tool's
    run, then falls on every tool alike instead of on whichever ran its reps then."""
    walls: dict[str, list[float]] = {k: [] for k in runs}
    rss: dict[str, list[float]] = {k: [] for k in runs}
    cpus: dict[str, list[float]] = {k: [] for k in runs}
    names = list(runs)
    for i in range(reps):
        for name in names[i % len(names):] + names[: i % len(names)]:
            prepare, cmd, cwd = runs[name]
            prepare()
            w, r, c = timed(cmd, cwd, pss=pss)
            walls[name].append(w)
            rss[name].append(r)
            cpus[name].append(c)
    return {k: {"wall": statistics.median(walls[k]), "rss": max(rss[k]),
                "cpu": statistics.median(cpus[k]), "walls": walls[k]} for k in runs}


def installed_like() -> None:
    """Compile harvester's bytecode first, as `pip install .` does for reader: an editable
    checkout under PYTHONDONTWRITEBYTECODE (CI, containers) would otherwise recompile every
    module on every start, a cost no installed copy pays."""
    import compileall

    spec = importlib.util.find_spec("harvester")
    if spec and spec.submodule_search_locations:
        compileall.compile_dir(next(iter(spec.submodule_search_locations)), quiet=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--m", type=int, default=50)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--workers", type=int, default=16, help="harvester fetch threads")
    ap.add_argument("--reader-workers", type=int, default=8)
    ap.add_argument("--history", type=int, nargs=2, default=[10_000, 1_000_000])
    ap.add_argument("--memory-n", type=int, nargs=2, default=[1000, 20])
    ap.add_argument("--daemon-polls", type=int, default=1000)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one rep")
    a = ap.parse_args()
    if a.smoke:
        a.n, a.m, a.reps, a.daemon_polls = 10, 5, 1, 120
        a.history, a.memory_n = [100, 1000], [20, 5]
    have_reader = importlib.util.find_spec("reader") is not None
    installed_like()
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    harvester = [PY, "-m", "harvester", "--config", str(work / "bench.toml"), "once"]
    reader = [PY, str(HERE / "run_reader.py"), "--db", str(work / "reader.db"),
              "--workers", str(a.reader_workers)]
    floor = [PY, str(HERE / "fetch_floor.py"), "--workers", str(a.workers)]
    rows: dict[str, dict] = {}
    items = a.n * a.m
    try:
        srv = Server(a.n, a.m)
        try:
            write_config(work, srv, a.n, a.workers)
            reader += ["--server", srv.url]
            floor += ["--server", srv.url]
            def nothing() -> None:
                pass

            # cold: everything new (run_reader.py starts its own database afresh)
            runs = {"floor_cold": (nothing, floor, work),
                    "harvester_cold": (lambda: fresh(work, "harvester.db"), harvester, work)}
            if have_reader:
                runs["reader_cold"] = (nothing, [*reader, "--phase", "cold"], work)
            rows.update(interleaved(a.reps, runs))
            copy_db(work / "harvester.db", work / "h-after-cold.db")
            if have_reader:
                copy_db(work / "reader.db", work / "r-after-cold.db")
            # warm, nothing changed: every answer a 304 (each tool's database after its cold
            # poll has the validators; so has the floor's saved ETags)
            timed([*floor, "--save", str(work / "etags.json")], work)
            runs = {"floor_warm304": (nothing, [*floor, "--validators", str(work / "etags.json")],
                                      work),
                    "harvester_warm304": (nothing, harvester, work)}
            if have_reader:
                runs["reader_warm304"] = (nothing, [*reader, "--phase", "warm"], work)
            rows.update(interleaved(a.reps, runs))

            # warm, 5% of feeds with a new item: from the after-cold state each rep
            def advance(db: str, template: str):
                def prep() -> None:
                    srv.get("/_control/reset")
                    srv.get("/_control/advance?pct=5")
                    copy_db(work / template, work / db)
                return prep

            runs = {"harvester_warm5": (advance("harvester.db", "h-after-cold.db"), harvester,
                                        work)}
            if have_reader:
                runs["reader_warm5"] = (advance("reader.db", "r-after-cold.db"),
                                        [*reader, "--phase", "warm"], work)
            rows.update(interleaved(a.reps, runs))
            # flat with history: the same warm-5% poll over a store padded to K items
            srv.get("/_control/reset")
            for k in a.history:
                copy_db(work / "h-after-cold.db", work / f"h-hist-{k}.db")
                subprocess.run([PY, str(HERE / "history.py"), "--db",
                                str(work / f"h-hist-{k}.db"), "--items", str(k)], check=True)
            rows.update(interleaved(a.reps, {
                f"harvester_history_{k}": (advance("harvester.db", f"h-hist-{k}.db"), harvester,
                                           work) for k in a.history}))
            # daemon memory: RSS after 100 and after N polls of the job body
            srv.get("/_control/reset")
            copy_db(work / "h-after-cold.db", work / "harvester.db")
            out = subprocess.run([PY, str(HERE / "daemon_rss.py"), "--config",
                                  str(work / "bench.toml"), "--server", srv.url, "--polls",
                                  str(a.daemon_polls)], capture_output=True, text=True,
                                 check=True, cwd=work)
            rows["daemon_rss"] = json.loads(out.stdout)["rss_mib"]
            # HTML listing pages, cold: the same entries through the listing path (reader has
            # none, so no ratio)
            write_config(work, srv, a.n, a.workers, listings=True)
            rows["harvester_listing_cold"] = median_run(
                a.reps, lambda: fresh(work, "listings.db"),
                [PY, "-m", "harvester", "--config", str(work / "bench-listings.toml"), "once"],
                work)
            with sqlite3.connect(work / "listings.db") as db:
                # sightings, not items: the same story on two sites' pages is one item
                seen = db.execute("SELECT count(*) FROM sightings").fetchone()[0]
            if seen != items:  # a figure for pages it did not read would mean nothing
                raise SystemExit(f"listing scenario saw {seen} entries, not {items}")
        finally:
            srv.stop()
        # latency-bound: 50 ms added to every request
        srv = Server(a.n, a.m, latency_ms=50)
        try:
            write_config(work, srv, a.n, a.workers)
            floor_l = [PY, str(HERE / "fetch_floor.py"), "--workers", str(a.workers), "--server",
                       srv.url]
            rows.update(interleaved(a.reps, {
                "floor_cold_50ms": (nothing, floor_l, work),
                "harvester_cold_50ms": (lambda: fresh(work, "harvester.db"), harvester, work)}))
        finally:
            srv.stop()
        # memory: many small feeds, cold
        n2, m2 = a.memory_n
        srv = Server(n2, m2)
        try:
            write_config(work, srv, n2, a.workers)
            rows["harvester_memory_cold"] = median_run(
                1, lambda: fresh(work, "harvester.db"), harvester, work, pss=True)
        finally:
            srv.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(rows, a, items, have_reader)
    return 0


def report(rows: dict, a: argparse.Namespace, items: int, have_reader: bool) -> None:
    def w(k: str) -> float:
        return rows[k]["wall"]

    print(f"\n{a.n} feeds × {a.m} items ({items:,} items), loopback, {os.cpu_count()} CPUs, "
          f"median of {a.reps}; harvester {a.workers} fetch threads, reader "
          f"{a.reader_workers} workers\n")
    print("| scenario | harvester s | items/s | peak RSS MiB | reader s | reader RSS MiB "
          "| ratio | target |")
    print("|---|---|---|---|---|---|---|---|")
    checks = []

    def line(name: str, hk: str, rk: str | None, per_items: int | None, target: str,
             ok: bool | None) -> None:
        h = rows[hk]
        r = rows.get(rk) if rk else None
        rate = f"{per_items / h['wall']:,.0f}" if per_items else "–"
        ratio = f"{r['wall'] / h['wall']:.1f}×" if r else "–"
        rs = f"{r['wall']:.2f}" if r else "–"
        rr = f"{r['rss']:.0f}" if r else "–"
        verdict = "" if ok is None else (" ✓" if ok else " ✗")
        print(f"| {name} | {h['wall']:.2f} | {rate} | {h['rss']:.0f} | {rs} | {rr} | {ratio} "
              f"| {target}{verdict} |")
        if ok is not None:
            checks.append((name, ok))

    rc = have_reader
    line("cold", "harvester_cold", "reader_cold" if rc else None, items, "≥ 10× reader",
         rc and w("reader_cold") / w("harvester_cold") >= 10 if rc else None)
    f304 = w("harvester_warm304") / w("floor_warm304")
    line("warm, all 304", "harvester_warm304", "reader_warm304" if rc else None, None,
         f"≤ 1.3× floor ({f304:.2f}×), ≥ 2× reader",
         f304 <= 1.3 and (not rc or w("reader_warm304") / w("harvester_warm304") >= 2))
    line("warm, 5% changed", "harvester_warm5", "reader_warm5" if rc else None, None,
         "≥ 3× reader", rc and w("reader_warm5") / w("harvester_warm5") >= 3 if rc else None)
    k1, k2 = a.history
    hist = w(f"harvester_history_{k2}") / w(f"harvester_history_{k1}")
    line(f"warm 5%, {k1:,} stored", f"harvester_history_{k1}", None, None, "", None)
    line(f"warm 5%, {k2:,} stored", f"harvester_history_{k2}", None, None,
         f"≤ 1.2× the {k1:,} case ({hist:.2f}×)", hist <= 1.2)
    line("cold, HTML listing pages", "harvester_listing_cold", None, items, "", None)
    lat = w("harvester_cold_50ms") / w("floor_cold_50ms")
    line("cold, +50 ms latency", "harvester_cold_50ms", None, items,
         f"≤ 1.5× fetch floor {w('floor_cold_50ms'):.2f} s ({lat:.2f}×)", lat <= 1.5)
    n2, m2 = a.memory_n
    mem = rows["harvester_memory_cold"]["rss"]
    line(f"memory: {n2}×{m2} cold (PSS)", "harvester_memory_cold", None, n2 * m2,
         "≤ 150 MiB peak",
         mem <= 150)
    d = rows["daemon_rss"]
    first, last = d["100"], d[str(a.daemon_polls)]
    grow = last / first
    print(f"| daemon: {a.daemon_polls} polls | – | – | {first:.0f} → {last:.0f} | – | – | – "
          f"| ≤ 1.1× after 100 ({grow:.2f}×){' ✓' if grow <= 1.1 else ' ✗'} |")
    checks.append(("daemon rss", grow <= 1.1))
    print(f"\nfloors: fetch-only cold {w('floor_cold'):.2f} s, all-304 {w('floor_warm304'):.2f} s")
    # how close each cold run is to being CPU-bound: CPU seconds over cores × wall
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    busy = []
    for label, k in (("harvester cold", "harvester_cold"), ("reader cold", "reader_cold"),
                     ("harvester +50 ms", "harvester_cold_50ms")):
        if k in rows:
            share = rows[k]["cpu"] / (rows[k]["wall"] * (cores or 1))
            busy.append(f"{label} {rows[k]['cpu']:.2f} s ({share:.0%} of {cores} cores)")
    print("CPU, user + system, median: " + ", ".join(busy))
    failed = [n for n, ok in checks if not ok]
    print("targets: " + ("all met" if not failed else "missed: " + "; ".join(failed)))
    if a.smoke:  # 50 items on one rep: start-up and noise decide these ratios
        print("(smoke size: this run checks that every scenario works; the targets are for"
              " the full run)")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps({"args": vars(a), "rows": rows}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
