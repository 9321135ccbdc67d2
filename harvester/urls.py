"""Canonical URLs: one spelling per article, so identity and cross-source matching work."""

from __future__ import annotations

import re
import string
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from .words import is_count

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
# RFC 3986 6.2.2: one spelling of each character. What may stand in a path or query as
# written stays (quote keeps letters, digits and "-._~" too); anything else, a letter
# outside ASCII above all, is percent-encoded as UTF-8; escapes take upper-case hex,
# and an escaped letter, digit or "-._~" is written plainly
_PATH_SAFE = "/!$&'()*+,;=:@%~"
_QUERY_SAFE = _PATH_SAFE + "?"
_TO_QUOTE = re.compile(r"[^A-Za-z0-9._~!$&'()*+,;=:@%/?-]")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_LDH = re.compile(r"[a-z0-9.-]+")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_DEFAULT_PORT = {"http": 80, "https": 443}


# A link already in canonical form, as feeds nearly always write them: lower-case http(s)
# scheme and host, no port, credentials, query, fragment, space or non-ASCII character,
# escapes only of what stays escaped (a UTF-8 byte, a delimiter), in upper-case hex.
# The run of plain characters is possessive ("++"): a link this declines (a query after a
# long path) would otherwise be re-split every way before it fails, 2^n steps.
_ALREADY = re.compile(r"https?://[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
                      r"(/(?:[A-Za-z0-9._~!$&'()*+,;=:@/-]++"
                      r"|%[89A-F][0-9A-F]|%(?:2[0-9A-CF]|3[A-F]|40|5[B-E]|60|7[B-D]))*)?")


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
    if not host.isascii():  # an internationalised name, as DNS knows it: "xn--bcher-kva"
        host = dns_name(host)
    netloc = host if port in ("", str(_DEFAULT_PORT[scheme])) else f"{host}:{port}"
    path, query = _one_spelling(path, _PATH_SAFE), _one_spelling(query, _QUERY_SAFE)
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


def dns_name(host: str) -> str:
    """An internationalised host name in ASCII, as browsers and requests read it (UTS #46,
    nontransitional: "faß.de" is xn--fa-hia.de, its own domain, where Python's IDNA 2003
    codec says fass.de, another one). A name it refuses (a symbol: "☃.net") is read by
    IDNA 2003, as browsers still take it; one that is no name DNS could hold is kept as
    written, still one spelling of it."""
    import idna  # requests' own dependency, for the names it connects to

    try:
        ascii_host = idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError:
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return host
    return ascii_host if _LDH.fullmatch(ascii_host) else host


def _one_spelling(part: str, safe: str) -> str:
    """`part` of a URL percent-encoded as RFC 3986 normalises it (see _PATH_SAFE)."""
    if _TO_QUOTE.search(part):
        part = quote(part, safe=safe, errors="surrogatepass")
    if "%" not in part:
        return part
    # a "%" that begins no escape is one itself ("100%"), or decoding "%%41" would make one
    return _ESCAPE.sub(_unescaped, _STRAY_PERCENT.sub("%25", part))


def _unescaped(m: re.Match[str]) -> str:
    c = chr(int(m[1], 16))
    return c if c in _UNRESERVED else "%" + m[1].upper()


def _host_port(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):  # IPv6 literal
        host, _, rest = hostport.partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        host += "]"
    else:
        host, _, port = hostport.partition(":")
    if port and not is_count(port):
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


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def control_in(url: str) -> str | None:
    """The first control character in `url` (C0, DEL, C1), else None: no URL holds one,
    and urlsplit and requests would drop or pass on what a config escape wrote."""
    m = _CONTROL.search(url)
    return m[0] if m else None


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


__all__ = ["bad_port", "canonical_url", "control_in", "dns_name", "is_http_url", "join",
           "resolve_link"]
