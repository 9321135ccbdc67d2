"""A loopback HTTP server for the demo and the tests: real sockets, real HTTP/1.1.

Serves byte bodies at paths with ETag and Last-Modified (answering conditional
requests with 304), optional gzip, and records every request so a test can say
exactly what the harvester asked for. It binds loopback only; given a TLS context
it speaks HTTPS.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Response:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    conditional: bool = True  # send ETag/Last-Modified and honour If-None-Match
    last_modified: float = 1_590_570_399.0  # fixed, so runs are repeatable

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 drops connects under concurrency: 1 s stalls


Handler = Callable[[BaseHTTPRequestHandler], Response | None]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]


class FixtureServer:
    """`with FixtureServer() as srv: srv.route('/rss', Response(body)); srv.url('/rss')`."""

    def __init__(self, gzip_bodies: bool = True, host: str = "127.0.0.1",
                 tls: ssl.SSLContext | None = None):
        self.routes: dict[str, Response | Handler] = {}
        self.requests: list[Request] = []
        self.in_flight = 0
        self.peak_in_flight = 0  # the most requests it was answering at once
        self.gzip_bodies = gzip_bodies
        self._lock = threading.Lock()
        if not host.startswith("127."):
            raise ValueError("the fixture server only binds loopback addresses (127.0.0.0/8)")
        self._httpd = _Server((host, 0), self._handler_class())
        self._httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
            self.scheme = "https"
        # a short poll interval: stop() waits for it, and tests stop a server each
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,),
                                        daemon=True, name="fixture-server")

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        assert isinstance(host, str)  # an AF_INET(6) server's address: never bytes
        return f"{self.scheme}://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, response: Response | Handler) -> None:
        with self._lock:
            self.routes[path] = response

    def hits(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def start(self) -> FixtureServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FixtureServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "harvester-fixtures/1"
            # headers and body are two writes: with Nagle's algorithm the body would wait
            # ~40 ms for the client's delayed ACK on a kept-alive connection
            disable_nagle_algorithm = True

            def log_message(self, fmt: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                with server._lock:
                    server.requests.append(Request("GET", self.path, dict(self.headers.items())))
                    route = server.routes.get(self.path)
                    server.in_flight += 1
                    server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                try:
                    self._route(route)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _route(self, route: Response | Handler | None) -> None:
                if route is None:
                    resp = Response(b"not found", 404, "text/plain", conditional=False)
                elif isinstance(route, Response):
                    resp = route
                else:
                    answer = route(self)
                    if answer is None:  # the handler wrote (or dropped) the answer itself
                        return
                    resp = answer
                self._answer(resp)

            def _answer(self, r: Response) -> None:
                headers = {"Content-Type": r.content_type, **r.headers}
                if r.conditional and r.status == 200:
                    lm = formatdate(r.last_modified, usegmt=True)
                    headers.update({"ETag": r.etag, "Last-Modified": lm})
                    if self.headers.get("If-None-Match") == r.etag or (
                        "If-None-Match" not in self.headers
                        and self.headers.get("If-Modified-Since") == lm
                    ):
                        self.send_response(304)
                        for k in ("ETag", "Last-Modified"):
                            self.send_header(k, headers[k])
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                body = r.body
                if (server.gzip_bodies and body and "Content-Encoding" not in headers
                        and "gzip" in self.headers.get("Accept-Encoding", "")):
                    body = gzip.compress(body, mtime=0)
                    headers["Content-Encoding"] = "gzip"
                self.send_response(r.status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                # the client may have given up (a timeout under test): not our failure
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

        return _H


__all__ = ["FixtureServer", "Request", "Response"]
