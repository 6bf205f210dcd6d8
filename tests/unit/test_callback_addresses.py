"""Which addresses a callback may go to when private networks are not allowed."""

from __future__ import annotations

import ipaddress

import pytest

from humantask_notifier.addresses import is_public, parse_ip, why_not_public

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",  # IPv4-mapped public: reaches 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
]

NOT_PUBLIC = {
    "127.0.0.1": "loopback",
    "127.1.2.3": "loopback",
    "::1": "loopback",
    "10.0.0.1": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "fd00::1": "private",
    "fc00::1": "private",
    "169.254.169.254": "link-local",
    "fe80::1": "link-local",
    "fe80::1%1": "link-local",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "ff02::1": "multicast",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "100.64.0.1": "a non-public address",  # shared address space (carrier-grade NAT)
    "192.0.2.1": "private",
    "198.51.100.1": "private",  # documentation
    "::ffff:127.0.0.1": "embeds a loopback IPv4 address",
    "::ffff:10.0.0.1": "embeds a private IPv4 address",
    "::ffff:169.254.169.254": "embeds a link-local IPv4 address",
    "2002:7f00:1::": "embeds a loopback IPv4 address",  # 6to4
    "2002:a9fe:a9fe::": "embeds a link-local IPv4 address",
    "64:ff9b::7f00:1": "embeds a loopback IPv4 address",  # NAT64
    "64:ff9b::a00:1": "embeds a private IPv4 address",
    # Teredo, client 192.0.2.45
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "embeds a private IPv4 address",
    "2001:4860:4860::8888%eth0": "an IPv6 address with a zone",
    "fec0::1": "a site-local address",  # deprecated (RFC 3879), yet routed inside some sites
    "feff:ffff::1": "a site-local address",
    "192.0.0.100": "a non-public address",  # IETF protocol assignments
    "192.88.99.1": "a non-public address",  # the deprecated 6to4 relay anycast
    "3fff::1": "a non-public address",  # documentation (RFC 9637)
}

# The IANA IPv4 and IPv6 Special-Purpose Address Registries: each block whose
# "Globally Reachable" is False (or that is deprecated or reserved). A callback never
# goes to any of them. (Blocks that embed an IPv4 address, IPv4-mapped, 6to4, Teredo and
# NAT64, follow the address they embed: see NOT_PUBLIC.)
NOT_GLOBALLY_REACHABLE = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "64:ff9b:1::/48",
    "100::/64",
    "100:0:0:1::/64",
    "2001:2::/48",
    "2001:10::/28",
    "2001:db8::/32",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
]


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_are_allowed(text: str) -> None:
    address = parse_ip(text)
    assert address is not None
    assert is_public(address)


@pytest.mark.parametrize(("text", "reason"), sorted(NOT_PUBLIC.items()))
def test_non_public_addresses_are_refused_with_a_reason(text: str, reason: str) -> None:
    address = parse_ip(text)
    assert address is not None
    assert not is_public(address)
    assert reason in why_not_public(address)
    # The reason names the kind of address, never the address (nor what it embeds).
    assert text.split("%")[0] not in why_not_public(address)
    assert str(address) not in why_not_public(address)


@pytest.mark.parametrize("block", NOT_GLOBALLY_REACHABLE)
def test_no_address_of_a_special_purpose_block_is_public(block: str) -> None:
    network = ipaddress.ip_network(block)
    for address in (network[0], network[network.num_addresses // 2], network[-1]):
        assert not is_public(address), address


@pytest.mark.parametrize("text", ["[::1]", "[2001:4860:4860::8888]"])
def test_bracketed_ipv6_literals_parse(text: str) -> None:
    assert parse_ip(text) is not None


@pytest.mark.parametrize(
    ("text", "address"),
    [
        # What inet_aton (and so getaddrinfo) reads as 127.0.0.1: one rule for all of them.
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7F.0.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f.0x0.0x0.0x1", "127.0.0.1"),
        ("1.2.3", "1.2.0.3"),
        ("0", "0.0.0.0"),
        ("169.16689662", "169.254.169.254"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("::ffff:7f00:1", "::ffff:7f00:1"),
        ("[fe80::1%25eth0]", "fe80::1%eth0"),
        ("fe80::1%25eth0", "fe80::1%eth0"),
        ("fe80::1%1", "fe80::1%1"),
    ],
)
def test_ip_literals_in_every_spelling_parse(text: str, address: str) -> None:
    parsed = parse_ip(text)
    assert parsed is not None and str(parsed) == address


@pytest.mark.parametrize(
    "text",
    [
        "2130706433",
        "0x7f.1",
        "0177.0.0.1",
        "127.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[fe80::1%25eth0]",
        "0",
        "169.16689662",
        "[::ffff:a9fe:a9fe]",
    ],
)
def test_every_spelling_of_a_non_public_address_is_refused(text: str) -> None:
    address = parse_ip(text)
    assert address is not None and not is_public(address)


@pytest.mark.parametrize(
    "text",
    [
        "example.com",
        "localhost",
        "127.0.0.1.nip.io",
        "",
        "127.0.0.1.",
        "1.2.3.4.5",
        "4294967296",
        "0x100.0.0.1",
        "08.0.0.1",
        "256.0.0.1",
        "1.2.65536",
        "0x",
        "1..2",
        "１２７．０．０．１",  # the sender only ever passes hosts after yarl's IDNA mapping
        "[::1",
        "::1]",
        "fe80::1%",
    ],
)
def test_host_names_are_not_literals(text: str) -> None:
    assert parse_ip(text) is None
