"""Handlers of the operator's commands (`humantask-admin`): create, list, revoke, rotate,
and a customer's weight in the fair pool.

Only the admin tool's broker user may send them (`Command.senders`). A revocation or
rotation is written, then announced as `credential.changed` on the events exchange, and
only then answered: every gateway forgets the old key and every notifier the old
callback secret as soon as the operator sees the answer (docs/reference/contract.md §2–3). If the
broker fails in between, the command is retried; each of them may run twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from humantask_shared.core.credentials import new_callback_secret
from humantask_shared.core.errors import Conflict, NotFound
from humantask_shared.core.messages.commands import (
    Account,
    AccountList,
    CallbackSecret,
    CreateCustomer,
    CreatedCustomer,
    CreatedWorker,
    CreateWorker,
    CustomerWeight,
    ListAccounts,
    RevokeAccount,
    Role,
    RotateCallbackSecret,
    RotateCredential,
    SetCustomerWeight,
)
from humantask_shared.core.messages.events import CredentialChange, CredentialChanged
from humantask_shared.core.timeutil import utcnow
from humantask_shared.runtime.logging import request_id_var

from .ports import Dependencies

log = logging.getLogger(__name__)


async def create_customer(command: CreateCustomer, deps: Dependencies) -> CreatedCustomer:
    # A redelivered command finds the customer it made: keys are random, never shared.
    owner = await deps.accounts.owner_of(command.credential_hash, "customer")
    if owner is None:
        owner = await deps.accounts.add_customer(
            command.customer_name, command.credential_hash, new_callback_secret(), utcnow()
        )
        log.info("customer created", extra={"customer_id": owner.principal_id})
    secret = await deps.accounts.callback_secret(owner.principal_id)
    assert secret is not None
    return CreatedCustomer(customer_id=owner.principal_id, callback_secret=secret)


async def create_worker(command: CreateWorker, deps: Dependencies) -> CreatedWorker:
    owner = await deps.accounts.owner_of(command.credential_hash, "worker")
    if owner is None:
        owner = await deps.accounts.add_worker(
            command.worker_name, command.credential_hash, utcnow()
        )
        log.info("worker created", extra={"worker_id": owner.principal_id})
    return CreatedWorker(worker_id=owner.principal_id)


async def list_accounts(command: ListAccounts, deps: Dependencies) -> AccountList:
    return AccountList(accounts=await deps.accounts.accounts(command.role))


async def revoke_account(command: RevokeAccount, deps: Dependencies) -> Account:
    account = await deps.accounts.revoke(command.role, command.principal_id, utcnow())
    if account is None:
        raise _not_found(command.role, command.principal_id)
    await _announce(deps, command.role, command.principal_id, "revoked")
    return account


async def rotate_credential(command: RotateCredential, deps: Dependencies) -> Account:
    account = await _existing(deps, command.role, command.principal_id)
    if account.revoked_at is not None:
        raise Conflict(f"{command.role} {command.principal_id} is revoked; create a new one")
    rotated = await deps.accounts.rotate_credential(
        command.role, command.principal_id, command.credential_hash, utcnow()
    )
    assert rotated is not None
    await _announce(deps, command.role, command.principal_id, "key_rotated")
    return rotated


async def rotate_callback_secret(
    command: RotateCallbackSecret, deps: Dependencies
) -> CallbackSecret:
    await _existing(deps, "customer", command.customer_id)
    secret = new_callback_secret()
    overlap = command.overlap_seconds
    until = utcnow() + timedelta(seconds=overlap) if overlap > 0 else None
    if not await deps.accounts.rotate_callback_secret(command.customer_id, secret, until):
        raise _not_found("customer", command.customer_id)
    await _announce(deps, "customer", command.customer_id, "secret_rotated")
    return CallbackSecret(callback_secret=secret, previous_until=until)


async def _existing(deps: Dependencies, role: Role, principal_id: str) -> Account:
    account = await deps.accounts.account(role, principal_id)
    if account is None:
        raise _not_found(role, principal_id)
    return account


def _not_found(role: Role, principal_id: str) -> NotFound:
    return NotFound(f"no {role} with {role}_id {principal_id}")


async def _announce(
    deps: Dependencies, role: Role, principal_id: str, change: CredentialChange
) -> None:
    """Publish `credential.changed` (confirmed); a broker error requeues the command."""
    event = CredentialChanged(
        role=role, principal_id=principal_id, change=change, request_id=request_id_var.get()
    )
    await deps.announce(event)
    log.info(
        "credential changed", extra={"role": role, "principal_id": principal_id, "change": change}
    )


async def set_customer_weight(command: SetCustomerWeight, deps: Dependencies) -> CustomerWeight:
    """The customer's share of the worker pool (`fair_pool`), from its next claim on."""
    if await deps.accounts.account("customer", command.customer_id) is None:
        raise NotFound(f"no customer with customer_id {command.customer_id}")
    await deps.pool.set_weight(command.customer_id, command.weight)
    log.info("customer weight set", extra={"customer_id": command.customer_id})
    return CustomerWeight(customer_id=command.customer_id, weight=command.weight)
