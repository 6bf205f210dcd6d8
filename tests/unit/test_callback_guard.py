"""The one check every callback address passes (docs/reference/contract.md §7): `GuardedResolver`
for IP literals and names alike, and `GuardedConnector`, which sends IP literals through it
(aiohttp alone connects to a literal without asking any resolver). No network: names
are answered by a fake lookup."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from humantask_notifier.sender import (
    ForbiddenAddress,
    GuardedConnector,
    GuardedResolver,
    callback_url,
)


class FakeLookup(AbstractResolver):
    """DNS from a table; remembers what it was asked."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in self.table[host]
        ]

    async def close(self) -> None:
        pass


DNS = {
    "public.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "internal.example": ["10.1.2.3"],
    "mixed.example": ["93.184.215.14", "169.254.169.254"],
    "mapped.example": ["::ffff:127.0.0.1"],
}


@pytest.fixture
def lookup() -> FakeLookup:
    return FakeLookup(DNS)


# The host as yarl/aiohttp will connect to it: Unicode digits and full stops come out as
# ASCII, so the check sees what the connection uses.
@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://１２７．０．０．１:9/x", "127.0.0.1"),  # fullwidth digits and full stops
        ("http://127。0。0。1/", "127.0.0.1"),  # ideographic full stops
        ("http://127．0．0．1/", "127.0.0.1"),  # fullwidth full stops
        ("http://127｡0｡0｡1/", "127.0.0.1"),  # halfwidth ideographic full stops
        ("http://ｌｏｃａｌｈｏｓｔ/", "localhost"),
        ("http://LOCALHOST/", "localhost"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1"),
        ("http://[fe80::1%25eth0]/", "fe80::1%25eth0"),
        ("http://bücher.example/", "xn--bcher-kva.example"),
    ],
)
def test_the_host_checked_is_the_host_aiohttp_connects_to(url: str, host: str) -> None:
    parsed = callback_url(url)
    assert parsed is not None and parsed.raw_host == host


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "http:///nohost",
        "not a url",
        "http://exa\u200bmple.com/",
        "http://example.com:99999/",
        "javascript:alert(1)",
    ],
)
def test_what_is_not_an_http_url_is_not_sent(url: str) -> None:
    assert callback_url(url) is None


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "0x7f.1",
        "0177.0.0.1",
        "127.1",
        "0",
        "::1",
        "::ffff:7f00:1",
        "::ffff:127.0.0.1",
        "fe80::1%25eth0",
        "[::1]",
        "169.254.169.254",
        "169.16689662",
        "10.0.0.1",
        "100.64.0.1",
        "64:ff9b::a00:1",
    ],
)
async def test_non_public_literals_are_refused_without_any_lookup(
    lookup: FakeLookup, host: str
) -> None:
    guard = GuardedResolver(allow_private=False, lookup=lookup)
    with pytest.raises(ForbiddenAddress) as refused:
        await guard.resolve(host, 80)
    assert lookup.asked == []
    assert " is a" in str(refused.value)


async def test_public_literals_are_connected_to_as_they_are(lookup: FakeLookup) -> None:
    guard = GuardedResolver(allow_private=False, lookup=lookup)
    (v4,) = await guard.resolve("93.184.215.14", 443)
    assert (v4["host"], v4["port"], v4["family"]) == ("93.184.215.14", 443, socket.AF_INET)
    (v6,) = await guard.resolve("2606:4700:4700::1111", 80)
    assert (v6["host"], v6["family"]) == ("2606:4700:4700::1111", socket.AF_INET6)
    assert lookup.asked == []


async def test_names_are_resolved_and_every_answer_checked(lookup: FakeLookup) -> None:
    guard = GuardedResolver(allow_private=False, lookup=lookup)
    results = await guard.resolve("public.example", 80)
    assert [result["host"] for result in results] == DNS["public.example"]
    for name in ("internal.example", "mixed.example", "mapped.example", "nxdomain.example"):
        with pytest.raises(ForbiddenAddress) as refused:
            await guard.resolve(name, 80)
        # One message whether the name resolves to an inside address or not at all: the
        # callback log says nothing about the notifier's network.
        assert str(refused.value) == f"{name} does not resolve to a public address"


async def test_with_private_networks_allowed_everything_resolves(lookup: FakeLookup) -> None:
    guard = GuardedResolver(allow_private=True, lookup=lookup)
    assert [r["host"] for r in await guard.resolve("internal.example", 80)] == ["10.1.2.3"]
    assert [r["host"] for r in await guard.resolve("2130706433", 80)] == ["127.0.0.1"]
    with pytest.raises(OSError):
        await guard.resolve("nxdomain.example", 80)


async def test_aiohttp_alone_would_not_ask_its_resolver_about_literals(lookup: FakeLookup) -> None:
    """Why GuardedConnector exists: the plain connector skips the resolver for literals."""
    connector = aiohttp.TCPConnector(resolver=lookup, use_dns_cache=False)
    try:
        await connector._resolve_host("127.0.0.1", 80)
    finally:
        await connector.close()
    assert lookup.asked == []


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "::ffff:7f00:1", "localhost.example"])
async def test_the_guarded_connector_sends_literals_and_names_through_the_guard(host: str) -> None:
    lookup = FakeLookup({"localhost.example": ["127.0.0.1"]})
    connector = GuardedConnector(
        GuardedResolver(allow_private=False, lookup=lookup), use_dns_cache=False, force_close=True
    )
    try:
        with pytest.raises(ForbiddenAddress):
            await connector._resolve_host(host, 80)
    finally:
        await connector.close()
