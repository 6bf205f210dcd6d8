"""The callback request: its body in either format, and its signature headers. No I/O.

The body is Scale's v1 callback object `{"task": ..., "response": ..., "task_id": ...}`:

- `form` (the default): `application/x-www-form-urlencoded`, nested with brackets the
  way Scale's v1 servers did (`task[params][categories][0]=big`); scalars become
  strings (`true`/`false` for booleans, an empty string for null); empty objects and
  arrays have no field at all, as with the usual bracket encoders.
- `json`: the same object as `application/json`.

A batch's callback (docs/reference/contract.md §11) is JSON: the batch and its counts.

Signed per Standard Webhooks (standardwebhooks.com), so its libraries verify it:
`webhook-id` (the message's id: the same for both attempts and for every redelivery of
it; the task's id for its first completion's callback, `<task id>.<n>` for a later
completion's, n being the delivery that first sent it, `batch-<batch id>` for a batch's:
`domain`), `webhook-timestamp` (unix seconds of this attempt) and `webhook-signature:
v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<raw body>">`, keyed with the
decoded bytes of the customer's `whsec_...` callback secret
(`credentials.callback_signing_key`). During a secret rotation's overlap window the
header carries one signature per secret, space-separated (`v1,<new> v1,<old>`), as the
specification allows: a receiver holding either secret verifies it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlencode

import orjson

from humantask_shared.core.credentials import callback_signing_key
from humantask_shared.core.models import CallbackFormat

from .domain import Delivery

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"
SIGNATURE_VERSION = "v1"

TASK_ID_HEADER = "X-Callback-Task-Id"
BATCH_HEADER = "X-Callback-Batch"
ATTEMPT_HEADER = "X-Callback-Attempt"
DELIVERY_HEADER = "X-Callback-Delivery"
WEBHOOK_ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


def callback_object(task: dict[str, Any]) -> dict[str, Any]:
    """What Scale's v1 API POSTs: the task, its response again, and its id."""
    return {"task": task, "response": task["response"], "task_id": task["task_id"]}


def _form_scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def form_fields(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(`a[b][0]`, value) pairs for every scalar inside `value`, in order."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from form_fields(item, f"{prefix}[{key}]" if prefix else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from form_fields(item, f"{prefix}[{index}]")
    else:
        yield prefix, _form_scalar(value)


def encode_form(value: dict[str, Any]) -> bytes:
    # Brackets stay readable (`task[params][categories][0]=big`); decoders accept either.
    return urlencode(list(form_fields(value)), safe="[]").encode("ascii")


def encode_body(task: dict[str, Any], callback_format: CallbackFormat) -> tuple[bytes, str]:
    """The raw body and its content type."""
    body = callback_object(task)
    if callback_format == "json":
        return orjson.dumps(body), JSON_CONTENT_TYPE
    return encode_form(body), FORM_CONTENT_TYPE


def webhook_id(task_id: str) -> str:
    """The message id of a task's first completion's callback: the same for both
    attempts and for every redelivery, so receivers can deduplicate on it. A redelivery
    sends the same message again, and Standard Webhooks keeps a message's id when it is
    resent: a receiver that already handled it may skip it, one that lost it handles it.
    A later completion is a new message, with an id of its own (`Delivery.webhook_id`)."""
    return task_id


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64>`: HMAC-SHA256 of `<message_id>.<timestamp>.<raw body>`."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(callback_signing_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def callback_headers(
    task_id: str,
    attempt: int,
    timestamp: int,
    secrets: str | Sequence[str],
    body: bytes,
    content_type: str,
    delivery: int = 1,
    message_id: str | None = None,
) -> dict[str, str]:
    """The headers of one attempt, signed with each of `secrets` (the current one first).
    `message_id` is its `webhook-id` when that is not the task's id (a later completion's
    message)."""
    if isinstance(secrets, str):
        secrets = (secrets,)
    if not secrets:
        raise ValueError("a callback is signed with at least one secret")
    message_id = message_id or webhook_id(task_id)
    return {
        "Content-Type": content_type,
        WEBHOOK_ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(
            signature(secret, message_id, timestamp, body) for secret in secrets
        ),
        TASK_ID_HEADER: task_id,
        ATTEMPT_HEADER: str(attempt),
        DELIVERY_HEADER: str(delivery),
    }


def delivery_body(delivery: Delivery) -> tuple[bytes, str]:
    """What a delivery POSTs, and its content type."""
    if delivery.subject == "batch":
        return orjson.dumps(delivery.task), JSON_CONTENT_TYPE
    return encode_body(delivery.task, delivery.callback_format)


def delivery_headers(
    delivery: Delivery,
    attempt: int,
    timestamp: int,
    secrets: str | Sequence[str],
    body: bytes,
    content_type: str,
) -> dict[str, str]:
    """A delivery's headers: its message's `webhook-id`, its number; a task's name the
    task, a batch's the batch."""
    headers = callback_headers(
        delivery.task_id,
        attempt,
        timestamp,
        secrets,
        body,
        content_type,
        delivery=delivery.number,
        message_id=delivery.webhook_id,
    )
    if delivery.subject == "batch":
        del headers[TASK_ID_HEADER]
        headers[BATCH_HEADER] = str(delivery.task["batch"]["name"])
    return headers
