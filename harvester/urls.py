"""Canonical URLs: one spelling per article, so identity and cross-source matching work."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit, urlunsplit

# Query parameters that only track the click or carry a visitor's session, never select
# the page: a session id is new on every poll of a site that writes it into its links
_CLICKS = ("fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "_hsenc", "_hsmi")
# (not "sid" nor "sessionid": a conference site's ?sessionid=42 may be the page's own)
_SESSIONS = ("phpsessid", "jsessionid", "aspsessionid", "cfid", "cftoken", "oscsid", "zenid")
_TRACKING = re.compile(r"^(utm_[a-z_]+|aspsessionid\w+|" + "|".join(_CLICKS + _SESSIONS) + ")$",
                       re.IGNORECASE)
# (and the marks no text shows, a soft hyphen among them: text.py drops them from words)
_SPACE_CTRL = re.compile(r"[\s\x00-\x20\x7f-\x9f\xad\u200b-\u200f\u2060\ufeff]+")
# a cheap first look: does the query hold any of them at all?
_TRACKING_HINT = re.compile(r"(?:^|&)(?:" + "|".join(_CLICKS + _SESSIONS) + ")", re.IGNORECASE)
# a Java servlet's session id, written into the path: /news/item;jsessionid=1A2B…
_SESSION_PARAM = re.compile(r";jsessionid=[^/;]*", re.IGNORECASE)
_SLASHES = re.compile(r"/{2,}")
_DEFAULT_PORT = {"http": 80, "https": 443}


# A link already in canonical form, as feeds nearly always write them: lower-case http(s)
# scheme and host, no port, credentials, query, fragment, space or non-ASCII character.
_ALREADY = re.compile(r"https?://[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
                      r"(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?")


def canonical_url(href: str | None, base: str | None = None) -> str | None:
    """Resolve `href` against `base` and normalise it; None unless the result is http(s).

    Scheme and host lower-cased, default port and credentials dropped, runs of slashes in
    the path collapsed, dot segments resolved, fragment, tracking parameters and session
    ids dropped. Idempotent.
    """
    if not href:
        return None
    m = _ALREADY.fullmatch(href)
    if m is not None and (m[1] is None or ("//" not in m[1] and "/." not in m[1]
                                           and ";" not in m[1])):
        return href if m[1] else href + "/"  # ~1 µs instead of urlsplit's ~10
    return _canonical(href, base)


def _canonical(href: str, base: str | None) -> str | None:
    # Whitespace and control characters are never part of a real URL; removing them
    # also defeats "java\tscript:" tricks before the scheme check.
    href = _SPACE_CTRL.sub("", href)
    if not href:
        return None
    try:
        if base and not href[:8].lower().startswith(("http://", "https://")):
            href = urljoin(base, href)
        scheme, netloc, path, query, _fragment = urlsplit(href)
    except ValueError:  # a bad IPv6 literal
        return None
    scheme = scheme.lower()
    if scheme not in _DEFAULT_PORT:
        return None
    host, port = _host_port(netloc.rpartition("@")[2].lower())
    if not host:
        return None
    netloc = host if port in ("", str(_DEFAULT_PORT[scheme])) else f"{host}:{port}"
    if ";" in path:  # first: what it leaves may be a run of slashes ("/a/;jsessionid=/")
        path = _SESSION_PARAM.sub("", path)
    if "//" in path:
        path = _SLASHES.sub("/", path)
    if "/." in path:  # "/a/../b/./c" is "/b/c" (RFC 3986 5.2.4), as urljoin resolves it
        path = urlsplit(urljoin("http://h/", path)).path
    if query and ("utm_" in query.lower() or _TRACKING_HINT.search(query)):
        query = "&".join(p for p in query.split("&")
                         if p and not _TRACKING.match(p.split("=", 1)[0]))
    return urlunsplit((scheme, netloc, path or "/", query, ""))


def _host_port(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):  # IPv6 literal
        host, _, rest = hostport.partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        host += "]"
    else:
        host, _, port = hostport.partition(":")
    if port and not port.isdigit():
        return "", ""
    return host.rstrip("."), port.lstrip("0") or ("0" if port else "")


def resolve_link(href: str, base: str) -> str | None:
    """A link inside content made absolute, cheaply (no canonicalisation: it is shown,
    not compared); None unless it ends up http(s)."""
    href = _SPACE_CTRL.sub("", href)
    if href.startswith(("https://", "http://")):
        return href
    if href.startswith("//"):
        return base.split(":", 1)[0] + ":" + href
    if href.startswith("/"):
        scheme, _, rest = base.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}{href}"
    if href[:1].isalnum() and ":" not in href.split("/", 1)[0] and "./" not in href:
        # a plain relative path ("fileadmin/pic.jpg"): next to the base document
        directory = base.split("?", 1)[0].split("#", 1)[0]
        return directory[: directory.rfind("/") + 1] + href
    joined = join(base, href)
    return joined if joined and joined.startswith(("https://", "http://")) else None


def is_http_url(url: str) -> bool:
    """An http(s) URL with a host (and a port, if it names one, from 1 to 65535): what a
    source, a webhook or `probe` may be given."""
    try:
        parts = urlsplit(url)
        return (parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
                and not bad_port(url))
    except ValueError:  # an unclosed or non-IP [bracketed] host
        return False


def bad_port(url: str) -> bool:
    """Whether `url` names a port no connection can go to (0, past 65535, not a number)."""
    try:
        return urlsplit(url).port == 0
    except ValueError as e:
        return "Port" in str(e)


def join(base: str, href: str) -> str | None:
    """urljoin, for hrefs a server wrote: None where the result is no URL at all (a
    bracketed host that is not an IP address makes urljoin raise)."""
    try:
        return urljoin(base, href)
    except ValueError:
        return None


__all__ = ["bad_port", "canonical_url", "is_http_url", "join", "resolve_link"]
