"""The only place that talks HTTP.

One `requests` session per worker thread with urllib3's Retry for transient
failures (connection errors, 429, 502–504, honouring Retry-After within a cap),
conditional GET, a streamed size cap counted on decompressed bytes, a redirect
limit and a whole-request deadline.
"""

from __future__ import annotations

import threading
import time
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .config import HttpConfig
from .errors import FetchError
from .models import FetchResult

ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
          "application/feed+json;q=0.9, application/xml;q=0.8, text/xml;q=0.8, "
          "text/html;q=0.7, */*;q=0.1")
RETRY_STATUSES = (429, 502, 503, 504)
MAX_RETRY_AFTER_S = 7 * 86400
_CHUNK = 64 * 1024


class _CappedRetry(Retry):
    """Retry-After is honoured, but a cron run never sleeps longer than `max_sleep`."""

    max_sleep: float = 10.0

    def get_retry_after(self, response: urllib3.BaseHTTPResponse) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, self.max_sleep)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds or an HTTP date; None when absent, garbage or negative."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    delta = when - (time.time() if now is None else now)
    return min(delta, MAX_RETRY_AFTER_S) if delta >= 0 else None


class Fetcher:
    """Fetches URLs under the [http] settings; safe to call from many threads."""

    def __init__(self, http: HttpConfig):
        self.http = http
        self._local = threading.local()
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._hosts_lock = threading.Lock()

    def _host_slot(self, url: str) -> threading.BoundedSemaphore:
        """The semaphore that keeps at most `per_host` requests in flight to url's host."""
        host = (urlsplit(url).hostname or "").lower()
        with self._hosts_lock:
            slot = self._hosts.get(host)
            if slot is None:
                slot = self._hosts[host] = threading.BoundedSemaphore(self.http.per_host)
            return slot

    def _session(self) -> requests.Session:
        s: requests.Session | None = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            retry = _CappedRetry(
                total=self.http.retries, connect=self.http.retries, read=self.http.retries,
                status=self.http.retries, redirect=None, backoff_factor=0.3,
                status_forcelist=RETRY_STATUSES, allowed_methods=frozenset({"GET"}),
                respect_retry_after_header=True, raise_on_status=False)
            retry.max_sleep = min(10.0, self.http.timeout)
            adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=4)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            s.max_redirects = self.http.max_redirects
            s.headers.update({"User-Agent": self.http.user_agent, "Accept": ACCEPT,
                              "Accept-Encoding": "gzip, deflate"})
            s.trust_env = False  # no proxies or netrc from the environment behind our back
            self._local.session = s
        return s

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
              source: str | None = None) -> FetchResult:
        with self._host_slot(url):
            return self._fetch(url, etag=etag, last_modified=last_modified, source=source)

    def _fetch(self, url: str, *, etag: str | None, last_modified: str | None,
               source: str | None) -> FetchResult:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        t = self.http.timeout
        start = time.monotonic()
        try:
            resp = self._session().get(url, headers=headers, timeout=(min(t, 10.0), t),
                                       stream=True, allow_redirects=True)
        except requests.exceptions.TooManyRedirects as e:
            raise FetchError(f"too many redirects (more than {self.http.max_redirects})",
                             source=source, url=url) from e
        except requests.exceptions.Timeout as e:
            raise FetchError(f"timed out after {t:g}s", source=source, url=url) from e
        except requests.exceptions.ConnectionError as e:
            if _is_timeout(e):  # a read timeout on the last retry arrives wrapped
                raise FetchError(f"timed out after {t:g}s", source=source, url=url) from e
            raise FetchError(f"cannot connect: {_reason(e)}", source=source, url=url) from e
        except requests.exceptions.RequestException as e:
            raise FetchError(f"request failed: {_reason(e)}", source=source, url=url) from e
        with resp:
            if resp.status_code == 304:
                return FetchResult(url=resp.url, status=304, body=b"",
                                   content_type=resp.headers.get("Content-Type"),
                                   etag=resp.headers.get("ETag") or etag,
                                   last_modified=resp.headers.get("Last-Modified") or last_modified,
                                   duration=time.monotonic() - start, not_modified=True)
            if resp.status_code >= 400 or resp.status_code < 200:
                raise FetchError(
                    f"HTTP {resp.status_code} {resp.reason or ''}".strip(), source=source,
                    url=url, status=resp.status_code,
                    retry_after=retry_after_seconds(resp.headers.get("Retry-After")))
            body = self._read_capped(resp, url, source, start)
            return FetchResult(url=resp.url, status=resp.status_code, body=body,
                               content_type=resp.headers.get("Content-Type"),
                               etag=resp.headers.get("ETag"),
                               last_modified=resp.headers.get("Last-Modified"),
                               duration=time.monotonic() - start)

    def _read_capped(self, resp: requests.Response, url: str, source: str | None,
                     start: float) -> bytes:
        cap = self.http.max_bytes
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise FetchError(f"too large: Content-Length {declared} exceeds the {cap}-byte cap",
                             source=source, url=url, status=resp.status_code)
        deadline = start + self.http.timeout
        chunks, total = [], 0
        try:
            # decode_content: the cap counts decompressed bytes, so a gzip bomb stops at it
            for chunk in resp.raw.stream(_CHUNK, decode_content=True):
                total += len(chunk)
                if total > cap:
                    raise FetchError(f"too large: body exceeds the {cap}-byte cap",
                                     source=source, url=url, status=resp.status_code)
                if time.monotonic() > deadline:
                    raise FetchError(f"timed out after {self.http.timeout:g}s reading the body",
                                     source=source, url=url, status=resp.status_code)
                chunks.append(chunk)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise FetchError(f"connection broke while reading: {_reason(e)}", source=source,
                             url=url, status=resp.status_code) from e
        return b"".join(chunks)


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
