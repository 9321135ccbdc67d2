"""Which HTTP proxy a request goes through: `[http] proxy`, else the environment.

The environment is read as curl and requests read it, so a host's existing proxy
settings just work: `http_proxy` for http:// URLs, `https_proxy` for https://,
`all_proxy` for either, each lowercase before uppercase; `no_proxy` lists the hosts
that go direct (a name and its subdomains, an address, a CIDR range, `*` for all,
each optionally with a port). `[http] proxy` wins over the environment, and `""`
turns the environment off. Loopback (localhost, 127/8, ::1) always goes direct, as Go
has it: it is this machine, which a proxy elsewhere cannot reach. Pure: the caller
passes the environment in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from .errors import ConfigError
from .words import is_count

# the variables, in the order they are tried for each URL scheme
ENV_NAMES = {
    "http": ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"),
    "https": ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"),
}
NO_PROXY_NAMES = ("no_proxy", "NO_PROXY")


@dataclass(frozen=True, slots=True)
class Proxy:
    """One proxy: its URL without credentials (safe to log), and those credentials."""

    url: str  # scheme://host:port
    # "user:password", percent-decoded: sent as Proxy-Authorization, never in a repr
    auth: str | None = field(default=None, repr=False)
    origin: str = "[http] proxy"  # where it was set, for messages

    def __str__(self) -> str:
        return self.url

    def url_with_auth(self) -> str:
        """The URL as requests wants it: credentials in the userinfo, re-encoded."""
        if not self.auth:
            return self.url
        user, _, password = self.auth.partition(":")
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"


def redact(value: str) -> str:
    """A proxy URL fit for a message: any password replaced by ***."""
    scheme, sep, rest = value.rpartition("://")
    userinfo, at, hostport = rest.rpartition("@")
    if not at:
        return value
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{hostport}"


def parse_proxy(value: str, origin: str = "[http] proxy") -> Proxy:
    """A proxy URL as users write it ("proxy:3128" means http://); ValueError says why
    it is not one (without its password)."""
    value = value.strip()
    if "://" not in value:
        value = "http://" + value
    try:
        return _parse(value, origin)
    except ValueError as e:
        raise ValueError(str(e).replace(repr(value), repr(redact(value)))) from None


def _parse(value: str, origin: str) -> Proxy:
    try:
        parts = urlsplit(value)
        port = parts.port
        host = parts.hostname
    except ValueError as e:
        raise ValueError(f"not a proxy URL: {value!r} ({e})") from None
    scheme = parts.scheme.lower()
    if scheme.startswith("socks"):
        raise ValueError(f"{scheme} proxies are not supported, only http:// and https:// "
                         f"ones: {value!r}")
    if scheme not in ("http", "https"):
        raise ValueError(f"expected an http:// or https:// proxy URL, got {value!r}")
    if not host:
        raise ValueError(f"no host in the proxy URL {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"a proxy URL is scheme://host:port only, got {value!r}")
    shown_host = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{shown_host}:{port or (443 if scheme == 'https' else 80)}"
    auth = None
    if parts.username is not None:
        auth = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return Proxy(url, auth, origin)


def is_loopback(host: str) -> bool:
    """localhost, a name under .localhost, or a loopback address literal."""
    host = host.lower().strip("[]").rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def bypasses(host: str, port: int | None, no_proxy: Sequence[str]) -> bool:
    """Whether `no_proxy` sends a request to host:port direct."""
    host = host.lower().strip("[]").rstrip(".")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for entry in no_proxy:
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        want_port = None
        if entry.startswith("["):  # [v6] or [v6]:port
            addr, _, rest = entry[1:].partition("]")
            if rest.startswith(":") and is_count(rest[1:]):
                want_port = int(rest[1:])
            elif rest:  # "[::1]:x": no port, and so (as "name:x" is) no host it names
                continue
            entry = addr
        elif entry.count(":") == 1:  # name:port or v4:port (a bare v6 address has more)
            name, _, p = entry.partition(":")
            if is_count(p):
                entry, want_port = name, int(p)
        if want_port is not None and want_port != port:
            continue
        if ip is not None:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.removeprefix("*").lstrip(".").rstrip(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


@dataclass(frozen=True, slots=True)
class ProxyRoutes:
    """The proxy for each URL scheme, and the hosts that go direct."""

    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: tuple[str, ...] = ()

    def for_url(self, url: str) -> Proxy | None:
        """The proxy `url` goes through, or None for a direct connection."""
        if self.http is None and self.https is None:
            return None
        try:
            parts = urlsplit(url)
            host, port = parts.hostname or "", parts.port
        except ValueError:  # not a URL: the fetch refuses it on its own terms
            return None
        proxy = self.https if parts.scheme.lower() == "https" else self.http
        if proxy is None or is_loopback(host) or bypasses(host, port, self.no_proxy):
            return None
        return proxy

    def describe(self) -> str:
        """What `check` says of where requests go."""
        if self.http is None and self.https is None:
            return "none, requests go direct"
        if self.http and self.https and self.http.url == self.https.url:
            origins = dict.fromkeys((self.http.origin, self.https.origin))
            text = f"{self.http} (from {' and '.join(origins)})"
        else:
            text = "; ".join(
                f"{s}:// URLs via {p} (from {p.origin})" if p else f"{s}:// URLs direct"
                for s, p in (("http", self.http), ("https", self.https)))
        if self.no_proxy:
            text += f"; direct for {', '.join(self.no_proxy)}"
        return text


def _split(value: str) -> tuple[str, ...]:
    return tuple(e.strip() for e in value.split(",") if e.strip())


def routes(proxy: str | None, no_proxy: Sequence[str], environ: Mapping[str, str]) -> ProxyRoutes:
    """The routes for `[http] proxy` and `no_proxy` (a config already checked), or, with no
    `proxy` configured, for the environment. ConfigError names a variable that is wrong."""
    if proxy is not None:
        if not proxy.strip():
            return ProxyRoutes()
        p = parse_proxy(proxy)
        return ProxyRoutes(p, p, tuple(no_proxy))
    found: dict[str, Proxy | None] = {}
    for scheme, names in ENV_NAMES.items():
        found[scheme] = None
        for name in names:
            value = environ.get(name, "").strip()
            if value:
                try:
                    found[scheme] = parse_proxy(value, f"environment variable {name}")
                except ValueError as e:
                    raise ConfigError(f"environment variable {name}: {e}") from None
                break
    env_no = next((environ[n] for n in NO_PROXY_NAMES if environ.get(n, "").strip()), "")
    return ProxyRoutes(found["http"], found["https"], (*no_proxy, *_split(env_no)))


__all__ = ["Proxy", "ProxyRoutes", "bypasses", "is_loopback", "parse_proxy", "redact", "routes"]
