"""Which IP addresses a callback may go to (docs/reference/contract.md §7). No I/O.

Unless CALLBACK_ALLOW_PRIVATE_NETWORKS is true, a callback only goes to a public unicast
address: never loopback, private, shared (CGNAT), link-local, site-local, multicast,
reserved, unspecified, benchmarking or documentation ranges, nor to an IPv6 address that
embeds one of those (IPv4-mapped `::ffff:a.b.c.d`, 6to4 `2002::/16`, Teredo
`2001::/32`, NAT64 `64:ff9b::/96`), since those reach the same IPv4 host. Besides the
standard library's tables (which differ between Python versions), every block of the
IANA special-purpose registries that is not globally reachable is refused by name
(`NOT_GLOBALLY_REACHABLE`).

`parse_ip` reads an IP literal in every spelling a resolver would accept: dotted quads,
the legacy IPv4 forms `inet_aton` takes (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`),
bracketed IPv6 with a zone (`[fe80::1%25eth0]`). Unicode spellings (fullwidth digits,
ideographic full stops) never get here as such: the sender hands over the host exactly
as the HTTP client will connect to it, after yarl's IDNA/UTS 46 mapping, which turns
`１２７。０．０．１` into `127.0.0.1`.

The reasons given for a refusal name the kind of address, never the address itself: a
refusal must not tell a customer what the notifier's resolver knows about its network.
"""

from __future__ import annotations

import ipaddress
import re

from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")

# The IANA IPv4 and IPv6 Special-Purpose Address Registries: the blocks whose "Globally
# Reachable" is False, deprecated ones included, less those that embed an IPv4 address
# (IPv4-mapped, 6to4, Teredo, NAT64: `embedded_ipv4` judges them by what they embed).
# 192.0.0.0/24 and 2001::/23 are refused whole: what is globally reachable inside them
# is protocol infrastructure (PCP and TURN anycast, AMT, AS112, ORCHIDv2), never a
# callback's receiver.
NOT_GLOBALLY_REACHABLE: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(block)
    for block in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "240.0.0.0/4",  # reserved
        "255.255.255.255/32",  # limited broadcast
        "::/128",  # unspecified
        "::1/128",  # loopback
        "64:ff9b:1::/48",  # local-use IPv4/IPv6 translation
        "100::/64",  # discard-only
        "100:0:0:1::/64",  # dummy prefix
        "2001::/23",  # IETF protocol assignments (Teredo, inside it, by what it embeds)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing (SRv6) SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed inside some sites)
        "ff00::/8",  # multicast
    )
)

# One part of a legacy IPv4 literal, as inet_aton(3) reads it: 0x-hex, 0-octal, decimal.
_IPV4_PART = re.compile(r"^(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$")


def _legacy_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """`inet_aton`'s IPv4 forms: 1 to 4 parts, the last one filling the remaining bytes."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(
        part.isascii() and _IPV4_PART.match(part) for part in parts
    ):
        return None
    numbers = [
        int(part, 16) if part[:2].lower() == "0x" else int(part, 8 if part[0] == "0" else 10)
        for part in parts
    ]
    *leading, last = numbers
    if any(number > 0xFF for number in leading) or last >= 1 << (8 * (4 - len(leading))):
        return None
    value = last
    for index, number in enumerate(leading):
        value |= number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def parse_ip(text: str) -> IPAddress | None:
    """An IP literal (brackets, a `%zone` or `%25zone`, legacy IPv4 forms allowed), or
    None for a host name."""
    host = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if ":" in host:
        address, sep, zone = host.partition("%")
        if sep and zone.startswith("25") and len(zone) > 2:
            zone = zone[2:]  # RFC 6874 spells the separator %25 inside a URL
        try:
            return ipaddress.IPv6Address(f"{address}%{zone}" if sep else address)
        except ValueError:
            return None
    try:
        return ipaddress.IPv4Address(host)
    except ValueError:
        return _legacy_ipv4(host)


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
    return (
        address.is_global
        and not (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or getattr(address, "is_site_local", False)
            or address.is_multicast
            or address.is_reserved
            or address.is_unspecified
        )
        and not any(address in block for block in NOT_GLOBALLY_REACHABLE)
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


def _label(address: IPAddress) -> str:
    kind = next((kind for kind in _KINDS if getattr(address, f"is_{kind}", False)), None)
    return kind.replace("_", "-") if kind else "non-public"


def _a(label: str) -> str:
    return f"an {label}" if label[0] in "aeiou" else f"a {label}"


def why_not_public(address: IPAddress) -> str:
    """What kind of address it is, without the address itself: `a loopback address`,
    `an IPv6 address that embeds a private IPv4 address`."""
    inner = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else []
    target = next((ip for ip in inner if not _is_public_unicast(ip)), None)
    if target is not None:
        return f"an IPv6 address that embeds {_a(_label(target))} IPv4 address"
    if (
        isinstance(address, ipaddress.IPv6Address)
        and address.scope_id
        and _is_public_unicast(address)
    ):
        return "an IPv6 address with a zone"
    return f"{_a(_label(address))} address"


# Most specific first: 169.254.0.0/16 is private too, but "link-local" says more.
_KINDS = (
    "loopback",
    "unspecified",
    "link_local",
    "site_local",
    "multicast",
    "reserved",
    "private",
)


def callback_url(url: str) -> URL | None:
    """The URL exactly as aiohttp will send to it, or None if it is not an absolute
    http(s) URL with a host (yarl refuses hosts that are not valid IDNA)."""
    try:
        parsed = URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.raw_host:
            return None
        _ = parsed.port  # a malformed port raises here rather than later
    except (ValueError, TypeError, UnicodeError):
        return None
    return parsed
