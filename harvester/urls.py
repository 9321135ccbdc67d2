"""Canonical URLs: one spelling per article, so identity and cross-source matching work."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit, urlunsplit

# Query parameters that only track the click, never select the page.
_TRACKING = re.compile(r"^(utm_[a-z_]+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|_hsenc|_hsmi)$",
                       re.IGNORECASE)
_SPACE_CTRL = re.compile(r"[\x00-\x20\x7f]+")
_SLASHES = re.compile(r"/{2,}")
_DEFAULT_PORT = {"http": 80, "https": 443}


def canonical_url(href: str | None, base: str | None = None) -> str | None:
    """Resolve `href` against `base` and normalise it; None unless the result is http(s).

    Scheme and host lower-cased, default port dropped, runs of slashes in the path
    collapsed, fragment and tracking parameters dropped. Idempotent.
    """
    if not href:
        return None
    # Whitespace and control characters are never part of a real URL; removing them
    # also defeats "java\tscript:" tricks before the scheme check.
    href = _SPACE_CTRL.sub("", href)
    if not href:
        return None
    try:
        absolute = urljoin(base, href) if base else href
        parts = urlsplit(absolute)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORT or not parts.hostname:
            return None
        host = parts.hostname.lower().rstrip(".")
        port = parts.port
    except ValueError:  # bad port, bad IPv6 literal
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORT[scheme]) else f"{host}:{port}"
    path = _SLASHES.sub("/", parts.path) or "/"
    query = "&".join(
        p for p in parts.query.split("&") if p and not _TRACKING.match(p.split("=", 1)[0])
    )
    return urlunsplit((scheme, netloc, path, query, ""))


__all__ = ["canonical_url"]
