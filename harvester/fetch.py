"""The only place that talks HTTP to sources.

urllib3 directly (requests' own transport, without the Session layer that cost
twice the CPU per request and 0.1 s of start-up): one thread-safe pool manager per
network policy, with urllib3's Retry
for transient failures (connection errors, 429, 502–504; a short Retry-After waited
out, a long one returned to the scheduler), conditional GET, a streamed size cap
counted on decompressed bytes, redirects followed here (http(s) only, loops and
the hop limit caught, every hop's address checked by the network policy at connect
time, see transport.py), a whole-request deadline, and the proxy that `[http] proxy`
or the environment names (proxy.py).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.response import BaseHTTPResponse
from urllib3.util.request import ACCEPT_ENCODING
from urllib3.util.retry import Retry

from .config import HttpConfig, env_refs
from .errors import FetchError, PolicyError, printable
from .models import FetchResult
from .netpolicy import NetworkPolicy
from .proxy import Proxy
from .transport import (
    DeadlinePassed,
    PolicyRefusal,
    Watch,
    arm,
    check_proxied,
    disarm,
    guarded_pool_manager,
    guarded_proxy_manager,
    interrupt_requests,
    pause,
    restart,
)
from .urls import is_http_url, join
from .words import is_count, size

ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
          "application/feed+json;q=0.9, application/xml;q=0.8, text/xml;q=0.8, "
          "text/html;q=0.7, */*;q=0.1")
RETRY_STATUSES = (429, 502, 503, 504)
MAX_RETRY_AFTER_S = 7 * 86400
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_ACCEPTED = "gzip, deflate"  # what requests ask for (gzip bodies can go to workers as sent)
# compressions a server may use though not asked to, which nothing here decodes unless
# urllib3 can (a nonsense label — "utf-8", "none" — is read as the plain body it is)
_UNREADABLE = frozenset({"br", "zstd", "compress", "x-compress", "bzip2", "x-bzip2", "lzma",
                         "xz", "pack200-gzip", "exi", "aes128gcm"}
                        - set(ACCEPT_ENCODING.split(",")))


class _PoliteRetry(Retry):
    """Waits out a short Retry-After in line; a long one ends the request instead, so the
    scheduler honours it and no request reaches the server before the time it asked for.
    A garbage or negative Retry-After is ignored (plain backoff). No wait runs past the
    request's deadline."""

    def parse_retry_after(self, retry_after: str) -> float:
        return retry_after_seconds(retry_after) or 0.0

    def _sleep_backoff(self) -> None:
        backoff = self.get_backoff_time()
        if backoff > 0:
            pause(backoff)

    def sleep_for_retry(self, response: BaseHTTPResponse) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after:
            pause(retry_after)
            return True
        return False

    def increment(self, method: str | None = None, url: str | None = None,
                  response: Any = None, error: Exception | None = None, _pool: Any = None,
                  _stacktrace: Any = None) -> _PoliteRetry:
        if response is not None:
            after = retry_after_seconds(response.headers.get("Retry-After"))
            if after is not None and after > self.retry_after_max:
                raise MaxRetryError(_pool, url, ResponseError(f"Retry-After {after:g}s"))
        if error is not None and _verify_error(error) is not None:
            # a certificate fails alike every time: trying again only waits out backoffs
            raise MaxRetryError(_pool, url, error) from error
        return super().increment(method, url, response, error, _pool, _stacktrace)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds or an HTTP date, capped at 7 days; None when absent,
    garbage or negative."""
    if not value:
        return None
    value = value.strip()
    if is_count(value):
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    delta = when - (time.time() if now is None else now)
    return min(delta, MAX_RETRY_AFTER_S) if delta >= 0 else None


class Fetcher:
    """Fetches URLs under the [http] settings; safe to call from many threads. Without
    `[http] proxy`, the proxy comes from `environ` (default: the process's environment);
    ConfigError names a proxy variable that is wrong."""

    def __init__(self, http: HttpConfig, policy: NetworkPolicy | None = None,
                 environ: Mapping[str, str] | None = None):
        self.http = http
        self.policy = policy or NetworkPolicy(http.allow_networks)
        self.routes = http.proxy_routes(os.environ if environ is None else environ)
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._origins: dict[str, NetworkPolicy] = {}
        self._pools: dict[NetworkPolicy | Proxy, urllib3.PoolManager] = {}
        self._lock = threading.Lock()
        self._headers = {"User-Agent": http.user_agent, "Accept": ACCEPT,
                         "Accept-Encoding": _ACCEPTED}
        t = http.timeout
        self._timeout = urllib3.Timeout(connect=min(t, 10.0), read=t)

    def _host_slot(self, url: str) -> threading.BoundedSemaphore:
        """The semaphore that keeps at most `per_host` requests in flight to url's host."""
        host = (urlsplit(url).hostname or "").lower()
        with self._lock:
            slot = self._hosts.get(host)
            if slot is None:
                slot = self._hosts[host] = threading.BoundedSemaphore(self.http.per_host)
            return slot

    def policy_for(self, origin: str) -> NetworkPolicy:
        """The policy for a source whose configured URL is `origin`: the base policy plus
        the blocked range that URL itself resolves into (resolved once per host)."""
        host = (urlsplit(origin).hostname or "").lower()
        with self._lock:
            known = self._origins.get(host)
        if known is not None:
            return known
        # through a proxy only an address literal counts: the proxy resolves names, and
        # this machine may have no resolver that answers for them
        flags = socket.AI_NUMERICHOST if self.routes.for_url(origin) else 0
        try:
            infos = socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM, 0, flags)
            addresses = [str(ai[4][0]) for ai in infos]
        except (OSError, UnicodeError):
            addresses = []  # unresolvable now: nothing extra allowed, the connect will say why
        policy = self.policy.widened(addresses)
        with self._lock:
            self._origins[host] = policy
        return policy

    def _pool(self, key: NetworkPolicy | Proxy) -> urllib3.PoolManager:
        """The pool manager for one network policy, or for one proxy (thread-safe, shared
        by the workers)."""
        with self._lock:
            pm = self._pools.get(key)
            if pm is None:
                n = self.http.retries
                retry = _PoliteRetry(
                    total=n, connect=n, read=n, status=n, redirect=0, backoff_factor=0.3,
                    status_forcelist=RETRY_STATUSES, allowed_methods=frozenset({"GET"}),
                    respect_retry_after_header=True, raise_on_status=False,
                    raise_on_redirect=False,
                    retry_after_max=int(min(10.0, self.http.timeout)))
                # a pool per host holds as many connections as may be in flight to it
                kw = {"num_pools": 64, "maxsize": self.http.per_host, "retries": retry}
                pm = self._pools[key] = (guarded_proxy_manager(key, **kw)
                                         if isinstance(key, Proxy)
                                         else guarded_pool_manager(key, **kw))
            return pm

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
              source: str | None = None, origin: str | None = None,
              headers: Sequence[tuple[str, str]] = (), decode: bool = True) -> FetchResult:
        """GET url under the network policy of the source whose configured URL is
        `origin` (default: url itself), following at most max_redirects redirects.
        `headers` (a source's own: a token, a cookie) go only to origin's site. With
        `decode=False`, a gzip body is returned as sent (`coding="gzip"`): `decode` gives
        it decoded, elsewhere — a worker process, say."""
        if not is_http_url(url):
            # "www.icmpd.org/news-centre/", as a browser's address bar takes it
            hint = (f" (did you mean https://{url[:200]}?)" if "://" not in url
                    and not any(c.isspace() for c in url) and is_http_url(f"https://{url}")
                    else "")
            raise FetchError(f"not an http(s) URL: {url[:200]}{hint}", source=source, url=url)
        policy = self.policy_for(origin or url)
        # Armed for the wait for a turn at the host as well (so Ctrl-C ends that wait too),
        # then restarted when the request gets it: see _turn.
        watch = arm(self.http.timeout)
        try:
            result = self._fetch(url, etag=etag, last_modified=last_modified, source=source,
                                 policy=policy, watch=watch, site=origin or url,
                                 own_headers=headers, decode=decode)
        except FetchError as e:
            if origin and "${" in origin:
                raise _unsaid(e, origin) from e
            raise
        finally:
            disarm(watch)
        if origin and "${" in origin:  # what a token from the environment filled in
            result = replace(result, url=redacted(result.url, origin),
                             moved_to=result.moved_to and redacted(result.moved_to, origin))
        return result

    def interrupt(self) -> None:
        """Cut short the requests in flight (they fail as timed out): an interrupted run
        must not wait out their timeouts."""
        interrupt_requests()

    def _get(self, url: str, headers: dict[str, str], policy: NetworkPolicy, source: str | None,
             watch: Watch) -> BaseHTTPResponse:
        t = self.http.timeout
        proxy = self.routes.for_url(url)
        try:
            if proxy is None:
                pm = self._pool(policy)
            else:
                parts = urlsplit(url)
                check_proxied(parts.hostname or "", parts.port, policy)
                pm = self._pool(proxy)
            return pm.urlopen(
                "GET", url, headers={**self._headers, **headers}, timeout=self._timeout,
                preload_content=False, redirect=False)
        except PolicyRefusal as e:
            raise PolicyError(str(e), source=source, url=url) from e
        except DeadlinePassed as e:
            raise FetchError(f"timed out after {t:g}s", source=source, url=url) from e
        except urllib3.exceptions.HTTPError as e:
            if is_timeout(e) or watch.expired:
                raise FetchError(f"timed out after {t:g}s", source=source, url=url) from e
            if proxy is not None and any(isinstance(x, urllib3.exceptions.ProxyError)
                                         for x in _chain(e)):
                raise FetchError(f"cannot connect through the proxy {proxy} ({proxy.origin}): "
                                 f"{error_reason(e)}", source=source, url=url) from e
            # retries used up on a connection problem, or the connection broke: "cannot
            # connect"; on a status (ResponseError), or anything else: "request failed"
            if isinstance(e, urllib3.exceptions.ProtocolError) or (
                    isinstance(e, MaxRetryError) and not isinstance(e.reason, ResponseError)):
                raise FetchError(cannot_connect(e, url), source=source, url=url) from e
            raise FetchError(f"request failed: {error_reason(e)}", source=source, url=url) from e
        except OSError as e:
            raise FetchError(cannot_connect(e, url), source=source, url=url) from e

    @contextlib.contextmanager
    def _turn(self, hop: str, watch: Watch, source: str | None, url: str,
              first: bool) -> Iterator[None]:
        """The host's slot (at most `per_host` requests in flight to it), held until the body
        is read, when a request ends. A request waits for it within its timeout, and then
        the first hop's timeout starts afresh: one queued behind a slow host's other
        requests has not been sent, and must not time out unsent."""
        slot = self._host_slot(hop)
        # in short waits, so that an interrupted run (see interrupt) ends them at once
        while not slot.acquire(timeout=min(0.1, max(0.0, watch.deadline - time.monotonic()))):
            if watch.expired or time.monotonic() >= watch.deadline:
                raise self._unsent(hop, watch, source, url)
        try:
            if watch.expired:  # the turn came too late, or the run was interrupted
                raise self._unsent(hop, watch, source, url)
            if first:
                restart(watch, self.http.timeout)
            yield
        finally:
            slot.release()

    def _unsent(self, hop: str, watch: Watch, source: str | None, url: str) -> FetchError:
        t = self.http.timeout
        if time.monotonic() < watch.deadline:  # cut short by interrupt(): said as the others
            return FetchError(f"timed out after {t:g}s", source=source, url=url)
        return FetchError(f"not sent: no turn at {urlsplit(hop).hostname or hop} within "
                          f"{t:g}s ([http] per_host = {self.http.per_host} requests at a "
                          "time, all in flight)", source=source, url=url)

    def _fetch(self, url: str, *, etag: str | None, last_modified: str | None,
               source: str | None, policy: NetworkPolicy, watch: Watch, site: str,
               own_headers: Sequence[tuple[str, str]], decode: bool) -> FetchResult:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        chain = [url]
        permanent = True  # every redirect so far said the move is for good
        jar: _Cookies | None = None  # what the redirects set, for this fetch's later hops
        cookie: str | None = None  # what of it goes with this hop
        visits: set[tuple[str, str | None]] = set()
        while True:
            hop = chain[-1]
            first = len(chain) == 1
            sent = headers
            if own_headers and same_site(site, hop):  # a redirect elsewhere gets none
                sent = {**dict(own_headers), **headers}
            if cookie:
                sent = _with_cookie(sent, cookie)
            visits.add((hop, cookie))
            with self._turn(hop, watch, source, url, first=first):
                if first:
                    start = time.monotonic()  # the wait for the turn is not the server's
                resp = self._get(hop, sent, policy, source, watch)
                try:
                    if resp.status in REDIRECTS and "Location" in resp.headers:
                        permanent = permanent and resp.status in (301, 308)
                        location = resp.headers["Location"].strip()
                        target = join(hop, location)
                        if target is None:
                            raise FetchError(f"redirect to an invalid URL refused: "
                                             f"{location[:200]}", source=source, url=url,
                                             status=resp.status)
                        if resp.headers.get("Set-Cookie"):
                            jar = jar or _Cookies()
                            jar.take(hop, resp.headers.getlist("Set-Cookie"))
                    else:
                        # (a 301 back to the same page, a cookie gate's, moved nothing)
                        moved = hop if permanent and hop != url else None
                        return self._result(resp, hop, etag, last_modified, source, watch,
                                            start, moved, decode)
                finally:
                    _finish(resp)
            cookie = jar.header_for(target) if jar is not None else None
            chain.append(self._check_redirect(chain, target, source, (target, cookie) in visits))

    def _result(self, resp: BaseHTTPResponse, final: str, etag: str | None,
                last_modified: str | None, source: str | None, watch: Watch,
                start: float, moved_to: str | None, decode: bool) -> FetchResult:
        if resp.status == 304 and not (etag or last_modified):
            # "the copy you hold is current", to a request that holds none: taken for "not
            # modified", a source would read nothing, poll after poll, and say it is fine
            raise FetchError(
                f"{_status_message(resp)}, to a request that named no copy of its own (no "
                "If-None-Match or If-Modified-Since): there is nothing to read; a cache in "
                "front of the site answers wrongly", source=source, url=final, status=304)
        if resp.status == 304:
            return FetchResult(url=final, status=304, body=b"",
                               content_type=resp.headers.get("Content-Type"),
                               etag=resp.headers.get("ETag") or etag,
                               last_modified=resp.headers.get("Last-Modified") or last_modified,
                               duration=time.monotonic() - start, not_modified=True,
                               moved_to=moved_to)
        if resp.status >= 400 or resp.status < 200:
            raise FetchError(
                _status_message(resp), source=source, url=final, status=resp.status,
                retry_after=retry_after_seconds(resp.headers.get("Retry-After")))
        if resp.status >= 300:  # not the page: a redirect that says not where, or no redirect
            why = (" without a Location header: the server says the page is elsewhere, and "
                   "not where" if resp.status in REDIRECTS else
                   ": an answer that is not the page (a 3xx that is no redirect to follow)")
            raise FetchError(_status_message(resp) + why, source=source, url=final,
                             status=resp.status)
        sent = resp.headers.get("Content-Encoding", "").strip().lower()
        unread = [c for c in (c.strip() for c in sent.split(",")) if c in _UNREADABLE]
        if unread:  # urllib3 would hand it over as it came: a parse error about garbage
            raise FetchError(f"the body came encoded as {unread[0]!r}, which was not asked for"
                             f" (Accept-Encoding: {_ACCEPTED}) and cannot be read",
                             source=source, url=final, status=resp.status)
        coding = None if decode or sent != "gzip" else "gzip"
        body = self._read_capped(resp, final, source, watch, decode=coding is None)
        if coding is None:
            body = _gzipped_inside(body, self.http.max_bytes, source, final, resp.status)
        return FetchResult(url=final, status=resp.status, body=body,
                           content_type=resp.headers.get("Content-Type"),
                           etag=resp.headers.get("ETag"),
                           last_modified=resp.headers.get("Last-Modified"),
                           duration=time.monotonic() - start, moved_to=moved_to, coding=coding)

    def _check_redirect(self, chain: list[str], target: str, source: str | None,
                        again: bool) -> str:
        """The next hop, if it may be followed: http(s), not asked for before (`again`:
        the same URL with the same cookies), within the limit."""
        scheme = urlsplit(target).scheme.lower()
        if scheme not in ("http", "https"):
            raise PolicyError(f"redirect to a non-http(s) URL refused: {target[:200]}",
                              source=source, url=chain[0])
        if again:
            loop = " → ".join([*chain[chain.index(target):], target])
            raise FetchError(f"redirect loop: {loop[:500]}", source=source, url=chain[0])
        if len(chain) > self.http.max_redirects:
            raise FetchError(f"too many redirects (more than {self.http.max_redirects})",
                             source=source, url=chain[0])
        return target

    def _read_capped(self, resp: BaseHTTPResponse, url: str, source: str | None,
                     watch: Watch, decode: bool) -> bytes:
        cap = self.http.max_bytes
        declared = resp.headers.get("Content-Length", "")
        if is_count(declared) and int(declared) > cap:
            raise FetchError(f"too large: Content-Length {declared} exceeds the {cap}-byte cap",
                             source=source, url=url, status=resp.status)
        chunks, total = [], 0
        try:
            # decode_content: the cap counts decompressed bytes, so a gzip bomb stops at it
            # (a body left compressed meets the cap again in `decode`)
            for chunk in resp.stream(_CHUNK, decode_content=decode):
                total += len(chunk)
                if total > cap:
                    raise _too_large(cap, source, url, resp.status)
                chunks.append(chunk)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            if watch.expired:
                raise FetchError(f"timed out after {self.http.timeout:g}s reading the body",
                                 source=source, url=url, status=resp.status) from e
            if isinstance(e, urllib3.exceptions.DecodeError):  # the server's fault, not the line's
                coding = resp.headers.get("Content-Encoding", "")
                raise _not_coded(coding, error_reason(e), source, url, resp.status) from e
            raise FetchError(_broke_off(e), source=source, url=url, status=resp.status) from e
        if watch.expired:  # the reaper's shutdown can look like a clean end of the body
            raise FetchError(f"timed out after {self.http.timeout:g}s reading the body",
                             source=source, url=url, status=resp.status)
        return b"".join(chunks)


def decode(result: FetchResult, max_bytes: int, source: str | None = None) -> FetchResult:
    """`result` with its body decoded, if it was fetched with decode=False: the cap and the
    errors are those of a body decoded as it arrives. Gzip members after the first are
    read on, and garbage after a whole member is ignored, as urllib3 (and browsers) do."""
    if result.coding is None:
        return result
    assert result.coding == "gzip", result.coding  # the only coding fetch leaves as sent
    try:
        body = _gunzip(result.body, max_bytes, source, result.url, result.status)
    except zlib.error as e:
        raise _not_coded("gzip", str(e), source, result.url, result.status) from e
    return replace(result, body=_gzipped_inside(body, max_bytes, source, result.url,
                                                 result.status), coding=None)


def _gunzip(data: bytes, cap: int, source: str | None, url: str, status: int) -> bytes:
    """Gzip members read as urllib3 reads them: each in turn, garbage after a whole one
    ignored, a cut-short one read as far as it goes; zlib.error if the first is none."""
    out, first = bytearray(), True
    while data:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            # one byte past the cap is enough to know it is passed
            out += d.decompress(data, cap + 1 - len(out))
        except zlib.error:
            if first:
                raise
            break
        if len(out) > cap:
            raise _too_large(cap, source, url, status)
        if not d.eof:  # cut short: what came decodes, as urllib3 gives it
            break
        data, first = d.unused_data, False
    return bytes(out)


def _gzipped_inside(body: bytes, cap: int, source: str | None, url: str, status: int) -> bytes:
    """A body that is itself gzip — a feed.xml.gz served as is, or gzipped twice by a
    server that compresses what it stored compressed — read once more; else as it is."""
    if body[:2] != b"\x1f\x8b":
        return body
    try:
        return _gunzip(body, cap, source, url, status)
    except zlib.error:  # not gzip after all: the parser says what it is
        return body


def _too_large(cap: int, source: str | None, url: str, status: int) -> FetchError:
    return FetchError(f"too large: body exceeds the {cap}-byte cap", source=source, url=url,
                      status=status)


def _not_coded(coding: str, why: str, source: str | None, url: str, status: int) -> FetchError:
    return FetchError(f"the body is not the {coding} it is labelled: {why}", source=source,
                      url=url, status=status)


def same_site(a: str, b: str) -> bool:
    """Whether a source's own headers may go to b: the same scheme, host and port as its
    URL a, or the https:// upgrade of it (as requests keeps Authorization)."""
    try:
        pa, pb = urlsplit(a), urlsplit(b)
        ports = (pa.port or _DEFAULT_PORTS.get(pa.scheme), pb.port or _DEFAULT_PORTS.get(pb.scheme))
    except ValueError:  # not URLs: nothing is sent
        return False
    if (pa.hostname or "").lower() != (pb.hostname or "").lower():
        return False
    if pa.scheme == pb.scheme:
        return ports[0] == ports[1]
    return (pa.scheme, pb.scheme) == ("http", "https") and ports == (80, 443)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _finish(resp: BaseHTTPResponse) -> None:
    """Give the connection back to its pool. A body left unread would be read as the
    next response on that connection, so such a connection is closed first (the pool
    then dials afresh); one read to its end, or a 304, is kept alive."""
    if resp.length_remaining == 0 and not resp.closed:
        with contextlib.suppress(urllib3.exceptions.HTTPError, OSError):
            resp.read()  # an empty body (a 304's): reading it marks the response complete
    if not resp.closed:
        resp.close()
    resp.release_conn()


def _status_message(resp: BaseHTTPResponse) -> str:
    msg = f"HTTP {resp.status} {resp.reason or ''}".strip()
    if resp.status in (403, 429, 503) and (
            resp.headers.get("cf-mitigated") == "challenge"
            or "captcha" in resp.headers.get("Location", "").lower()):
        msg += " (a bot challenge: the site refuses automated clients)"
    elif resp.status == 407:
        msg += " (the proxy wants credentials: http://user:password@host:port)"
    elif resp.status == 401:  # a feed behind a login: the fix is in the source's table
        msg += (" (the site wants credentials: a source sends them with `headers = { "
                'Authorization = "Bearer ${TOKEN}" }`, probe and add with -H)')
    elif resp.status == 410:
        msg += " (the site says it is gone for good: remove the source, or point it elsewhere)"
    return msg


def redacted(text: str, template: str) -> str:
    """`text` with the values of the variables `template` names (`${NAME}`, a token in a
    configured URL) put back as ${NAME}: a redirect, an error or a server's answer may
    quote the URL that holds them."""
    for name in env_refs(template):
        value = os.environ.get(name, "")
        if len(value) >= 4:  # a value that short is no secret, and would mangle the text
            text = text.replace(value, f"${{{name}}}")
    return text


def _unsaid(e: FetchError, template: str) -> FetchError:
    """`e`, saying ${NAME} where it would have said a value from the environment."""
    return type(e)(redacted(e.message, template), source=e.source,
                   url=e.url and redacted(e.url, template), status=e.status,
                   retry_after=e.retry_after)


_COOKIES_MAX, _COOKIE_BYTES = 50, 4096


class _Cookies:
    """The cookies a fetch's redirects set, sent with its later hops by the rules a
    browser follows (host, domain, path, secure): a gate that sets a cookie and redirects
    back to the same page (a CMS's session check, a firewall's cookie test) lets the
    request through. They last one fetch: nothing is kept between polls."""

    def __init__(self) -> None:
        from http.cookiejar import CookieJar

        self.jar = CookieJar()

    def take(self, url: str, set_cookies: list[str]) -> None:
        from urllib.request import Request

        # a browser's limits: a site cannot make every later hop carry megabytes
        room = _COOKIES_MAX - len(self.jar)
        set_cookies = [c for c in set_cookies if len(c) <= _COOKIE_BYTES][:max(room, 0)]

        class Answer:  # what CookieJar reads of a response
            def info(self) -> Answer:
                return self

            def get_all(self, name: str, default: Any = None) -> Any:
                return set_cookies if name.lower() == "set-cookie" else default

        self.jar.extract_cookies(Answer(), Request(url))  # type: ignore[arg-type]

    def header_for(self, url: str) -> str | None:
        from urllib.request import Request

        req = Request(url)
        self.jar.add_cookie_header(req)
        return req.get_header("Cookie")


def _with_cookie(headers: dict[str, str], cookie: str) -> dict[str, str]:
    """`headers` with `cookie` added to a Cookie header the source configured, if any."""
    own = next((k for k in headers if k.lower() == "cookie"), None)
    if own is None:
        return {**headers, "Cookie": cookie}
    return {**headers, own: f"{headers[own]}; {cookie}"}


def _chain(e: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    inner: BaseException | None = e
    while inner is not None and inner not in out:
        out.append(inner)
        reason = getattr(inner, "reason", None)
        args = getattr(inner, "args", ())
        # urllib3's ProtocolError carries what broke second: ("Connection aborted.", e)
        held = next((a for a in args if isinstance(a, BaseException)), None)
        if isinstance(reason, BaseException):
            inner = reason
        elif held is not None:
            inner = held
        else:
            inner = inner.__cause__ or inner.__context__
    return out


def is_timeout(e: BaseException) -> bool:
    """Whether a network error (urllib3's or requests', wrapped or not) was a timeout."""
    # urllib3 2 derives NewConnectionError (refused, unreachable, DNS failure) from
    # ConnectTimeoutError for compatibility: it is a failure to connect, not a timeout
    return any(isinstance(x, TimeoutError | urllib3.exceptions.TimeoutError)
               and not isinstance(x, urllib3.exceptions.NewConnectionError) for x in _chain(e))


# OpenSSL's verify codes for a chain that ends at no CA this machine trusts (self-signed,
# an issuer it does not know): the fix is to trust that CA, not to wait
_UNTRUSTED = frozenset({2, 18, 19, 20, 21})


def _verify_error(e: BaseException) -> ssl.SSLCertVerificationError | None:
    return next((x for x in _chain(e) if isinstance(x, ssl.SSLCertVerificationError)), None)


def certificate_problem(e: BaseException, host: str) -> str | None:
    """What is wrong with `host`'s TLS certificate, when that is why `e` happened: in the
    same words for feeds, webhooks and email, with where a private CA goes."""
    x = _verify_error(e)
    if x is None:
        return None
    why = str(x.verify_message or x.reason or x).rstrip(".")
    if x.verify_code in _UNTRUSTED:
        return (f"the TLS certificate of {host} is not signed by a CA this machine trusts "
                f"({why}): a private CA (your organisation's, a TLS-inspecting proxy's) "
                "goes in SSL_CERT_FILE, a PEM file")
    return f"the TLS certificate of {host} is not valid: {why}"


def cannot_connect(e: BaseException, url: str) -> str:
    """Why a request to `url` never got an answer: a name that does not resolve says
    which host (a listing's next page on another site, a typo), not just errno -2."""
    cert = certificate_problem(e, urlsplit(url).hostname or url)
    if cert is not None:
        return cert
    for x in _chain(e):
        if isinstance(x, socket.gaierror):
            return f"cannot resolve {urlsplit(url).hostname}: {x.strerror or x}"
        # connected, and then no answer, or none in HTTP (a port that speaks another
        # protocol): "cannot connect" would send the user to look at the network
        if isinstance(x, http.client.RemoteDisconnected):
            return "no answer: the server closed the connection without one"
        if isinstance(x, http.client.BadStatusLine):
            line = printable(str(x.args[0]) if x.args else "").strip()
            return f"no HTTP answer: it began {line[:60]!r}"
        if isinstance(x, http.client.HTTPException):  # a header line past 64 KB, and kin
            return f"an answer it cannot read: {printable(str(x))[:200]}"
    return f"cannot connect: {error_reason(e)}"


def _broke_off(e: BaseException) -> str:
    """Why a body stopped coming, in bytes where urllib3 says "IncompleteRead(28 bytes
    read, 4972 more expected)": short of the length the server announced, inside a chunk,
    or at a chunk with no length; else as it broke."""
    for x in _chain(e):
        if isinstance(x, urllib3.exceptions.InvalidChunkLength):
            length = printable(bytes(x.length).decode("latin-1")).strip()
            return (f"the answer broke off: a chunk of its body has no length ({length[:20]!r}),"
                    " as chunked encoding needs")
        if isinstance(x, http.client.IncompleteRead) and isinstance(x.expected, int):
            read = x.partial if isinstance(x.partial, int) else len(x.partial)
            if isinstance(x, urllib3.exceptions.IncompleteRead):  # of its Content-Length
                return (f"the answer broke off after {size(read)} of "
                        f"{size(read + x.expected)}: the server closed the connection")
            return (f"the answer broke off inside a chunk, {size(x.expected)} short of it: "
                    "the server closed the connection")
    return f"connection broke while reading: {error_reason(e)}"


def error_reason(e: BaseException) -> str:
    """The innermost useful message of a urllib3 exception chain."""
    msg = str(_chain(e)[-1]) or str(e)
    # urllib3 prefixes "<urllib3.connection.HTTPConnection object at 0x…>: "
    return msg.split(">: ", 1)[-1] if ">: " in msg else msg


__all__ = ["Fetcher", "cannot_connect", "certificate_problem", "decode", "error_reason",
           "is_timeout", "retry_after_seconds", "same_site"]
