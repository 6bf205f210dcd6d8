"""Customers' and workers' credentials in MongoDB: listing, revoking, rotating."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from pymongo.errors import DuplicateKeyError

from humantask_shared.core.credentials import credential_hash, new_api_key, new_worker_token
from humantask_shared.core.timeutil import utcnow
from humantask_taskstore.repository import AccountRepository, ensure_indexes


@pytest.fixture
async def accounts(fresh_database: Callable) -> AsyncIterator[AccountRepository]:
    async for db in fresh_database(ensure_indexes):
        yield AccountRepository(db)


async def add_customer(accounts: AccountRepository, name: str, key: str, when=None) -> str:
    principal = await accounts.add_customer(name, credential_hash(key), "whsec_x", when or utcnow())
    return principal.principal_id


async def test_accounts_are_listed_oldest_first_without_secrets(
    accounts: AccountRepository,
) -> None:
    now = utcnow()
    second = await add_customer(accounts, "second", new_api_key(), now)
    first = await add_customer(accounts, "first", new_api_key(), now - timedelta(seconds=1))
    worker = await accounts.add_worker("w", credential_hash(new_worker_token()), now)
    listed = await accounts.accounts("customer")
    assert [(a.principal_id, a.name, a.revoked_at) for a in listed] == [
        (first, "first", None),
        (second, "second", None),
    ]
    assert [a.principal_id for a in await accounts.accounts("worker")] == [worker.principal_id]
    assert "callback_secret" not in listed[0].model_dump()


async def test_a_revoked_customer_cannot_authenticate_and_stays_revoked(
    accounts: AccountRepository,
) -> None:
    key = new_api_key()
    customer_id = await add_customer(accounts, "acme", key)
    assert await accounts.authenticate(credential_hash(key), "customer") is not None
    revoked = await accounts.revoke("customer", customer_id, utcnow())
    assert revoked is not None and revoked.revoked_at is not None
    assert await accounts.authenticate(credential_hash(key), "customer") is None
    again = await accounts.revoke("customer", customer_id, utcnow() + timedelta(seconds=5))
    assert again is not None and again.revoked_at == revoked.revoked_at
    assert await accounts.revoke("customer", "0" * 24, utcnow()) is None
    assert await accounts.revoke("worker", customer_id, utcnow()) is None  # not a worker


async def test_a_revoked_demo_key_does_not_come_back(accounts: AccountRepository) -> None:
    key = new_api_key()
    demo = await accounts.ensure_customer("demo", credential_hash(key), "whsec_x", utcnow())
    assert demo is not None
    assert await accounts.ensure_customer("demo", credential_hash(key), "whsec_x", utcnow()) == demo
    await accounts.revoke("customer", demo.principal_id, utcnow())
    assert await accounts.ensure_customer("demo", credential_hash(key), "whsec_x", utcnow()) is None
    assert len(await accounts.accounts("customer")) == 1


async def test_rotating_a_key_replaces_it(accounts: AccountRepository) -> None:
    old, new = new_worker_token(), new_worker_token()
    worker = await accounts.add_worker("w", credential_hash(old), utcnow())
    rotated = await accounts.rotate_credential(
        "worker", worker.principal_id, credential_hash(new), utcnow()
    )
    assert rotated is not None and rotated.revoked_at is None
    assert await accounts.authenticate(credential_hash(old), "worker") is None
    assert await accounts.authenticate(credential_hash(new), "worker") == worker
    # A redelivered rotation finds its key in place.
    await accounts.rotate_credential("worker", worker.principal_id, credential_hash(new), utcnow())
    assert await accounts.authenticate(credential_hash(new), "worker") == worker
    # Someone else's key is never taken over.
    other_key = new_worker_token()
    await accounts.add_worker("other", credential_hash(other_key), utcnow())
    with pytest.raises(DuplicateKeyError):
        await accounts.rotate_credential(
            "worker", worker.principal_id, credential_hash(other_key), utcnow()
        )


async def test_rotating_a_callback_secret(accounts: AccountRepository) -> None:
    customer_id = await add_customer(accounts, "acme", new_api_key())
    assert await accounts.rotate_callback_secret(customer_id, "whsec_new")
    assert await accounts.callback_secret(customer_id) == "whsec_new"
    assert not await accounts.rotate_callback_secret("0" * 24, "whsec_new")


async def test_a_rotated_secret_keeps_the_one_it_replaced_until_the_overlap_ends(
    accounts: AccountRepository,
) -> None:
    customer_id = await add_customer(accounts, "acme", new_api_key())
    first = await accounts.callback_secret(customer_id)
    until = utcnow() + timedelta(hours=24)
    assert await accounts.rotate_callback_secret(customer_id, "whsec_second", until)
    secrets = await accounts.signing_secrets(customer_id)
    assert secrets is not None
    assert (secrets.callback_secret, secrets.previous_secret) == ("whsec_second", first)
    assert secrets.previous_until is not None
    assert abs((secrets.previous_until - until).total_seconds()) < 0.01
    # Rotating again replaces the previous secret with the one it replaces now.
    assert await accounts.rotate_callback_secret(customer_id, "whsec_third", until)
    again = await accounts.signing_secrets(customer_id)
    assert again is not None and again.previous_secret == "whsec_second"
    # Without an overlap, the replaced secret is not kept.
    assert await accounts.rotate_callback_secret(customer_id, "whsec_fourth")
    cut = await accounts.signing_secrets(customer_id)
    assert cut is not None
    assert (cut.callback_secret, cut.previous_secret, cut.previous_until) == (
        "whsec_fourth",
        None,
        None,
    )
    assert await accounts.signing_secrets("0" * 24) is None
