"""fetch.py's socket layer: the network policy at connect time, and whole-request deadlines.

The policy must see the address actually dialled, not the URL's spelling, and it
must not resolve twice (a name that answers "public" to the check and "private"
to the connect is the DNS-rebinding trick): so the connection classes resolve the
name once, check every address, and connect to a checked address literally.

A per-read timeout does not bound a request: a server dripping a byte every few
seconds never trips it. A reaper thread shuts the sockets of any request that
outlives its deadline, wherever it is blocked (headers or body).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.poolmanager import PoolManager, ProxyManager
from urllib3.util import connection as u3conn
from urllib3.util import make_headers

from .netpolicy import NetworkPolicy
from .proxy import Proxy


class PolicyRefusal(Exception):
    """Raised inside urllib3 when every address of a host is refused; not an OSError,
    so no retry layer mistakes it for a flaky network."""


class DeadlinePassed(Exception):
    """A new connection was asked for after the request's deadline had passed."""


class Watch:
    """One request's deadline and the sockets it used. Sockets, not connections: when a
    response says "Connection: close", http.client drops the connection's socket and the
    response reads from it alone."""

    __slots__ = ("_lock", "_socks", "deadline", "done", "expired")

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.done = self.expired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()

    def add(self, sock: socket.socket | None) -> None:
        with self._lock:
            if self.expired:
                raise DeadlinePassed
            if sock is not None:
                self._socks.append(sock)

    def expire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.expired = True
            socks, self._socks = self._socks, []
        for sock in socks:
            with contextlib.suppress(OSError):  # a detached or closed socket: nothing to stop
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv at once

    def disarm(self) -> None:
        with self._lock:
            self.done = True
            self._socks = []


class _Reaper:
    """One daemon thread expiring watches in deadline order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watch]] = []
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> Watch:
        w = Watch(time.monotonic() + seconds)
        with self._cv:
            heapq.heappush(self._heap, (w.deadline, next(self._seq), w))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="harvester-deadlines")
                self._thread.start()
            self._cv.notify()
        return w

    def expire_all(self) -> None:
        """End every request in flight now, as if its deadline had come."""
        with self._cv:
            watches, self._heap = [w for _, _, w in self._heap], []
        for w in watches:
            w.expire()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._heap:
                    self._cv.wait()
                deadline, _, w = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cv.wait(wait)
                    continue
                heapq.heappop(self._heap)
                if w.deadline > deadline and not w.done:  # restarted: due later
                    heapq.heappush(self._heap, (w.deadline, next(self._seq), w))
                    continue
            w.expire()


_reaper = _Reaper()
_current = threading.local()


def arm(seconds: float) -> Watch:
    """Start a deadline for the requests this thread makes until the watch is disarmed."""
    w = _reaper.arm(seconds)
    _current.watch = w
    return w


def disarm(w: Watch) -> None:
    w.disarm()
    if getattr(_current, "watch", None) is w:
        _current.watch = None


def restart(w: Watch, seconds: float) -> None:
    """Move a watch's deadline to `seconds` from now (a request that waited its turn starts
    its own time); one already expired stays so."""
    w.deadline = time.monotonic() + seconds


def interrupt_requests() -> None:
    """Cut short every request in flight in this process (their fetches fail as timed out):
    what an interrupted `harvester once` needs so as not to wait out their timeouts."""
    _reaper.expire_all()


def pause(seconds: float) -> None:
    """Sleep between a request's attempts, never past its deadline: a request out of time
    ends at the deadline, not after the backoff (or the short Retry-After) it was in."""
    w: Watch | None = getattr(_current, "watch", None)
    if w is not None and w.deadline - time.monotonic() <= seconds:
        time.sleep(max(0.0, w.deadline - time.monotonic()))
        raise DeadlinePassed
    time.sleep(seconds)


def _watching(sock: socket.socket | None) -> None:
    w: Watch | None = getattr(_current, "watch", None)
    if w is not None:
        w.add(sock)


def _connect(conn: HTTPConnection, policy: NetworkPolicy | None) -> socket.socket:
    """urllib3's _new_conn, with the policy applied to the resolved addresses (None: the
    operator's own proxy, which the policy does not judge)."""
    host, port = conn._dns_host, conn.port  # _dns_host: the name without IPv6 brackets
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise NameResolutionError(conn.host, conn, e) from e
    addresses = list(dict.fromkeys(str(ai[4][0]) for ai in infos))
    allowed = addresses if policy is None else [a for a in addresses if policy.permits(a)]
    if not allowed:
        raise PolicyRefusal(policy.refusal(conn.host, addresses))  # type: ignore[union-attr]
    w: Watch | None = getattr(_current, "watch", None)
    if w is not None and w.expired:
        raise DeadlinePassed
    error: OSError | None = None
    for address in allowed:
        try:
            # an address literal: create_connection's own getaddrinfo cannot re-resolve it
            sock = u3conn.create_connection((address, port), conn.timeout,
                                            source_address=conn.source_address,
                                            socket_options=conn.socket_options)
            _watching(sock)
            return sock
        except TimeoutError as e:
            raise ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
            ) from e
        except OSError as e:
            error = e
    # chained, so a report can name the socket's own error ("Connection refused")
    raise NewConnectionError(conn, f"Failed to establish a new connection: {error}") from error


def _pool_classes(policy: NetworkPolicy | None) -> dict[str, type]:
    class Conn(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(self, policy)

    class SConn(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(self, policy)

        def connect(self) -> None:
            super().connect()
            _watching(self.sock)  # the TLS socket the response will read from

    class Pool(HTTPConnectionPool):
        ConnectionCls = Conn

        def _make_request(self, conn: Any, *a: Any, **kw: Any) -> Any:
            _watching(conn.sock)  # a kept-alive connection's socket (a new one: _connect)
            return super()._make_request(conn, *a, **kw)

    class SPool(HTTPSConnectionPool):
        ConnectionCls = SConn

        def _make_request(self, conn: Any, *a: Any, **kw: Any) -> Any:
            _watching(conn.sock)
            return super()._make_request(conn, *a, **kw)

    return {"http": Pool, "https": SPool}


def guarded_pool_manager(policy: NetworkPolicy, **kw: Any) -> PoolManager:
    """A urllib3 pool manager whose every connection is made under `policy`."""
    pm = PoolManager(**kw)
    pm.pool_classes_by_scheme = _pool_classes(policy)
    return pm


def guarded_proxy_manager(proxy: Proxy, **kw: Any) -> ProxyManager:
    """A urllib3 proxy manager for `proxy`, with the deadlines of a direct one. The policy
    is checked on the target before a request (check_proxied): the proxy connects, not us."""
    headers = make_headers(proxy_basic_auth=proxy.auth) if proxy.auth else None
    pm = ProxyManager(proxy.url, proxy_headers=headers, **kw)
    pm.pool_classes_by_scheme = _pool_classes(None)
    return pm


def check_proxied(host: str, port: int | None, policy: NetworkPolicy) -> None:
    """The policy for a request a proxy will make: an address literal in any spelling
    (decimal, hex, mapped IPv6) is judged as on a direct connection. Names are the proxy's
    to resolve: resolving them here as well could stall every request on a resolver this
    machine cannot reach (common behind a proxy), and would not bind what the proxy dials."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, 0, socket.SOCK_STREAM, 0,
                                   socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return  # a name
    addresses = list(dict.fromkeys(str(ai[4][0]) for ai in infos))
    if not all(policy.permits(a) for a in addresses):
        raise PolicyRefusal(policy.refusal(host, addresses))


__all__ = ["DeadlinePassed", "PolicyRefusal", "Watch", "arm", "check_proxied", "disarm",
           "guarded_pool_manager", "guarded_proxy_manager", "restart"]
