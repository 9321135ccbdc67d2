"""Loopback server for the benchmark corpus (127.0.0.1 only).

    GET /feeds.txt                      one feed URL per line
    GET /feeds/<i>.xml                  feed i: ETag, Last-Modified, 304, gzip
    GET /listings.txt, /listings/<i>.html   the same entries as the news centre's HTML page
    GET /_control/advance?pct=5         one new item in pct% of the feeds (deterministic)
    GET /_control/reset                 back to the first generation
    GET /_control/stats                 request counts by status

`python bench/server.py --n 200 --m 50 --latency-ms 50 --port-file PORT` prints
"LISTENING http://127.0.0.1:PORT" and serves until killed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import sys
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus


class Feeds:
    def __init__(self, seed: int, n: int, m: int):
        self.seed, self.n, self.m = seed, n, m
        self.lock = threading.Lock()
        self.round = 0
        self.heads = [corpus.initial_head(m)] * n
        self.cache: dict[tuple[str, int, int], tuple[bytes, bytes, str, str]] = {}
        self.counts: dict[str, int] = {}

    def entity(self, i: int, kind: str = "feeds") -> tuple[bytes, bytes, str, str]:
        key = (kind, i, self.heads[i])
        e = self.cache.get(key)
        if e is None:
            render = corpus.render_feed if kind == "feeds" else corpus.render_listing
            body = render(self.seed, i, self.m, self.heads[i])
            etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
            lm = formatdate(1_577_836_800 + self.heads[i] * 3600, usegmt=True)
            e = (body, gzip.compress(body, 6, mtime=0), etag, lm)
            self.cache[key] = e
        return e

    def advance(self, pct: float) -> list[int]:
        with self.lock:
            self.round += 1
            k = max(1, round(self.n * pct / 100))
            chosen = sorted(random.Random(f"{self.seed}:{self.round}").sample(range(self.n), k))
            for i in chosen:
                self.heads[i] += 1
            return chosen

    def reset(self) -> None:
        with self.lock:
            self.round, self.heads = 0, [corpus.initial_head(self.m)] * self.n


# what /<kind>/<i><ext> serves: the feed, or the same entries as an HTML listing page
KINDS = {"feeds": (".xml", "application/rss+xml; charset=utf-8"),
         "listings": (".html", "text/html; charset=utf-8")}


def handler(feeds: Feeds, latency: float, base: list[str]) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes. With Nagle's algorithm on, the body waits
        # for the client's delayed ACK of the headers: ~40 ms per response, which real
        # servers do not add and which would be measured as every client's fetch time.
        disable_nagle_algorithm = True

        def log_message(self, *a: object) -> None:
            pass

        def send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None):
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            with feeds.lock:
                feeds.counts[str(code)] = feeds.counts.get(str(code), 0) + 1

        def do_GET(self) -> None:
            u = urlsplit(self.path)
            q = parse_qs(u.query)
            if u.path in ("/feeds.txt", "/listings.txt"):
                kind, ext = ("feeds", "xml") if u.path == "/feeds.txt" else ("listings", "html")
                urls = "\n".join(f"{base[0]}/{kind}/{i}.{ext}" for i in range(feeds.n))
                return self.send(200, urls.encode(), {"Content-Type": "text/plain"})
            if u.path == "/_control/advance":
                chosen = feeds.advance(float(q.get("pct", ["5"])[0]))
                return self.send(200, json.dumps(chosen).encode())
            if u.path == "/_control/reset":
                feeds.reset()
                return self.send(200, b"{}")
            if u.path == "/_control/stats":
                return self.send(200, json.dumps(feeds.counts).encode())
            if latency:
                time.sleep(latency)
            parts = u.path.split("/")
            if len(parts) != 3 or parts[1] not in KINDS:
                return self.send(404)
            ext, ctype = KINDS[parts[1]]
            stem = parts[2].removesuffix(ext)
            if stem == parts[2] or not stem.isdigit() or not 0 <= int(stem) < feeds.n:
                return self.send(404)
            body, gz, etag, lm = feeds.entity(int(stem), parts[1])
            headers = {"ETag": etag, "Last-Modified": lm, "Content-Type": ctype}
            if self.headers.get("If-None-Match") == etag:
                return self.send(304, b"", {"ETag": etag, "Last-Modified": lm})
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                return self.send(200, gz, {**headers, "Content-Encoding": "gzip"})
            return self.send(200, body, headers)

    return H


class Server(ThreadingHTTPServer):
    # the default backlog of 5 drops SYNs under 16 concurrent connects: a 1 s retransmit
    # that would be measured as the client's time
    request_queue_size = 256


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--m", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--latency-ms", type=float, default=0)
    ap.add_argument("--port-file")
    a = ap.parse_args()
    feeds = Feeds(a.seed, a.n, a.m)
    base: list[str] = [""]
    httpd = Server(("127.0.0.1", 0), handler(feeds, a.latency_ms / 1000, base))
    httpd.daemon_threads = True
    base[0] = f"http://127.0.0.1:{httpd.server_address[1]}"
    for i in range(a.n):  # render up front so the server's CPU is not in the measurement
        feeds.entity(i)
        feeds.entity(i, "listings")
    if a.port_file:
        Path(a.port_file).write_text(str(httpd.server_address[1]))
    print(f"LISTENING {base[0]}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
