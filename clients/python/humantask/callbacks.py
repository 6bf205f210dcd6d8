"""Checking and reading the callbacks humantask POSTs to a task's `callback_url`.

    body = request.body                       # the raw bytes, before any parsing
    if not humantask.verify_callback(SECRET, request.headers, body):
        return 401
    payload = humantask.parse_callback(body, request.headers["Content-Type"])
    payload["response"]["category"]

Callbacks are signed per Standard Webhooks (standardwebhooks.com), so its libraries
verify them too: `webhook-signature: v1,<base64 HMAC-SHA256 of
"<webhook-id>.<webhook-timestamp>.<raw body>">`, keyed with the bytes the base64 after
`whsec_` in the customer's `callback_secret` stands for.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300

_KEY_PART = re.compile(r"\[([^\]]*)\]")
_TIMESTAMP = re.compile(r"[0-9]{1,15}")  # ASCII digits only: not "١٧٠٠" nor "１７００"


def _header(headers: Mapping[str, Any], name: str) -> str:
    for key, value in headers.items():
        if str(key).lower() == name:
            if isinstance(value, list | tuple):
                value = value[0] if value else ""
            return value if isinstance(value, str) else ""
    return ""


def signing_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret: the bytes its base64 part stands for
    (decoded as leniently as the Standard Webhooks libraries do)."""
    encoded = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a callback secret is whsec_ followed by base64") from exc


def sign(secret: str, message_id: str, timestamp: str | int, body: bytes) -> str:
    """The `webhook-signature` value for `body` sent as `message_id` at `timestamp`."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify_callback(
    secret: str,
    headers: Mapping[str, Any],
    body: bytes,
    *,
    tolerance_seconds: float | None = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Did humantask send this callback? Constant-time; stale timestamps are refused.

    `headers` is the request's headers (any capitalisation), `body` its raw bytes. With
    `tolerance_seconds` None the timestamp's age is not checked. Malformed headers are
    `False`, never an exception.
    """
    message_id = _header(headers, ID_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signatures = _header(headers, SIGNATURE_HEADER)
    if not message_id or not signatures or not _TIMESTAMP.fullmatch(timestamp):
        return False
    if tolerance_seconds is not None:
        current = time.time() if now is None else now
        if abs(current - int(timestamp)) > tolerance_seconds:
            return False
    try:
        expected = sign(secret, message_id, timestamp, body).encode("ascii")
    except ValueError:  # not a secret at all, or a message id no sender of ours would use
        return False
    return any(
        hmac.compare_digest(candidate.encode("utf-8", "replace"), expected)
        for candidate in signatures.split()
    )


def parse_callback(body: bytes, content_type: str = "application/x-www-form-urlencoded") -> Any:
    """The callback's object: JSON as it is, or a form decoded with its bracket nesting.

    `task[params][categories][0]=big` becomes `{"task": {"params": {"categories": ["big"]}}}`
    (form values stay strings, as Scale's v1 callback example shows them).
    """
    if content_type.split(";")[0].strip().lower() == "application/json":
        return json.loads(body)
    root: dict[str, Any] = {}
    for name, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
        head, _, rest = name.partition("[")
        keys = [head, *_KEY_PART.findall("[" + rest)] if rest else [head]
        *parents, leaf = keys
        node: dict[str, Any] = root
        for key in parents:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[leaf or str(len(node))] = value  # `a[]=x&a[]=y`: the next index
    return _lists(root)


def _lists(node: Any) -> Any:
    """Objects whose keys are 0, 1, 2, ... (or empty, `a[]`) become lists."""
    if not isinstance(node, dict):
        return node
    items = {key: _lists(value) for key, value in node.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items
