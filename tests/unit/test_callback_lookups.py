"""Name look-ups of callback hosts are bounded in time and in number (`BoundedLookup`,
CALLBACK_DNS_TIMEOUT_SECONDS and CALLBACK_DNS_MAX_CONCURRENT): a customer whose name
servers never answer costs each of its look-ups the timeout, and never makes another
customer's look-up wait. No network: a fake resolver that answers some names at once
and never answers others."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from humantask_notifier.sender import BoundedLookup, CallbackSender, create_session
from humantask_notifier.settings import NotifierSettings


class TarpitDns(AbstractResolver):
    """Answers `*.good.example` at once (with 127.0.0.1),
    and never answers anything else; counts the look-ups in progress."""

    def __init__(self) -> None:
        self.in_progress = 0
        self.most = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.in_progress += 1
        self.most = max(self.most, self.in_progress)
        try:
            if not host.endswith("good.example"):
                await asyncio.Event().wait()  # a name server that never answers
            return [
                ResolveResult(
                    hostname=host,
                    host="127.0.0.1",
                    port=port,
                    family=socket.AF_INET,
                    proto=0,
                    flags=0,
                )
            ]
        finally:
            self.in_progress -= 1

    async def close(self) -> None:
        pass


async def test_a_look_up_that_never_answers_is_abandoned_at_the_timeout() -> None:
    lookup = BoundedLookup(TarpitDns(), timeout_seconds=0.2, max_concurrent=4)
    started = time.monotonic()
    with pytest.raises(socket.gaierror, match=r"name look-up timed out after 0\.2 s"):
        await lookup.resolve("slow.tarpit.example", 80)
    assert time.monotonic() - started < 2


async def test_slow_names_never_hold_up_another_customers_look_up() -> None:
    dns = TarpitDns()
    lookup = BoundedLookup(dns, timeout_seconds=5, max_concurrent=8)
    hung = [asyncio.ensure_future(lookup.resolve(f"n{n}.tarpit.example", 80)) for n in range(6)]
    await asyncio.sleep(0)
    started = time.monotonic()
    (answer,) = await lookup.resolve("api.good.example", 80)
    assert answer["host"] == "127.0.0.1" and time.monotonic() - started < 1
    for task in hung:
        task.cancel()
    await asyncio.gather(*hung, return_exceptions=True)


async def test_no_more_look_ups_than_the_bound_run_at_once() -> None:
    dns = TarpitDns()
    lookup = BoundedLookup(dns, timeout_seconds=0.3, max_concurrent=3)
    results = await asyncio.gather(
        *(lookup.resolve(f"n{n}.tarpit.example", 80) for n in range(10)),
        return_exceptions=True,
    )
    assert dns.most == 3
    assert all(isinstance(result, socket.gaierror) for result in results)


async def test_the_callback_log_says_the_look_up_timed_out() -> None:
    session = create_session(
        timeout_seconds=5,
        allow_private_networks=True,
        dns_timeout_seconds=0.2,
        dns_max_concurrent=4,
        lookup=TarpitDns(),
    )
    async with session:
        sender = CallbackSender(session, 5, True)
        result = await sender.post("http://hook.tarpit.example/cb", b"{}", {})
    assert result.status_code is None and result.reason == "dns"
    assert result.error == (
        "could not resolve hook.tarpit.example: name look-up timed out after 0.2 s"
    )


def test_the_bounds_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = NotifierSettings()
    assert settings.callback_dns_timeout_seconds == 5
    assert settings.callback_dns_max_concurrent == 64
    assert settings.callback_max_per_host == 8
    assert settings.callback_host_busy_delay_seconds == 5
    monkeypatch.setenv("CALLBACK_DNS_TIMEOUT_SECONDS", "1.5")
    monkeypatch.setenv("CALLBACK_DNS_MAX_CONCURRENT", "16")
    monkeypatch.setenv("CALLBACK_MAX_PER_HOST", "2")
    monkeypatch.setenv("CALLBACK_HOST_BUSY_DELAY_SECONDS", "1")
    settings = NotifierSettings()
    assert settings.callback_dns_timeout_seconds == 1.5
    assert settings.callback_dns_max_concurrent == 16
    assert settings.callback_max_per_host == 2
    assert settings.callback_host_busy_delay_seconds == 1
