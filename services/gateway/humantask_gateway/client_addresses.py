"""Who the client is, for the budgets kept per client address. No I/O.

Behind a reverse proxy (a TLS terminator, a load balancer) every request comes from the
proxy's address, and the client's is in a header the proxy adds: `X-Forwarded-For`
(the usual one) or `Forwarded` (RFC 7239), which one is `TRUSTED_PROXY_HEADER`. A client
can send either header itself, so it is believed only when the peer is a proxy the
operator trusts (`TRUSTED_PROXIES`, CIDRs, none by default), and then only as far as
the trusted proxies go: reading from the right, each hop that is a trusted proxy
passes the word on, and the first address that is not one is the client. Whatever the
client wrote further left is never read. A hop that is not an address (`unknown`, an
obfuscated `_name`) ends the walk: the client is the proxy that reported it.

Budgets are kept per `budget_key`: an IPv4 address, or an IPv6 address's /64 (one
host usually holds a whole /64, so counting per /128 would give it 2^64 budgets).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Literal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ForwardedHeader = Literal["x-forwarded-for", "forwarded"]

IPV6_BUDGET_PREFIX = 64


def parse_address(text: str) -> IPAddress | None:
    """An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
    `[2001:db8::1]:4711` (quoted or not); None for anything else."""
    text = text.strip().strip('"').strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _hops(header_values: Iterable[str], header: ForwardedHeader) -> list[str]:
    """The addresses the proxies reported, left (farthest) to right (nearest)."""
    hops: list[str] = []
    for value in header_values:
        for element in value.split(","):
            if header == "x-forwarded-for":
                hops.append(element)
                continue
            for pair in element.split(";"):  # Forwarded: for=...;proto=...;by=...
                name, _, node = pair.strip().partition("=")
                if name.strip().lower() == "for":
                    hops.append(node)
    return hops


def client_address(
    peer: str | None,
    header_values: Sequence[str],
    trusted: Sequence[IPNetwork],
    header: ForwardedHeader,
) -> IPAddress | None:
    """The client of a request from `peer` that carried `header_values` of `header`."""
    nearest = parse_address(peer) if peer else None
    if nearest is None or not trusted:
        return nearest
    for hop in reversed(_hops(header_values, header)):
        if not any(nearest in network for network in trusted):
            return nearest  # the right-most untrusted address
        address = parse_address(hop)
        if address is None:
            return nearest  # the trusted proxy could not say who sent it
        nearest = address
    return nearest


def budget_key(address: IPAddress | None) -> str:
    """What a per-address budget is counted by: the IPv4 address, or the IPv6 /64."""
    if address is None:
        return ""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_BUDGET_PREFIX), strict=False))
    return str(address)


def parse_networks(value: object) -> list[IPNetwork]:
    """`TRUSTED_PROXIES`: CIDRs (or single addresses) separated by commas or spaces."""
    if isinstance(value, str):
        items: Iterable[object] = value.replace(",", " ").split()
    elif isinstance(value, Iterable):
        items = value
    else:
        raise ValueError("must be a list of CIDRs, e.g. 10.0.0.0/8,fd00::/8")
    networks: list[IPNetwork] = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(str(item).strip()))
        except ValueError as exc:
            raise ValueError(f"{item!s:.64} is not a CIDR ({exc})") from exc
    return networks
