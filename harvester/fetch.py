"""The only place that talks HTTP to sources.

One `requests` session per worker thread and network policy, with urllib3's Retry
for transient failures (connection errors, 429, 502–504; a short Retry-After waited
out, a long one returned to the scheduler), conditional GET, a streamed size cap
counted on decompressed bytes, redirects followed here (http(s) only, loops and
the hop limit caught, every hop's address checked by the network policy at connect
time, see transport.py) and a whole-request deadline.
"""

from __future__ import annotations

import socket
import threading
import time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from .config import HttpConfig
from .errors import FetchError, PolicyError
from .models import FetchResult
from .netpolicy import NetworkPolicy
from .transport import DeadlinePassed, GuardedAdapter, PolicyRefusal, Watch, arm, disarm

ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
          "application/feed+json;q=0.9, application/xml;q=0.8, text/xml;q=0.8, "
          "text/html;q=0.7, */*;q=0.1")
RETRY_STATUSES = (429, 502, 503, 504)
MAX_RETRY_AFTER_S = 7 * 86400
_CHUNK = 64 * 1024


class _PoliteRetry(Retry):
    """Waits out a short Retry-After in line; a long one ends the request instead, so the
    scheduler honours it and no request reaches the server before the time it asked for.
    A garbage or negative Retry-After is ignored (plain backoff)."""

    def parse_retry_after(self, retry_after: str) -> float:
        return retry_after_seconds(retry_after) or 0.0

    def increment(self, method: str | None = None, url: str | None = None,
                  response: Any = None, error: Exception | None = None, _pool: Any = None,
                  _stacktrace: Any = None) -> _PoliteRetry:
        if response is not None:
            after = retry_after_seconds(response.headers.get("Retry-After"))
            if after is not None and after > self.retry_after_max:
                raise MaxRetryError(_pool, url, ResponseError(f"Retry-After {after:g}s"))
        return super().increment(method, url, response, error, _pool, _stacktrace)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds or an HTTP date, capped at 7 days; None when absent,
    garbage or negative."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    delta = when - (time.time() if now is None else now)
    return min(delta, MAX_RETRY_AFTER_S) if delta >= 0 else None


class Fetcher:
    """Fetches URLs under the [http] settings; safe to call from many threads."""

    def __init__(self, http: HttpConfig, policy: NetworkPolicy | None = None):
        self.http = http
        self.policy = policy or NetworkPolicy(http.allow_networks)
        self._local = threading.local()
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._origins: dict[str, NetworkPolicy] = {}
        self._lock = threading.Lock()

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
        try:
            infos = socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM)
            addresses = [str(ai[4][0]) for ai in infos]
        except (OSError, UnicodeError):
            addresses = []  # unresolvable now: nothing extra allowed, the connect will say why
        policy = self.policy.widened(addresses)
        with self._lock:
            self._origins[host] = policy
        return policy

    def _session(self, policy: NetworkPolicy) -> requests.Session:
        sessions: dict[NetworkPolicy, requests.Session] | None = getattr(
            self._local, "sessions", None)
        if sessions is None:
            sessions = self._local.sessions = {}
        s = sessions.get(policy)
        if s is None:
            s = requests.Session()
            retry = _PoliteRetry(
                total=self.http.retries, connect=self.http.retries, read=self.http.retries,
                status=self.http.retries, redirect=0, backoff_factor=0.3,
                status_forcelist=RETRY_STATUSES, allowed_methods=frozenset({"GET"}),
                respect_retry_after_header=True, raise_on_status=False,
                raise_on_redirect=False,
                retry_after_max=int(min(10.0, self.http.timeout)))
            adapter = GuardedAdapter(policy, max_retries=retry, pool_connections=4,
                                     pool_maxsize=4)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            s.headers.update({"User-Agent": self.http.user_agent, "Accept": ACCEPT,
                              "Accept-Encoding": "gzip, deflate"})
            s.trust_env = False  # no proxies or netrc from the environment behind our back
            sessions[policy] = s
        return s

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
              source: str | None = None, origin: str | None = None) -> FetchResult:
        """GET url under the network policy of the source whose configured URL is
        `origin` (default: url itself), following at most max_redirects redirects."""
        policy = self.policy_for(origin or url)
        watch = arm(self.http.timeout)
        try:
            return self._fetch(url, etag=etag, last_modified=last_modified, source=source,
                               policy=policy, watch=watch)
        finally:
            disarm(watch)

    def _get(self, url: str, headers: dict[str, str], policy: NetworkPolicy, source: str | None,
             watch: Watch) -> requests.Response:
        t = self.http.timeout
        with self._host_slot(url):
            try:
                return self._session(policy).get(url, headers=headers, timeout=(min(t, 10.0), t),
                                                 stream=True, allow_redirects=False)
            except PolicyRefusal as e:
                raise PolicyError(str(e), source=source, url=url) from e
            except DeadlinePassed as e:
                raise FetchError(f"timed out after {t:g}s", source=source, url=url) from e
            except requests.exceptions.Timeout as e:
                raise FetchError(f"timed out after {t:g}s", source=source, url=url) from e
            except requests.exceptions.ConnectionError as e:
                # a read timeout on the last retry arrives wrapped
                if _is_timeout(e) or watch.expired:
                    raise FetchError(f"timed out after {t:g}s", source=source, url=url) from e
                raise FetchError(f"cannot connect: {_reason(e)}", source=source, url=url) from e
            except requests.exceptions.RequestException as e:
                raise FetchError(f"request failed: {_reason(e)}", source=source, url=url) from e

    def _fetch(self, url: str, *, etag: str | None, last_modified: str | None,
               source: str | None, policy: NetworkPolicy, watch: Watch) -> FetchResult:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        start = time.monotonic()
        chain = [url]
        while True:
            resp = self._get(chain[-1], headers, policy, source, watch)
            if not (resp.is_redirect and resp.status_code != 304):
                break
            target = urljoin(chain[-1], resp.headers.get("Location", "").strip())
            resp.close()
            chain.append(self._check_redirect(chain, target, source))
        with resp:
            final = chain[-1]
            if resp.status_code == 304:
                return FetchResult(url=final, status=304, body=b"",
                                   content_type=resp.headers.get("Content-Type"),
                                   etag=resp.headers.get("ETag") or etag,
                                   last_modified=resp.headers.get("Last-Modified") or last_modified,
                                   duration=time.monotonic() - start, not_modified=True)
            if resp.status_code >= 400 or resp.status_code < 200:
                raise FetchError(
                    _status_message(resp), source=source, url=final, status=resp.status_code,
                    retry_after=retry_after_seconds(resp.headers.get("Retry-After")))
            body = self._read_capped(resp, final, source, watch)
            return FetchResult(url=final, status=resp.status_code, body=body,
                               content_type=resp.headers.get("Content-Type"),
                               etag=resp.headers.get("ETag"),
                               last_modified=resp.headers.get("Last-Modified"),
                               duration=time.monotonic() - start)

    def _check_redirect(self, chain: list[str], target: str, source: str | None) -> str:
        """The next hop, if it may be followed: http(s), not seen before, within the limit."""
        scheme = urlsplit(target).scheme.lower()
        if scheme not in ("http", "https"):
            raise PolicyError(f"redirect to a non-http(s) URL refused: {target[:200]}",
                              source=source, url=chain[0])
        if target in chain:
            loop = " → ".join([*chain[chain.index(target):], target])
            raise FetchError(f"redirect loop: {loop[:500]}", source=source, url=chain[0])
        if len(chain) > self.http.max_redirects:
            raise FetchError(f"too many redirects (more than {self.http.max_redirects})",
                             source=source, url=chain[0])
        return target

    def _read_capped(self, resp: requests.Response, url: str, source: str | None,
                     watch: Watch) -> bytes:
        cap = self.http.max_bytes
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise FetchError(f"too large: Content-Length {declared} exceeds the {cap}-byte cap",
                             source=source, url=url, status=resp.status_code)
        chunks, total = [], 0
        try:
            # decode_content: the cap counts decompressed bytes, so a gzip bomb stops at it
            for chunk in resp.raw.stream(_CHUNK, decode_content=True):
                total += len(chunk)
                if total > cap:
                    raise FetchError(f"too large: body exceeds the {cap}-byte cap",
                                     source=source, url=url, status=resp.status_code)
                chunks.append(chunk)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            if watch.expired:
                raise FetchError(f"timed out after {self.http.timeout:g}s reading the body",
                                 source=source, url=url, status=resp.status_code) from e
            raise FetchError(f"connection broke while reading: {_reason(e)}", source=source,
                             url=url, status=resp.status_code) from e
        if watch.expired:  # the reaper's shutdown can look like a clean end of the body
            raise FetchError(f"timed out after {self.http.timeout:g}s reading the body",
                             source=source, url=url, status=resp.status_code)
        return b"".join(chunks)


def _status_message(resp: requests.Response) -> str:
    msg = f"HTTP {resp.status_code} {resp.reason or ''}".strip()
    if resp.status_code in (403, 429, 503) and (
            resp.headers.get("cf-mitigated") == "challenge"
            or "captcha" in resp.headers.get("Location", "").lower()):
        msg += " (a bot challenge: the site refuses automated clients)"
    return msg


def _chain(e: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    inner: BaseException | None = e
    while inner is not None and inner not in out:
        out.append(inner)
        reason = getattr(inner, "reason", None)
        args = getattr(inner, "args", ())
        if isinstance(reason, BaseException):
            inner = reason
        elif args and isinstance(args[0], BaseException):
            inner = args[0]
        else:
            inner = inner.__cause__ or inner.__context__
    return out


def _is_timeout(e: BaseException) -> bool:
    return any(isinstance(x, TimeoutError | urllib3.exceptions.TimeoutError) for x in _chain(e))


def _reason(e: BaseException) -> str:
    """The innermost useful message of a requests/urllib3 exception chain."""
    msg = str(_chain(e)[-1]) or str(e)
    # urllib3 prefixes "<urllib3.connection.HTTPConnection object at 0x…>: "
    return msg.split(">: ", 1)[-1] if ">: " in msg else msg


__all__ = ["Fetcher", "retry_after_seconds"]
