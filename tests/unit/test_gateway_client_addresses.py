"""Who the client is, for the per-address budgets, and what the failed-authentication
budget may and may not do (docs/operations/hardening.md).

- `Forwarded` / `X-Forwarded-For` count only when the peer is a trusted proxy
  (`TRUSTED_PROXIES`), and then the client is the right-most address that is not one;
- IPv6 clients share one budget per /64;
- an address over its failed-authentication budget never locks out a credential that
  exists: its failed look-ups are `429`, a valid credential is still served.
"""

from __future__ import annotations

import ipaddress

import pytest

from humantask_gateway.client_addresses import budget_key, client_address
from humantask_gateway.settings import GatewaySettings
from humantask_shared.core.messages.commands import Authenticate
from tests.support.fake_boundary import CUSTOMER_KEY, OTHER_CUSTOMER_KEY, WORKER_TOKEN
from tests.support.gateway import Gateway

from .conftest import GatewayFactory

LOCAL = [ipaddress.ip_network("127.0.0.0/8")]
PROXIES = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.0.0.0/8")]


def xff(*values: str) -> dict[str, str]:
    return {"X-Forwarded-For": ", ".join(values)}


# -- the client address -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "header", "trusted", "client"),
    [
        # No trusted proxies (the default): headers are the client's words, ignored.
        ("203.0.113.7", ["198.51.100.1"], [], "203.0.113.7"),
        # A peer that is not a trusted proxy cannot speak for anybody else.
        ("203.0.113.7", ["198.51.100.1"], LOCAL, "203.0.113.7"),
        # From a trusted proxy: the address it saw.
        ("127.0.0.1", ["198.51.100.1"], LOCAL, "198.51.100.1"),
        # Whatever the client put in front is ignored: the right-most untrusted address.
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1"], LOCAL, "198.51.100.1"),
        ("127.0.0.1", ["6.6.6.6", "198.51.100.1"], LOCAL, "198.51.100.1"),  # two field lines
        # A chain of trusted proxies is walked through.
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1, 10.1.2.3"], PROXIES, "198.51.100.1"),
        # Every hop trusted: the left-most one.
        ("127.0.0.1", ["10.1.2.3, 10.4.5.6"], PROXIES, "10.1.2.3"),
        # Something that is not an address where the client should be: the last proxy.
        ("127.0.0.1", ["198.51.100.1, unknown"], LOCAL, "127.0.0.1"),
        ("127.0.0.1", ["junk"], LOCAL, "127.0.0.1"),
        # No header at all: the peer.
        ("127.0.0.1", [], LOCAL, "127.0.0.1"),
        # IPv6, with or without brackets and ports.
        ("127.0.0.1", ["2001:db8::1"], LOCAL, "2001:db8::1"),
        ("127.0.0.1", ["[2001:db8::1]:4711"], LOCAL, "2001:db8::1"),
        ("127.0.0.1", ["198.51.100.1:4711"], LOCAL, "198.51.100.1"),
    ],
)
def test_the_client_is_the_right_most_address_no_trusted_proxy_added(
    peer: str, header: list[str], trusted: list[ipaddress.IPv4Network], client: str
) -> None:
    found = client_address(peer, header, trusted, "x-forwarded-for")
    assert found == ipaddress.ip_address(client)


@pytest.mark.parametrize(
    ("header", "client"),
    [
        (["for=198.51.100.1;proto=https;by=127.0.0.1"], "198.51.100.1"),
        (["for=6.6.6.6, for=198.51.100.1"], "198.51.100.1"),
        (['for="[2001:db8::7]:4711"'], "2001:db8::7"),
        (['for="_hidden"'], "127.0.0.1"),  # an obfuscated identifier: the proxy's address
        (["for=unknown"], "127.0.0.1"),
    ],
)
def test_the_forwarded_header_is_read_the_same_way(header: list[str], client: str) -> None:
    found = client_address("127.0.0.1", header, LOCAL, "forwarded")
    assert found == ipaddress.ip_address(client)


@pytest.mark.parametrize(
    ("one", "other", "shared"),
    [
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2:bbbb:cccc:dddd:eeee", True),
        ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
        ("198.51.100.1", "198.51.100.2", False),
        ("::ffff:198.51.100.1", "198.51.100.1", True),  # the same IPv4 client
    ],
)
def test_ipv6_clients_share_a_budget_per_64(one: str, other: str, shared: bool) -> None:
    same = budget_key(ipaddress.ip_address(one)) == budget_key(ipaddress.ip_address(other))
    assert same is shared


def test_trusted_proxies_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GatewaySettings().trusted_proxies == []
    assert GatewaySettings().trusted_proxy_header == "x-forwarded-for"
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7,fd00::/8")
    monkeypatch.setenv("TRUSTED_PROXY_HEADER", "Forwarded")
    settings = GatewaySettings()
    assert [str(network) for network in settings.trusted_proxies] == [
        "10.0.0.0/8",
        "192.168.1.7/32",
        "fd00::/8",
    ]
    assert settings.trusted_proxy_header == "forwarded"


@pytest.mark.parametrize("value", ["10.0.0.0/33", "example.com", "10.0.0.1/8"])
def test_a_bad_trusted_proxy_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", value)
    with pytest.raises(ValueError, match="trusted_proxies"):
        GatewaySettings()


# -- the budgets, over HTTP ---------------------------------------------------------------


async def spend_budget(gw: Gateway, headers: dict[str, str], count: int) -> list[int]:
    """`count` failed look-ups, each with a key of its own."""
    statuses = []
    for n in range(count):
        status, _, _ = await gw.call("GET", "/v1/tasks", f"live_guess_{n}", headers=headers)
        statuses.append(status)
    return statuses


async def test_behind_a_trusted_proxy_each_client_has_its_own_budget(
    gateway: GatewayFactory,
) -> None:
    gw = await gateway(
        auth_failures_per_second=1, rate_limit_per_second=0, trusted_proxies="127.0.0.0/8"
    )
    attacker = xff("198.51.100.1")
    statuses = await spend_budget(gw, attacker, 12)
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}
    # Somebody else behind the same proxy still gets ordinary answers.
    assert (await gw.call("GET", "/v1/tasks", "live_guess_other", headers=xff("192.0.2.9")))[
        0
    ] == 401
    # Spoofing a left-hand address does not buy the attacker a fresh budget.
    spoofed = xff("192.0.2.200", "198.51.100.1")
    assert (await gw.call("GET", "/v1/tasks", "live_guess_spoof", headers=spoofed))[0] == 429


async def test_without_trusted_proxies_forwarded_headers_buy_no_fresh_budget(
    gateway: GatewayFactory,
) -> None:
    gw = await gateway(auth_failures_per_second=1, rate_limit_per_second=0)
    for n in range(10):
        await gw.call("GET", "/v1/tasks", f"live_guess_{n}", headers=xff(f"192.0.2.{n}"))
    status, _, _ = await gw.call("GET", "/v1/tasks", "live_guess_x", headers=xff("192.0.2.99"))
    assert status == 429


async def test_ipv6_clients_in_one_64_share_their_budget(gateway: GatewayFactory) -> None:
    gw = await gateway(
        auth_failures_per_second=1, rate_limit_per_second=0, trusted_proxies="127.0.0.1"
    )
    for n in range(10):
        status, _, _ = await gw.call(
            "GET", "/v1/tasks", f"live_guess_{n}", headers=xff(f"2001:db8:1:2::{n + 1:x}")
        )
        assert status == 401
    same_64 = xff("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert (await gw.call("GET", "/v1/tasks", "live_guess_a", headers=same_64))[0] == 429
    next_64 = xff("2001:db8:1:3::1")
    assert (await gw.call("GET", "/v1/tasks", "live_guess_b", headers=next_64))[0] == 401


async def test_failed_look_ups_never_lock_out_a_credential_that_exists(
    gateway: GatewayFactory,
) -> None:
    """Everybody behind one proxy, one of them guessing keys: the others' credentials,
    never seen by this gateway before, are still served."""
    gw = await gateway(auth_failures_per_second=1, rate_limit_per_second=0)
    statuses = [(await gw.call("GET", "/v1/tasks", f"live_guess_{n}"))[0] for n in range(30)]
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}
    status, headers, body = await gw.call("GET", "/v1/tasks", "live_guess_more")
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert body == {
        "status_code": 429,
        "error": "too many failed authentications from this address; try again later",
    }
    # Credentials this gateway has not seen yet, from the same address: served.
    assert (await gw.call("GET", "/v1/tasks", OTHER_CUSTOMER_KEY))[0] == 200
    assert (await gw.call("GET", "/v1/tasks", CUSTOMER_KEY))[0] == 200
    assert (await gw.call("POST", "/v1/work/claim", WORKER_TOKEN))[0] in (200, 204)
    # A key refused once is refused again without a look-up, whatever the budget.
    asked = gw.store.count(Authenticate)
    assert (await gw.call("GET", "/v1/tasks", "live_guess_3"))[0] in (401, 429)
    assert gw.store.count(Authenticate) == asked
