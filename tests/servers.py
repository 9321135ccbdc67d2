"""Real peers on loopback: an SMTP server and a webhook receiver for the notification
tests, a forward HTTP proxy for the proxy tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from .conftest import free_port

USER, PASSWORD = "watcher", "s3cret"


class _Collect:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.unknown: set[str] = set()  # recipients refused at RCPT, as a mailbox no one has

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.unknown:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content,
                                                policy=policy.default))
        return "250 OK queued"


def _auth(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(), auth_data.password.decode()) == (USER, PASSWORD)
    return AuthResult(success=ok)


class SMTPServer:
    """aiosmtpd on 127.0.0.1 requiring STARTTLS and AUTH; `messages` holds what arrived."""

    def __init__(self, tls: ssl.SSLContext, port: int = 0, *, utf8: bool = True):
        self.handler = _Collect()
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=port or free_port(),
            tls_context=tls, require_starttls=True, authenticator=_auth,
            auth_require_tls=True, auth_exclude_mechanism=["CRAM-MD5"],
            enable_SMTPUTF8=utf8)  # False: a relay that takes ASCII addresses only

    @property
    def port(self) -> int:
        return self.controller.port

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages

    def start(self) -> SMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class Delivery:
    id: str
    timestamp: str
    signature: str | None
    body: dict
    valid: bool
    path: str = "/"
    headers: dict[str, str] = field(default_factory=dict)  # as sent, names lower-cased
    method: str = "POST"


class _Quiet(BaseHTTPRequestHandler):
    """A keep-alive HTTP/1.1 handler that logs nothing (the tests assert what it saw)."""

    protocol_version = "HTTP/1.1"
    # headers and body go in two writes: with Nagle's algorithm on, the body waits for the
    # client's delayed ACK, ~40 ms an answer (as the benchmark's server did before 922bb85)
    disable_nagle_algorithm = True

    def log_message(self, *a: object) -> None:
        pass


class _Served:
    """An HTTP server on 127.0.0.1, answering from a thread until stop()."""

    httpd: ThreadingHTTPServer

    def _serve(self, handler: type[BaseHTTPRequestHandler],
               tls: ssl.SSLContext | None = None) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Receiver(_Served):
    """A webhook receiver that checks signatures as a receiver would and answers from a
    script: `answers` is a list of (status, headers), or (status, headers, body), used in
    turn, then 200. A body that is a function gives the chunks of a chunked answer, for as
    long as it yields and the sender reads."""

    secret: bytes | None = None
    answers: list[tuple[Any, ...]] = field(default_factory=list)
    hold: float = 0.0  # seconds to sit on a request before answering (crash tests)
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    tls: ssl.SSLContext | None = None  # HTTPS, with this server context

    def __post_init__(self) -> None:
        receiver = self

        class H(_Quiet):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                msg_id = self.headers.get("webhook-id", "")
                stamp = self.headers.get("webhook-timestamp", "")
                sig = self.headers.get("webhook-signature")
                valid = receiver.verify(msg_id, stamp, body, sig)
                with receiver.lock:
                    receiver.deliveries.append(
                        Delivery(msg_id, stamp, sig, json.loads(body), valid, self.path,
                                 {k.lower(): v for k, v in self.headers.items()},
                                 self.command))
                    status, headers, *body = (receiver.answers.pop(0) if receiver.answers
                                              else (200, {}))
                if receiver.hold:
                    time.sleep(receiver.hold)
                payload = body[0] if body else (b'{"ok": true}' if status < 400 else
                                                b'{"error": "no"}')
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    if callable(payload):
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for chunk in payload():
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                            self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")
                        return
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up while held (its timeout): nobody to answer

            do_PUT = do_POST  # Matrix sends each event by PUT, under its transaction id

        self._serve(H, self.tls)

    def verify(self, msg_id: str, stamp: str, body: bytes, sig: str | None) -> bool:
        if self.secret is None:
            return sig is None
        if not sig:
            return False
        mac = hmac.new(self.secret, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256)
        expected = "v1," + base64.b64encode(mac.digest()).decode()
        return any(hmac.compare_digest(expected, s) for s in sig.split())

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/hook"


def tls_for_tests(tmp: Path) -> Iterator[tuple[ssl.SSLContext, Path]]:
    """A server TLS context for 127.0.0.1 and the CA file a client must trust."""
    import trustme

    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    ca_file = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    yield ctx, ca_file


@dataclass
class ForwardProxy(_Served):
    """A forward HTTP proxy as an office has one: absolute-form requests relayed, CONNECT
    tunnelled, credentials required when `credentials` ("user:password") is set. Whatever
    host a request names, it is relayed to 127.0.0.1 at that port, so a test can name a
    target (127.0.0.2) that the harvester could not reach without the proxy. `seen` has
    each request's method, target and Proxy-Authorization."""

    credentials: str | None = None
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        proxy = self

        class H(_Quiet):
            def _admit(self) -> bool:
                auth = self.headers.get("Proxy-Authorization")
                proxy.seen.append((self.command, self.path, auth))
                if proxy.credentials is None or auth == "Basic " + base64.b64encode(
                        proxy.credentials.encode()).decode():
                    return True
                self.send_response(407)
                self.send_header("Proxy-Authenticate", 'Basic realm="office"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return False

            def _relay(self) -> None:
                if not self._admit():
                    return
                target = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items()
                           if not k.lower().startswith("proxy-") and k.lower() != "connection"}
                upstream = http.client.HTTPConnection("127.0.0.1", target.port, timeout=5)
                upstream.request(self.command, target.path + (f"?{target.query}" if
                                 target.query else ""), body=body or None, headers=headers)
                resp = upstream.getresponse()
                data = resp.read()  # as sent: http.client leaves gzip encoded
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = _relay

            def do_CONNECT(self) -> None:
                self.close_connection = True
                if not self._admit():
                    return
                port = int(self.path.rsplit(":", 1)[1])
                upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
                self.send_response(200, "Connection established")
                self.end_headers()
                ends = [self.connection, upstream]
                while True:
                    ready, _, _ = select.select(ends, [], [], 5)
                    if not ready:
                        break
                    for sock in ready:
                        chunk = sock.recv(65536)
                        if not chunk:
                            upstream.close()
                            return
                        (upstream if sock is self.connection else self.connection).sendall(chunk)
                upstream.close()

        self._serve(H)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
