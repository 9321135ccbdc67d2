"""Shared fixtures: a real loopback HTTP server, fixture bodies, configs, the CLI as a process."""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings

from harvester.config import Config, load_config
from harvester.devserver import FixtureServer, Response
from harvester.store import SqliteStore

# CI draws the same examples for the property tests on every run (HYPOTHESIS_PROFILE=ci,
# set by .ci/run): a submission lands or not on its own code, not on the draw. Elsewhere
# each run draws anew, and a failure found prints the example to pin with @example.
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
FEEDS = FIXTURES / "feeds"
LISTINGS = FIXTURES / "listings"
PAGES = FIXTURES / "pages"
CONFIG_DIR = ROOT / "config"
NOW = datetime(2020, 5, 28, 8, 0, tzinfo=UTC)  # the day after the newest seed item
# The 27 May feed's edit of the Kyiv item ("7 of May" → "7 May"), as its line diff reads
KYIV_BEFORE = ("On 7 of May 2020 in Kyiv, ICMPD organized a kick-off meeting on business"
               " processes analysis and...")
KYIV_DIFF = ["-On 7 of May 2020 in Kyiv, ICMPD organized a kick-off meeting on business processes",
             "-analysis and...",
             "+On 7 May 2020 in Kyiv, ICMPD organized a kick-off meeting on business processes"
             " analysis", "+and..."]
KYIV_WORDS = ["On 7 [-of-] May 2020 in Kyiv, ICMPD organized …"]  # as notifications tell it

RULES_TOML = (CONFIG_DIR / "icmpd.toml").read_text("utf-8").split("[[rules]]", 1)[1]
RULES_TOML = "[[rules]]" + RULES_TOML


@pytest.fixture(autouse=True)
def _no_proxy_from_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests talk to loopback servers: a proxy set on the machine running them must
    not carry their requests (the fetcher and the CLI read these, as curl does)."""
    for scheme in ("http", "https", "all", "no"):
        monkeypatch.delenv(f"{scheme}_proxy", raising=False)
        monkeypatch.delenv(f"{scheme.upper()}_PROXY", raising=False)


def feed_bytes(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as srv:
        yield srv


@pytest.fixture
def icmpd_a(server: FixtureServer) -> str:
    """The ICMPD feed as on 15 May 2020, served at /rss; returns its URL."""
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-a.rss")))
    return server.url("/rss")


def make_config(tmp_path: Path, body: str, *, rules: bool = True) -> Path:
    """Write a config file with the ICMPD rules appended; returns its path."""
    text = textwrap.dedent(body)
    if rules:
        text += "\n" + RULES_TOML
    path = tmp_path / "harvester.toml"
    path.write_text(text, "utf-8")
    return path


def page_body(server: FixtureServer, snap: str, n: int) -> bytes:
    """Page `n` of snapshot `snap`, its links pointing back at this server."""
    return (LISTINGS / f"news-{snap}-page-{n}.html").read_bytes().replace(
        b"https://www.icmpd.org/", server.base.encode() + b"/")


def serve(server: FixtureServer, snap: str, pages: int = 5) -> None:
    """Snapshot `snap` at /news-centre/ and ?page=N."""
    for n in range(1, pages + 1):
        r = Response(page_body(server, snap, n), content_type="text/html; charset=utf-8")
        server.route(f"/news-centre/?page={n}", r)
        if n == 1:
            server.route("/news-centre/", r)


def redirect(status: int, to: str) -> Response:
    """A redirect answer to `to` (a path or a URL), never conditional."""
    return Response(b"", status=status, headers={"Location": to}, conditional=False)


def feed_source(name: str, url: str, **extra: object) -> str:
    lines = ["[[sources]]", f'name = "{name}"', 'kind = "feed"', f'url = "{url}"',
             "category_from_title = true"]
    for k, v in extra.items():
        lines.append(f"{k} = {v!r}" if not isinstance(v, bool) else f"{k} = {str(v).lower()}")
    return "\n".join(lines) + "\n"


def http_fast(defaults: str = "") -> str:
    """Storage, quick-failing HTTP and [defaults] (plus any extra default lines)."""
    return ('[storage]\npath = "h.db"\n\n[http]\ntimeout = 2\nretries = 0\n\n'
            f'[defaults]\ntimezone = "Europe/Vienna"\n{defaults}')


HTTP_FAST = http_fast()


@pytest.fixture
def config_for(tmp_path: Path):
    """config_for(source_blocks..., notifiers=...) → loaded Config with a db in tmp_path."""

    def build(*sources: str, notifiers: str = "", http: str = HTTP_FAST) -> Config:
        return load_config(make_config(tmp_path, http + "\n".join(sources) + notifiers))

    return build


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "h.db")
    yield s
    s.close()


@pytest.fixture
def no_public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine resolves address literals and localhost only: a name under .example
    fails as a public name does with no network (which the tests may not use anyway)."""
    real = socket.getaddrinfo

    def resolve(host, *a, **kw):
        if host.endswith(".example"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


_PORTS = random.SystemRandom()  # not the seeded `random`: each test process its own ports


def free_port() -> int:
    """A loopback port nothing listens on: bound, then released. A server may take it; a
    connect to it is refused. Picked below the kernel's ephemeral range, from which every
    connect() and bind to port 0 is given one: with tests in four processes, a port from
    that range was at times given to another socket before the server meant for it bound it
    ("Address already in use")."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    for _ in range(200):
        port = _PORTS.randrange(10_000, max(low, 10_001))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # a service of this machine has it
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 60, max_file_size: int | None = None,
            prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """The real command line, as a child process; with `max_file_size`, one that can write
    no file past that many bytes, as on a full disk (the kernel refuses the write); with
    `prefix`, started through that command (e.g. one that drops privileges)."""
    full_env = {**os.environ, "PYTHONUTF8": "1", **(env or {})}
    full_env.pop("HARVESTER_CONFIG", None) if env is None or "HARVESTER_CONFIG" not in env else None

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_size, max_file_size))

    return subprocess.run([*prefix, sys.executable, "-m", "harvester", *args],
                          capture_output=True,
                          text=True, cwd=cwd, env=full_env, timeout=timeout,
                          preexec_fn=None if max_file_size is None else limit)


@contextmanager
def source_lock_held(db: Path, source: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holds `source`'s poll lock on `db` while the block runs (a lock this
    process took would not keep out its own polls: record locks are the process's)."""
    code = ("import sys; from pathlib import Path; from harvester.locks import SourceLocks; "
            f"ok = SourceLocks.for_database(Path({str(db)!r})).acquire({source!r}); "
            "print('held' if ok else 'busy', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


class Running:
    """A daemon process whose output goes to files, so the test can read it any time."""

    def __init__(self, cfg: Path, tmp: Path, http: bool = True, args: Sequence[str] = ()):
        self.port = free_port()
        self.out, self.err = tmp / "daemon.out", tmp / "daemon.err"
        args = [sys.executable, "-m", "harvester", "--config", str(cfg), "run",
                "--log-format", "json", *args]
        if http:
            args += ["--http", f"127.0.0.1:{self.port}"]
        self.proc = subprocess.Popen(args, stdout=self.out.open("w"), stderr=self.err.open("w"),
                                     env={**os.environ, "PYTHONUTF8": "1"})

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def logs(self) -> list[dict]:
        return [json.loads(x) for x in self.err.read_text().splitlines() if x.startswith("{")]

    def wait_for(self, cond, timeout: float = 20.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = cond()
            if value:
                return value
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}: "
                                     f"{self.err.read_text()[-2000:]}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; log:\n{self.err.read_text()[-3000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(15)


@pytest.fixture
def running(tmp_path):
    started: list[Running] = []

    def start(cfg: Path, **kw) -> Running:
        d = Running(cfg, tmp_path, **kw)
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)


SITEMAP_NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
NEWS_NS = 'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'


def news_sitemap(entries: list[dict], plain: bool = False) -> bytes:
    """The listing fixture's entries as the site's sitemap: Google News' extension (title,
    publication date) or, `plain`, only each page's link and last modification."""
    from datetime import datetime
    from html import escape

    urls = []
    for e in entries:
        day = datetime.strptime(e["date"], "%d %B %Y").strftime("%Y-%m-%d")
        loc = f"<loc>https://www.icmpd.org{e['path']}</loc>"
        if plain:
            urls.append(f"<url>{loc}<lastmod>{day}</lastmod></url>")
        else:
            urls.append(f"<url>{loc}<news:news><news:publication>ICMPD</news:publication>"
                        f"<news:publication_date>{day}T09:00:00+02:00</news:publication_date>"
                        f"<news:title>{escape(e['title'])}</news:title></news:news></url>")
    ns = SITEMAP_NS + ("" if plain else " " + NEWS_NS)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {ns}>\n' + "\n".join(urls)
            + "\n</urlset>\n").encode()
