"""Which addresses a callback may go to when private networks are not allowed."""

from __future__ import annotations

import pytest

from humantask_notifier.addresses import is_public, parse_ip, why_not_public

PUBLIC = [
    "8.8.8.8", "1.1.1.1", "93.184.215.14",
    "2001:4860:4860::8888", "2606:4700:4700::1111",
    "::ffff:8.8.8.8",  # IPv4-mapped public: reaches 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
]

NOT_PUBLIC = {
    "127.0.0.1": "loopback", "127.1.2.3": "loopback", "::1": "loopback",
    "10.0.0.1": "private", "172.16.5.4": "private", "192.168.1.1": "private",
    "fd00::1": "private", "fc00::1": "private",
    "169.254.169.254": "link-local", "fe80::1": "link-local", "fe80::1%1": "link-local",
    "224.0.0.1": "multicast", "239.255.255.250": "multicast", "ff02::1": "multicast",
    "0.0.0.0": "unspecified", "::": "unspecified",
    "240.0.0.1": "reserved", "255.255.255.255": "reserved",
    "100.64.0.1": "not a public address",  # shared address space (carrier-grade NAT)
    "192.0.2.1": "private", "198.51.100.1": "private",  # documentation
    "::ffff:127.0.0.1": "127.0.0.1, which is loopback",
    "::ffff:10.0.0.1": "10.0.0.1, which is private",
    "::ffff:169.254.169.254": "169.254.169.254, which is link-local",
    "2002:7f00:1::": "127.0.0.1, which is loopback",  # 6to4
    "2002:a9fe:a9fe::": "169.254.169.254, which is link-local",
    "64:ff9b::7f00:1": "127.0.0.1, which is loopback",  # NAT64
    "64:ff9b::a00:1": "10.0.0.1, which is private",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "192.0.2.45",  # Teredo client
}


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


@pytest.mark.parametrize("text", ["[::1]", "[2001:4860:4860::8888]"])
def test_bracketed_ipv6_literals_parse(text: str) -> None:
    assert parse_ip(text) is not None


@pytest.mark.parametrize("text", ["example.com", "localhost", "127.0.0.1.nip.io", "", "1.2.3"])
def test_host_names_are_not_literals(text: str) -> None:
    assert parse_ip(text) is None
