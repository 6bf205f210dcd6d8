"""The task-store's credential commands against in-memory fakes (tests/support/fakes.py):
the gateway's (authenticate, the demo customer), the notifier's (callback secret) and
the operator's (create, list, revoke, rotate; each announced as `credential.changed`
before it is answered). The MongoDB side: tests/integration/test_accounts.py."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest
from pydantic import ValidationError

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
from humantask_shared.core.messages.quotas import SetCustomerQuota
from humantask_shared.core.timeutil import utcnow
from humantask_taskstore import account_handlers, admin, customer_handlers, quota_handlers
from humantask_taskstore.cursors import CursorSigner
from humantask_taskstore.ports import Dependencies
from humantask_taskstore.repository.usage import QuotaLimits
from tests.support.fakes import (
    FakeAccounts,
    FakePool,
    FakeQuality,
    FakeTasks,
    RecordingAnnouncer,
    RecordingOutbox,
    RecordingPublisher,
    scale_ports,
)


@dataclass
class World:
    accounts: FakeAccounts = field(default_factory=FakeAccounts)
    announcer: RecordingAnnouncer = field(default_factory=RecordingAnnouncer)
    demo_key: str | None = None

    @property
    def deps(self) -> Dependencies:
        tasks = FakeTasks()
        return Dependencies(
            tasks=tasks,
            accounts=self.accounts,
            outbox=RecordingOutbox(),
            announce=self.announcer,
            work_lease_seconds=600,
            **scale_ports(tasks),
            pool=FakePool(),
            quality=FakeQuality(),
            publish=RecordingPublisher(),
            list_tokens=CursorSigner(bytes(32)),
            demo_customer_key_hash=None
            if self.demo_key is None
            else credential_hash(self.demo_key),
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
    world.demo_key = new_api_key()
    digest = credential_hash(world.demo_key)
    ensure = EnsureCustomer(customer_name="demo", credential_hash=digest)
    demo = await customer_handlers.ensure_customer(ensure, world.deps)
    assert await customer_handlers.ensure_customer(ensure, world.deps) == demo
    await account_handlers.revoke_account(
        RevokeAccount(role="customer", principal_id=demo.principal_id), world.deps
    )
    with pytest.raises(Conflict, match="HUMANTASK_DEMO_API_KEY"):
        await customer_handlers.ensure_customer(ensure, world.deps)
    assert len(world.accounts.customers) == 1


async def test_only_the_task_stores_own_demo_key_makes_a_customer(world: World) -> None:
    """The gateway's broker user may send `customer.ensure`; with the demo off in the
    task-store (no HUMANTASK_DEMO_API_KEY of its own), or for any other key, it makes no
    customer: a gateway's credentials cannot mint API keys."""
    someone = EnsureCustomer(customer_name="x", credential_hash=credential_hash(new_api_key()))
    with pytest.raises(Unauthorized, match="HUMANTASK_DEMO_API_KEY is not set"):
        await customer_handlers.ensure_customer(someone, world.deps)
    world.demo_key = new_api_key()
    with pytest.raises(Unauthorized, match="not the task-store's HUMANTASK_DEMO_API_KEY"):
        await customer_handlers.ensure_customer(someone, world.deps)
    assert world.accounts.customers == {}
    demo = EnsureCustomer(customer_name="demo", credential_hash=credential_hash(world.demo_key))
    made = await customer_handlers.ensure_customer(demo, world.deps)
    assert await world.authenticate(world.demo_key) == made.principal_id


async def test_an_operator_sets_and_reads_a_customers_quotas(world: World) -> None:
    customer_id = await world.create_customer(new_api_key())
    tasks = FakeTasks(quotas=QuotaLimits(pending_tasks=100, stored_bytes=0))
    deps = replace(world.deps, tasks=tasks)
    read = await quota_handlers.set_customer_quota(SetCustomerQuota(customer_id=customer_id), deps)
    assert (read.pending_tasks_limit, read.pending_tasks_limit_is) == (100, "default")
    assert (read.stored_bytes_limit, read.pending_tasks) == (0, 0)
    both = SetCustomerQuota(customer_id=customer_id, pending_tasks=5, stored_bytes=1_000_000)
    quota = await quota_handlers.set_customer_quota(both, deps)
    assert (quota.pending_tasks_limit, quota.stored_bytes_limit) == (5, 1_000_000)
    assert quota.pending_tasks_limit_is == quota.stored_bytes_limit_is == "customer"
    one = SetCustomerQuota(customer_id=customer_id, pending_tasks="default")
    quota = await quota_handlers.set_customer_quota(one, deps)
    assert (quota.pending_tasks_limit, quota.stored_bytes_limit) == (100, 1_000_000)
    with pytest.raises(NotFound, match="no customer"):
        await quota_handlers.set_customer_quota(SetCustomerQuota(customer_id="nobody"), deps)
    with pytest.raises(ValidationError):
        SetCustomerQuota(customer_id=customer_id, pending_tasks=-1)


def test_the_admin_tool_reads_quota_settings() -> None:
    parser = admin._parser()
    args = parser.parse_args(["customers", "set-quota", "c1", "--pending-tasks", "0"])
    assert (args.id, args.pending_tasks, args.stored_bytes) == ("c1", 0, None)
    args = parser.parse_args(["customers", "set-quota", "c1", "--stored-bytes", "default"])
    assert (args.pending_tasks, args.stored_bytes) == (None, "default")
    assert parser.parse_args(["customers", "quota", "c1"]).action == "quota"
    for bad in ("-5", "lots", "1.5"):
        with pytest.raises(SystemExit):
            parser.parse_args(["customers", "set-quota", "c1", "--pending-tasks", bad])


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
    assert secret.callback_secret == rotated.callback_secret
    assert world.announcer.changes() == [("customer", created.customer_id, "secret_rotated")]


async def test_a_rotated_secret_keeps_the_replaced_one_for_its_overlap_window(
    world: World,
) -> None:
    created = await account_handlers.create_customer(
        CreateCustomer(customer_name="acme", credential_hash=credential_hash(new_api_key())),
        world.deps,
    )
    before = utcnow()
    rotated = await account_handlers.rotate_callback_secret(
        RotateCallbackSecret(customer_id=created.customer_id, overlap_seconds=3600), world.deps
    )
    assert rotated.previous_secret is None  # the operator is told when, never the old secret
    assert rotated.previous_until is not None
    assert before + timedelta(seconds=3600) <= rotated.previous_until
    assert rotated.previous_until <= utcnow() + timedelta(seconds=3600)
    secrets = await customer_handlers.get_callback_secret(
        GetCallbackSecret(customer_id=created.customer_id), world.deps
    )
    assert secrets.callback_secret == rotated.callback_secret
    assert secrets.previous_secret == created.callback_secret
    assert secrets.previous_until == rotated.previous_until


async def test_the_default_overlap_is_a_day_and_zero_drops_the_replaced_secret(
    world: World,
) -> None:
    assert RotateCallbackSecret(customer_id="c").overlap_seconds == 24 * 3600
    created = await account_handlers.create_customer(
        CreateCustomer(customer_name="acme", credential_hash=credential_hash(new_api_key())),
        world.deps,
    )
    rotated = await account_handlers.rotate_callback_secret(
        RotateCallbackSecret(customer_id=created.customer_id, overlap_seconds=0), world.deps
    )
    assert rotated.previous_until is None
    secrets = await customer_handlers.get_callback_secret(
        GetCallbackSecret(customer_id=created.customer_id), world.deps
    )
    assert (secrets.previous_secret, secrets.previous_until) == (None, None)


async def test_a_replaced_secret_is_not_handed_out_once_its_window_has_passed(
    world: World,
) -> None:
    created = await account_handlers.create_customer(
        CreateCustomer(customer_name="acme", credential_hash=credential_hash(new_api_key())),
        world.deps,
    )
    await account_handlers.rotate_callback_secret(
        RotateCallbackSecret(customer_id=created.customer_id, overlap_seconds=60), world.deps
    )
    old, _ = world.accounts.previous_secrets[created.customer_id]
    world.accounts.previous_secrets[created.customer_id] = (old, utcnow() - timedelta(seconds=1))
    secrets = await customer_handlers.get_callback_secret(
        GetCallbackSecret(customer_id=created.customer_id), world.deps
    )
    assert (secrets.previous_secret, secrets.previous_until) == (None, None)
