"""The daemon's small HTTP face: /healthz, /metrics, a plain status page and an Atom feed."""

from __future__ import annotations

import hashlib
import html
import json
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from .dates import iso_utc, shown_when
from .errors import HarvesterError
from .store import SqliteStore
from .words import is_count

if TYPE_CHECKING:
    from .daemon import Daemon


def _page(daemon: Daemon) -> str:
    # its own short-lived connection: the server runs each request on a new thread, and
    # daemon.store() keeps one connection per thread for the daemon's life
    with SqliteStore(daemon.config.storage.path) as store:
        return _render(store, daemon.config_refused, daemon.next_polls(),
                       daemon.config.zone_of)


def _news(s: dict[str, Any]) -> str:
    """When a source last brought news: a new item, or a watched page's edit."""
    if not s["last_new"]:
        return ""
    if s["kind"] == "page":
        return f"edited {s['last_edit']}" if s["last_edit"] else "none since the baseline"
    return s["last_new_item"] or "none since the baseline"


def _render(store: SqliteStore, refused: str | None = None,
            next_polls: Mapping[str, datetime | None] | None = None,
            zone_of: Callable[[str], str] = lambda _: "UTC") -> str:
    """The page; `zone_of`: a source's time zone, in which its items' dates are shown."""
    e = html.escape
    rows = []
    for s in store.sources():
        state = "ok" if not s["consecutive_failures"] else f"failing ({s['consecutive_failures']})"
        if s["last_warning"]:  # works, but wants a look: a feed that moved, a malformed one
            state += f"; warning: {s['last_warning']}"
        # none: a source the daemon no longer polls (removed from the config, disabled)
        when = (next_polls or {}).get(s["name"])
        news = _news(s)
        rows.append(f"<tr><td>{e(s['name'])}</td><td>{e(state)}</td><td>{s['items']}</td>"
                    f"<td>{e(news)}</td><td>{e(s['last_success'] or 'never')}</td>"
                    f"<td>{iso_utc(when) if when else ''}</td>"
                    f"<td>{e(s['last_error'] or '')}</td></tr>")
    matched = [i for i in store.items(limit=200) if i["rules"]][:20]
    items = "".join(
        f"<li>{e(shown_when(i['published'], zone_of(i['source']))[:10])} "
        f"<b>{e(', '.join(i['rules']))}</b> "
        f"<a href=\"{e(i['url'] or '', quote=True)}\">{e(i['title'])}</a></li>"
        for i in matched if (i["url"] or "").startswith(("http://", "https://")))
    # a source failing now shows above; these say what failed lately, recovered or not
    failed = "".join(f"<li>{e(r['at'])} <b>{e(r['source'])}</b>: {e(r['error'] or '')}</li>"
                     for r in reversed(store.fetch_log(status="error", last=10)))
    counts = ", ".join(f"{st}: {n}" for st, n in store.outbox_counts()) or "empty"
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>harvester</title>"
            "<link rel=\"alternate\" type=\"application/atom+xml\" title=\"harvester\""
            " href=\"/feed.atom\"></head>"
            "<body><h1>harvester</h1>"
            + (f"<p><b>The config on disk was refused</b> ({e(refused)}); the daemon runs the "
               "one it had before. `harvester check` says what to fix.</p>" if refused else "")
            + "<h2>Sources</h2><table border=\"1\" cellpadding=\"4\">"
            "<tr><th>source</th><th>health</th><th>items</th><th>last new item</th>"
            "<th>last success</th>"
            f"<th>next poll</th><th>last error</th></tr>{''.join(rows)}</table>"
            f"<h2>Recent matched items</h2><ul>{items}</ul>"
            f"<h2>Recent failures</h2><ul>{failed or '<li>none</li>'}</ul>"
            f"<h2>Outbox</h2><p>{e(counts)}</p></body></html>")


def _feed(daemon: Daemon, query: str) -> bytes:
    """/feed.atom?rule=…&source=…&q=…&limit=…: the selection as `items --atom` gives it."""
    from urllib.parse import parse_qs

    from .atom import NEWEST, atom_feed, selection

    q = {k: v[-1] for k, v in parse_qs(query).items()}
    said = q.get("limit", "")
    limit = int(said) if is_count(said) and int(said) > 0 else NEWEST
    with SqliteStore(daemon.config.storage.path) as store:
        rows = store.items(source=q.get("source"), rule=q.get("rule"), text=q.get("q"),
                           limit=min(limit, 1000))
    title, feed_id = selection(q.get("source"), q.get("rule"), q.get("q"))
    return atom_feed(rows, title=title, feed_id=feed_id)


# A connection that has not finished its request by then is closed: each holds a thread,
# and a scanner or a stalled client that opens many and says nothing must not pile them up.
IDLE_TIMEOUT = 30.0


def serve(daemon: Daemon, address: str) -> ThreadingHTTPServer:
    host, _, port = address.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        server_version = "harvester"
        timeout = IDLE_TIMEOUT

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: bytes, ctype: str, etag: str | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            if etag:
                self.send_header("ETag", etag)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _send_feed(self, body: bytes) -> None:
            # feed readers poll: the same feed again is a 304, as harvester asks of others
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            if etag in (self.headers.get("If-None-Match") or ""):
                self._send(304, b"", "application/atom+xml; charset=utf-8", etag)
            else:
                self._send(200, body, "application/atom+xml; charset=utf-8", etag)

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if path == "/healthz":
                ok, detail = daemon.healthy()
                self._send(200 if ok else 503, json.dumps({"ok": ok, **detail}).encode(),
                           "application/json")
            elif path == "/metrics":
                self._send(200, daemon.metrics.render(),
                           "text/plain; version=0.0.4; charset=utf-8")
            elif path in ("/", "/feed.atom"):
                try:
                    if path == "/":
                        self._send(200, _page(daemon).encode(), "text/html; charset=utf-8")
                    else:
                        self._send_feed(_feed(daemon, query))
                except HarvesterError as e:
                    # its database unreadable: said, where a dropped connection says nothing
                    self._send(503, f"{e}\n".encode(), "text/plain; charset=utf-8")
            else:
                self._send(404, b"not found\n", "text/plain")

        # uptime monitors (and `curl -I`) ask with HEAD: the GET's status and headers
        do_HEAD = do_GET

    host = host.strip("[]") or "127.0.0.1"

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        daemon_threads = True

    try:
        server = Server((host, int(port)), Handler)
    except (OSError, OverflowError) as e:  # in use, not this machine's, no such host
        raise HarvesterError(f"cannot serve HTTP on {address}: "
                             f"{getattr(e, 'strerror', None) or e}") from e
    threading.Thread(target=server.serve_forever, daemon=True, name="http").start()
    return server
