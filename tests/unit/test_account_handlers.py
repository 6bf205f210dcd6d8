"""The task-store's credential commands against in-memory fakes (tests/support/fakes.py):
the gateway's (authenticate, the demo customer), the notifier's (callback secret) and
the operator's (create, list, revoke, rotate; each announced as `credential.changed`
before it is answered). The MongoDB side: tests/integration/test_accounts.py."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from humantask_shared.core.credentials import credential_hash, new_api_key, new_worker_token
from humantask_shared.core.errors import Conflict, NotFound, Unauthorized
from humantask_shared.core.messages.commands import (
    Authenticate,
    CreateCustomer,
    CreateWorker,
    EnsureCustomer,
    GetCallbackSecret,
    ListAccounts,
    RevokeAccount,
    RotateCallbackSecret,
    RotateCredential,
)
from humantask_taskstore import account_handlers, customer_handlers
from humantask_taskstore.ports import Dependencies
from tests.support.fakes import (
    FakeAccounts,
    FakePool,
    FakeQuality,
    FakeTasks,
    RecordingAnnouncer,
    RecordingOutbox,
    RecordingPublisher,
)


@dataclass
class World:
    accounts: FakeAccounts = field(default_factory=FakeAccounts)
    announcer: RecordingAnnouncer = field(default_factory=RecordingAnnouncer)

    @property
    def deps(self) -> Dependencies:
        return Dependencies(
            tasks=FakeTasks(),
            accounts=self.accounts,
            outbox=RecordingOutbox(),
            announce=self.announcer,
            work_lease_seconds=600,
            pool=FakePool(),
            quality=FakeQuality(),
            publish=RecordingPublisher(),
        )

    async def create_customer(self, key: str, name: str = "acme") -> str:
        command = CreateCustomer(customer_name=name, credential_hash=credential_hash(key))
        created = await account_handlers.create_customer(command, self.deps)
        return created.customer_id

    async def create_worker(self, token: str, name: str = "ann") -> str:
        command = CreateWorker(worker_name=name, credential_hash=credential_hash(token))
        return (await account_handlers.create_worker(command, self.deps)).worker_id

    async def authenticate(self, key: str, role: str = "customer") -> str:
        command = Authenticate(credential_hash=credential_hash(key), role=role)
        return (await customer_handlers.authenticate(command, self.deps)).principal_id


@pytest.fixture
def world() -> World:
    return World()


async def test_a_created_customer_authenticates_with_its_key_only(world: World) -> None:
    key = new_api_key()
    customer_id = await world.create_customer(key)
    assert await world.authenticate(key) == customer_id
    with pytest.raises(Unauthorized):
        await world.authenticate(key, "worker")
    with pytest.raises(Unauthorized):
        await world.authenticate(new_api_key())


async def test_a_redelivered_create_finds_what_it_made(world: World) -> None:
    key, token = new_api_key(), new_worker_token()
    command = CreateCustomer(customer_name="acme", credential_hash=credential_hash(key))
    first = await account_handlers.create_customer(command, world.deps)
    again = await account_handlers.create_customer(command, world.deps)
    assert again == first and first.callback_secret.startswith("whsec_")
    assert await world.create_worker(token) == await world.create_worker(token)
    assert len(world.accounts.customers) == len(world.accounts.workers) == 1


async def test_the_callback_secret_is_the_customers(world: World) -> None:
    key = new_api_key()
    created = await account_handlers.create_customer(
        CreateCustomer(customer_name="acme", credential_hash=credential_hash(key)), world.deps
    )
    secret = await customer_handlers.get_callback_secret(
        GetCallbackSecret(customer_id=created.customer_id), world.deps
    )
    assert secret.callback_secret == created.callback_secret
    with pytest.raises(NotFound):
        await customer_handlers.get_callback_secret(
            GetCallbackSecret(customer_id="nobody"), world.deps
        )


async def test_the_demo_customer_is_made_once_and_stays_revoked(world: World) -> None:
    digest = credential_hash(new_api_key())
    ensure = EnsureCustomer(customer_name="demo", credential_hash=digest)
    demo = await customer_handlers.ensure_customer(ensure, world.deps)
    assert await customer_handlers.ensure_customer(ensure, world.deps) == demo
    await account_handlers.revoke_account(
        RevokeAccount(role="customer", principal_id=demo.principal_id), world.deps
    )
    with pytest.raises(Conflict, match="HUMANTASK_DEMO_API_KEY"):
        await customer_handlers.ensure_customer(ensure, world.deps)
    assert len(world.accounts.customers) == 1


async def test_accounts_are_listed_by_role(world: World) -> None:
    customer_id = await world.create_customer(new_api_key())
    worker_id = await world.create_worker(new_worker_token())
    customers = await account_handlers.list_accounts(ListAccounts(role="customer"), world.deps)
    workers = await account_handlers.list_accounts(ListAccounts(role="worker"), world.deps)
    assert [a.principal_id for a in customers.accounts] == [customer_id]
    assert [a.principal_id for a in workers.accounts] == [worker_id]


async def test_a_revocation_is_announced_then_answered(world: World) -> None:
    key = new_api_key()
    customer_id = await world.create_customer(key)
    revoked = await account_handlers.revoke_account(
        RevokeAccount(role="customer", principal_id=customer_id), world.deps
    )
    assert revoked.revoked_at is not None
    assert world.announcer.changes() == [("customer", customer_id, "revoked")]
    with pytest.raises(Unauthorized):
        await world.authenticate(key)


async def test_an_unknown_principal_is_not_found_and_nothing_is_announced(world: World) -> None:
    worker_id = await world.create_worker(new_worker_token())
    calls = [
        account_handlers.revoke_account(
            RevokeAccount(role="customer", principal_id=worker_id), world.deps
        ),
        account_handlers.rotate_credential(
            RotateCredential(
                role="worker", principal_id="nobody", credential_hash=credential_hash("x")
            ),
            world.deps,
        ),
        account_handlers.rotate_callback_secret(
            RotateCallbackSecret(customer_id=worker_id), world.deps
        ),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            await call
    assert world.announcer.announced == []


async def test_a_rotated_key_replaces_the_old_one(world: World) -> None:
    old, new = new_worker_token(), new_worker_token()
    worker_id = await world.create_worker(old)
    rotate = RotateCredential(
        role="worker", principal_id=worker_id, credential_hash=credential_hash(new)
    )
    await account_handlers.rotate_credential(rotate, world.deps)
    await account_handlers.rotate_credential(rotate, world.deps)  # redelivered
    assert await world.authenticate(new, "worker") == worker_id
    with pytest.raises(Unauthorized):
        await world.authenticate(old, "worker")
    assert world.announcer.changes() == [("worker", worker_id, "key_rotated")] * 2


async def test_a_revoked_principal_gets_no_new_key(world: World) -> None:
    customer_id = await world.create_customer(new_api_key())
    await account_handlers.revoke_account(
        RevokeAccount(role="customer", principal_id=customer_id), world.deps
    )
    key = new_api_key()
    with pytest.raises(Conflict, match="revoked"):
        await account_handlers.rotate_credential(
            RotateCredential(
                role="customer", principal_id=customer_id, credential_hash=credential_hash(key)
            ),
            world.deps,
        )
    with pytest.raises(Unauthorized):
        await world.authenticate(key)


async def test_a_rotated_callback_secret_is_new_and_announced(world: World) -> None:
    created = await account_handlers.create_customer(
        CreateCustomer(customer_name="acme", credential_hash=credential_hash(new_api_key())),
        world.deps,
    )
    rotated = await account_handlers.rotate_callback_secret(
        RotateCallbackSecret(customer_id=created.customer_id), world.deps
    )
    assert rotated.callback_secret != created.callback_secret
    secret = await customer_handlers.get_callback_secret(
        GetCallbackSecret(customer_id=created.customer_id), world.deps
    )
    assert secret == rotated
    assert world.announcer.changes() == [("customer", created.customer_id, "secret_rotated")]
