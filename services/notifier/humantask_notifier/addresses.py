"""Which IP addresses a callback may go to (API.md section 7). No I/O.

Unless CALLBACK_ALLOW_PRIVATE_NETWORKS is true, a callback only goes to a public unicast
address: never loopback, private, shared (CGNAT), link-local, multicast, reserved,
unspecified or documentation ranges, nor to an IPv6 address that embeds one of those
(IPv4-mapped `::ffff:a.b.c.d`, 6to4 `2002::/16`, Teredo `2001::/32`, NAT64
`64:ff9b::/96`), since those reach the same IPv4 host.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


def parse_ip(text: str) -> IPAddress | None:
    """An IP literal (brackets and a `%zone` allowed), or None for a host name."""
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries to: mapped, 6to4, Teredo, NAT64."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)  # (server, client)
    if address in NAT64_PREFIX:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _is_public_unicast(address: IPAddress) -> bool:
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def is_public(address: IPAddress) -> bool:
    """May a callback go to this address when private networks are not allowed?"""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False  # a zone only makes sense for link-local and site addresses
        embedded = embedded_ipv4(address)
        if embedded:
            return all(_is_public_unicast(inner) for inner in embedded)
    return _is_public_unicast(address)


def why_not_public(address: IPAddress) -> str:
    """A short reason for the log: `127.0.0.1 is loopback`, `::ffff:10.0.0.1 embeds ...`."""
    inner = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else []
    target = next((ip for ip in inner if not _is_public_unicast(ip)), address)
    kind = next((kind for kind in _KINDS if getattr(target, f"is_{kind}")), None)
    label = kind.replace("_", "-") if kind else "not a public address"
    if target is address:
        return f"{address} is {label}"
    return f"{address} embeds {target}, which is {label}"


# Most specific first: 169.254.0.0/16 is private too, but "link-local" says more.
_KINDS = ("loopback", "unspecified", "link_local", "multicast", "reserved", "private")
