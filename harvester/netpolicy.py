"""Which addresses a source may connect to: the SSRF policy, pure and table-tested.

A feed is written by someone else, and so are its redirects, its pagination links
and its article links. None of them may steer the harvester into the operator's
own network: loopback, the private ranges, carrier-grade NAT, link-local (with the
cloud metadata address), "this network", multicast and reserved space are refused,
whatever spelling the URL used (decimal, hex, octal, IPv4-mapped IPv6), because
the check is made on the address the name resolved to, at connect time.

Two things widen it, both from trusted config: a source may reach the range its
own configured URL is on (a feed on the intranet may redirect within the
intranet), and `[http] allow_networks` lists ranges the operator opens on purpose.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# (range, why) — the why is what the refusal says, so an operator knows what was hit
BLOCKED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(n), why) for n, why in (
        ("0.0.0.0/8", "'this network'"),
        ("10.0.0.0/8", "a private range"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata)"),
        ("172.16.0.0/12", "a private range"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.168.0.0/16", "a private range"),
        ("198.18.0.0/15", "benchmarking"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "the unspecified address"),
        ("::1/128", "loopback"),
        ("fc00::/7", "a private (unique local) range"),
        ("fe80::/10", "link-local"),
        ("ff00::/8", "multicast"),
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address hiding in an IPv4-mapped, 6to4 or NAT64 IPv6 address, else ip."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def blocked_range(ip: IPAddress) -> tuple[IPNetwork, str] | None:
    """The blocked range ip falls in, with its name; None for a public address."""
    ip = unwrap(ip)
    for net, why in BLOCKED:
        if ip.version == net.version and ip in net:
            return net, why
    return None


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """Blocked ranges minus `allow`. Hashable: the fetcher keeps one session per policy."""

    allow: tuple[IPNetwork, ...] = ()

    def permits(self, ip: IPAddress | str) -> bool:
        if isinstance(ip, str):
            ip = ipaddress.ip_address(ip.split("%", 1)[0])
        inner = unwrap(ip)
        if any(inner.version == n.version and inner in n for n in self.allow):
            return True
        return blocked_range(inner) is None

    def refusal(self, host: str, addresses: list[str]) -> str:
        """The policy error's message: the host as given, what it resolved to, and why."""
        shown = []
        for a in addresses:
            hit = blocked_range(ipaddress.ip_address(a.split("%", 1)[0]))
            shown.append(f"{a} ({hit[1]})" if hit else a)
        return (f"refused by the network policy: {host} resolves to {', '.join(shown)}; "
                "a source may only reach public addresses and its own URL's network "
                "(widen with [http] allow_networks)")

    def widened(self, addresses: list[str]) -> NetworkPolicy:
        """This policy plus the blocked ranges the given addresses (a source's own URL's)
        are in. An address `allow` already covers widens nothing: the operator has said
        how much of that network sources may reach."""
        extra = []
        for a in addresses:
            ip = ipaddress.ip_address(a.split("%", 1)[0])
            inner = unwrap(ip)
            if any(inner.version == n.version and inner in n for n in self.allow):
                continue
            hit = blocked_range(ip)
            if hit and hit[0] not in extra:
                extra.append(hit[0])
        return NetworkPolicy(self.allow + tuple(extra)) if extra else self


def parse_networks(values: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """CIDR strings → networks; ValueError names the bad one."""
    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(v.strip(), strict=False))
        except ValueError as e:
            raise ValueError(f"{v!r} is not an IP network ({e})") from None
    return tuple(out)


__all__ = ["BLOCKED", "NetworkPolicy", "blocked_range", "parse_networks", "unwrap"]
