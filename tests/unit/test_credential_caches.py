"""The gateway's and the notifier's caches forget a changed credential at once, and
share one look-up among concurrent requests for one key (one `CachedLookup`)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from humantask_gateway.auth import Authenticator
from humantask_notifier.signing_keys import CallbackSecrets
from humantask_shared.core.errors import Unavailable
from humantask_shared.core.messages.commands import CallbackSecret, Principal
from tests.support.fake_boundary import OnlyTaskStore


class FakeTaskStore:
    """Answers every command with `answer`; `gate` holds answers back while set."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def send(self, _command: Any) -> Any:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        return self.answer


def request_with(key: str) -> Any:
    token = base64.b64encode(f"{key}:".encode()).decode()
    return make_mocked_request("GET", "/v1/tasks", headers={"Authorization": f"Basic {token}"})


CUSTOMER = Principal(principal_id="c1", role="customer")


async def test_a_cached_credential_is_forgotten_when_its_principal_changes() -> None:
    taskstore = FakeTaskStore(CUSTOMER)
    auth = Authenticator(OnlyTaskStore(taskstore), cache_seconds=600)  # type: ignore[arg-type]
    for _ in range(3):
        assert await auth.authenticate(request_with("live_a"), "customer") == CUSTOMER
    assert taskstore.calls == 1
    auth.forget("worker", "c1")  # another role: not this one
    await auth.authenticate(request_with("live_a"), "customer")
    assert taskstore.calls == 1
    auth.forget("customer", "c1")
    await auth.authenticate(request_with("live_a"), "customer")
    assert taskstore.calls == 2
    auth.forget_all()
    await auth.authenticate(request_with("live_a"), "customer")
    assert taskstore.calls == 3


async def test_an_answer_in_flight_during_a_change_is_not_cached() -> None:
    taskstore = FakeTaskStore(CUSTOMER)
    taskstore.gate = asyncio.Event()
    auth = Authenticator(OnlyTaskStore(taskstore), cache_seconds=600)  # type: ignore[arg-type]
    pending = asyncio.create_task(auth.authenticate(request_with("live_a"), "customer"))
    await asyncio.sleep(0)
    auth.forget("customer", "c1")  # the revocation overtakes the answer
    taskstore.gate.set()
    assert await pending == CUSTOMER
    await auth.authenticate(request_with("live_a"), "customer")
    assert taskstore.calls == 2, "the answer from before the change was cached"


async def test_concurrent_requests_with_one_credential_share_one_look_up() -> None:
    """Under load a look-up per request would queue behind the work (the overload
    bench): requests that miss the cache together ask once."""
    taskstore = FakeTaskStore(CUSTOMER)
    taskstore.gate = asyncio.Event()
    auth = Authenticator(OnlyTaskStore(taskstore), cache_seconds=600)  # type: ignore[arg-type]
    waiting = [
        asyncio.create_task(auth.authenticate(request_with("live_a"), "customer"))
        for _ in range(50)
    ]
    await asyncio.sleep(0)
    waiting[0].cancel()  # one caller leaving does not cancel the others' answer
    taskstore.gate.set()
    answers = await asyncio.gather(*waiting[1:])
    assert answers == [CUSTOMER] * 49
    assert taskstore.calls == 1


async def test_a_request_after_a_change_does_not_join_a_look_up_from_before() -> None:
    taskstore = FakeTaskStore(CUSTOMER)
    taskstore.gate = asyncio.Event()
    auth = Authenticator(OnlyTaskStore(taskstore), cache_seconds=600)  # type: ignore[arg-type]
    before = asyncio.create_task(auth.authenticate(request_with("live_a"), "customer"))
    await asyncio.sleep(0)
    auth.forget("customer", "c1")
    after = asyncio.create_task(auth.authenticate(request_with("live_a"), "customer"))
    await asyncio.sleep(0)
    taskstore.gate.set()
    assert await before == await after == CUSTOMER
    assert taskstore.calls == 2


async def test_the_notifier_forgets_a_rotated_secret() -> None:
    taskstore = FakeTaskStore(CallbackSecret(callback_secret="whsec_old"))
    secrets = CallbackSecrets(taskstore, cache_seconds=600)  # type: ignore[arg-type]
    assert (await secrets.get("c1")).current == "whsec_old"
    taskstore.answer = CallbackSecret(callback_secret="whsec_new")
    assert (await secrets.get("c1")).current == "whsec_old"  # cached
    secrets.forget("c1")
    assert (await secrets.get("c1")).current == "whsec_new"
    taskstore.answer = CallbackSecret(callback_secret="whsec_newer")
    secrets.forget_all()
    assert (await secrets.get("c1")).current == "whsec_newer"


@pytest.mark.parametrize("forget", ["one", "all"])
async def test_a_secret_in_flight_during_a_rotation_is_not_kept(forget: str) -> None:
    taskstore = FakeTaskStore(CallbackSecret(callback_secret="whsec_old"))
    taskstore.gate = asyncio.Event()
    secrets = CallbackSecrets(taskstore, cache_seconds=600)  # type: ignore[arg-type]
    pending = asyncio.create_task(secrets.get("c1"))
    await asyncio.sleep(0)
    secrets.forget("c1") if forget == "one" else secrets.forget_all()
    taskstore.gate.set()
    await pending
    await secrets.get("c1")
    assert taskstore.calls == 2


async def test_concurrent_completions_of_one_customer_share_one_secret_look_up() -> None:
    taskstore = FakeTaskStore(CallbackSecret(callback_secret="whsec_s"))
    taskstore.gate = asyncio.Event()
    secrets = CallbackSecrets(taskstore, cache_seconds=600)  # type: ignore[arg-type]
    waiting = [asyncio.create_task(secrets.get("c1")) for _ in range(20)]
    await asyncio.sleep(0)
    waiting[0].cancel()  # one caller leaving does not cancel the others' answer
    taskstore.gate.set()
    assert [s.current for s in await asyncio.gather(*waiting[1:])] == ["whsec_s"] * 19
    assert taskstore.calls == 1


async def test_a_failed_look_up_is_not_kept() -> None:
    taskstore = FakeTaskStore(CallbackSecret(callback_secret="whsec_s"))
    failing = FakeTaskStore(None)

    async def refuse(_command: Any) -> Any:
        failing.calls += 1
        raise Unavailable("task-store down")

    secrets = CallbackSecrets(failing, cache_seconds=600)  # type: ignore[arg-type]
    failing.send = refuse  # type: ignore[method-assign]
    with pytest.raises(Unavailable):
        await secrets.get("c1")
    failing.send = taskstore.send  # type: ignore[method-assign]
    assert (await secrets.get("c1")).current == "whsec_s"
