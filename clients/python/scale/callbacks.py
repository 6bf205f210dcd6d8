"""Checking and reading the callbacks humantask POSTs to a task's `callback_url`.

    body = request.body                       # the raw bytes, before any parsing
    if not scale.verify_callback(SECRET, request.headers, body):
        return 401
    payload = scale.parse_callback(body, request.headers["Content-Type"])
    payload["response"]["category"]

The signature is `X-Callback-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`
keyed with the customer's `callback_secret`, the timestamp being `X-Callback-Timestamp`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

SIGNATURE_HEADER = "X-Callback-Signature"
TIMESTAMP_HEADER = "X-Callback-Timestamp"
DEFAULT_TOLERANCE_SECONDS = 300

_KEY_PART = re.compile(r"\[([^\]]*)\]")


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return ""


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """The `X-Callback-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    message = str(timestamp).encode() + b"." + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_callback(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_seconds: float | None = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Did humantask send this callback? Constant-time; stale timestamps are refused.

    `headers` is the request's headers (any capitalisation), `body` its raw bytes.
    With `tolerance_seconds` None the timestamp's age is not checked.
    """
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if not timestamp.isdigit() or not signature:
        return False
    if tolerance_seconds is not None:
        current = time.time() if now is None else now
        if abs(current - int(timestamp)) > tolerance_seconds:
            return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate.strip())
               for candidate in signature.split(","))


def parse_callback(body: bytes, content_type: str = "application/x-www-form-urlencoded") -> Any:
    """The callback's object: JSON as it is, or a form decoded with its bracket nesting.

    `task[params][categories][0]=big` becomes `{"task": {"params": {"categories": ["big"]}}}`
    (form values stay strings, as the seed's callback example shows them).
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
