"""The callback request: its body in either format, and its signature headers. No I/O.

The body is the seed's object `{"task": ..., "response": ..., "task_id": ...}`:

- `form` (the default): `application/x-www-form-urlencoded`, nested with brackets the
  way the seed's servers did (`task[params][categories][0]=big`); scalars become
  strings (`true`/`false` for booleans, an empty string for null); empty objects and
  arrays have no field at all, as with the usual bracket encoders.
- `json`: the same object as `application/json`.

`X-Callback-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`, keyed with the
customer's callback secret (its UTF-8 bytes, `whsec_` prefix included).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import orjson

from humantask_shared.models import CallbackFormat

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"
SIGNATURE_VERSION = "v1"

TASK_ID_HEADER = "X-Callback-Task-Id"
ATTEMPT_HEADER = "X-Callback-Attempt"
TIMESTAMP_HEADER = "X-Callback-Timestamp"
SIGNATURE_HEADER = "X-Callback-Signature"


def callback_object(task: dict[str, Any]) -> dict[str, Any]:
    """What the seed POSTs: the task, its response again, and its id."""
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


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=<hex>`: HMAC-SHA256 of `<timestamp>.<raw body>` keyed with the secret."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={digest.hexdigest()}"


def callback_headers(
    task_id: str, attempt: int, timestamp: int, secret: str, body: bytes, content_type: str
) -> dict[str, str]:
    return {
        "Content-Type": content_type,
        TASK_ID_HEADER: task_id,
        ATTEMPT_HEADER: str(attempt),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
