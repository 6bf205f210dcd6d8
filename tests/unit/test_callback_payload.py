"""The callback body and signature (docs/reference/contract.md §7), without I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import standardwebhooks

from humantask_notifier.payload import (
    callback_headers,
    callback_object,
    encode_body,
    encode_form,
    form_fields,
    signature,
)
from humantask_shared.core.credentials import callback_signing_key, new_callback_secret
from tests.support.callbacks import EXAMPLE_RECEIVER, SEED_CALLBACK, SEED_TASK, example_receiver

ROOT = Path(__file__).resolve().parents[2]


def test_the_form_body_decodes_to_the_seeds_callback_example() -> None:
    body, content_type = encode_body(SEED_TASK, "form")
    assert content_type == "application/x-www-form-urlencoded"
    assert example_receiver().decode_form(body) == SEED_CALLBACK


def test_form_fields_are_bracket_nested_as_the_seeds_servers_did() -> None:
    body, _ = encode_body(SEED_TASK, "form")
    pairs = parse_qsl(body.decode())
    assert ("task[params][categories][0]", "big") in pairs
    assert ("task[params][categories][1]", "small") in pairs
    assert ("response[category]", "big") in pairs
    assert ("response[status_code]", "200") in pairs
    assert ("task_id", SEED_TASK["task_id"]) in pairs
    assert b"task[params][categories][0]=big" in body  # brackets kept readable


def test_the_json_body_is_the_same_object() -> None:
    body, content_type = encode_body(SEED_TASK, "json")
    assert content_type == "application/json"
    assert json.loads(body) == {
        "task": SEED_TASK,
        "response": SEED_TASK["response"],
        "task_id": SEED_TASK["task_id"],
    }
    assert callback_object(SEED_TASK) == json.loads(body)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": None}, [("a", "")]),
        ({"a": True, "b": False}, [("a", "true"), ("b", "false")]),
        ({"n": 3, "x": 1.5}, [("n", "3"), ("x", "1.5")]),
        ({"a": [], "b": {}}, []),
        ({"a": [[1, 2], {"k": "v"}]}, [("a[0][0]", "1"), ("a[0][1]", "2"), ("a[1][k]", "v")]),
    ],
)
def test_scalars_become_strings(value: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert list(form_fields(value)) == expected


def test_reserved_characters_are_escaped_and_come_back() -> None:
    value = {"task": {"instruction": "a&b=c d+é?", "metadata": {"k y": "1%"}}}
    body = encode_form(value)
    assert b" " not in body and b"&b=" not in body
    assert example_receiver().decode_form(body) == value


SECRET = new_callback_secret()


def test_signature_is_standard_webhooks_hmac_of_id_timestamp_and_body() -> None:
    body = b"task_id=abc"
    key = b"k" * 32
    secret = "whsec_" + base64.b64encode(key).decode()
    expected = hmac.new(key, b"abc.1700000000.task_id=abc", hashlib.sha256).digest()
    assert signature(secret, "abc", 1700000000, body) == "v1," + base64.b64encode(expected).decode()


def test_headers_carry_webhook_id_timestamp_signature_task_and_attempt() -> None:
    body, content_type = encode_body(SEED_TASK, "form")
    headers = callback_headers(SEED_TASK["task_id"], 2, 1700000000, SECRET, body, content_type)
    assert headers == {
        "Content-Type": "application/x-www-form-urlencoded",
        "webhook-id": SEED_TASK["task_id"],
        "webhook-timestamp": "1700000000",
        "webhook-signature": signature(SECRET, SEED_TASK["task_id"], 1700000000, body),
        "X-Callback-Task-Id": SEED_TASK["task_id"],
        "X-Callback-Attempt": "2",
        "X-Callback-Delivery": "1",
    }
    # Both attempts of a task's callback are one webhook message: the same webhook-id.
    first = callback_headers(SEED_TASK["task_id"], 1, 1700000005, SECRET, body, content_type)
    assert first["webhook-id"] == headers["webhook-id"]


@pytest.mark.parametrize("callback_format", ["form", "json"])
def test_the_official_standard_webhooks_library_verifies_our_signature(
    callback_format: str,
) -> None:
    body, content_type = encode_body(SEED_TASK, callback_format)  # type: ignore[arg-type]
    now = int(time.time())
    headers = callback_headers(SEED_TASK["task_id"], 1, now, SECRET, body, content_type)
    standardwebhooks.Webhook(SECRET).verify(body, headers, json_parse=False)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(new_callback_secret()).verify(body, headers, json_parse=False)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(SECRET).verify(body + b" ", headers, json_parse=False)


def test_a_secret_made_before_standard_webhooks_still_verifies_with_the_library() -> None:
    """Old secrets were `whsec_` + 48 hex digits: valid base64, decoded the same way."""
    old = "whsec_" + "0123456789abcdef" * 3
    assert callback_signing_key(old) == base64.b64decode(old[len("whsec_") :])
    body, content_type = encode_body(SEED_TASK, "json")
    headers = callback_headers(SEED_TASK["task_id"], 1, int(time.time()), old, body, content_type)
    standardwebhooks.Webhook(old).verify(body, headers, json_parse=False)


def test_new_secrets_are_whsec_and_the_base64_of_32_random_bytes() -> None:
    secret = new_callback_secret()
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret)
    assert len(callback_signing_key(secret)) == 32
    assert secret != new_callback_secret()


def test_the_readme_receiver_verifies_our_signature_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver = example_receiver()
    body, content_type = encode_body(SEED_TASK, "form")
    headers = callback_headers(SEED_TASK["task_id"], 1, 1700000000, SECRET, body, content_type)
    monkeypatch.setattr(receiver.time, "time", lambda: 1700000100.0)
    assert receiver.verify_callback(SECRET, headers, body)
    assert not receiver.verify_callback(new_callback_secret(), headers, body)
    assert not receiver.verify_callback(SECRET, headers, body + b"&extra=1")
    assert not receiver.verify_callback(
        SECRET, {**headers, "webhook-timestamp": "1700000001"}, body
    )
    assert not receiver.verify_callback(SECRET, {**headers, "webhook-id": "other"}, body)
    monkeypatch.setattr(receiver.time, "time", lambda: 1700000000.0 + 301)
    assert not receiver.verify_callback(SECRET, headers, body)  # too old: a replay


@pytest.mark.parametrize(
    "timestamp",
    [
        "x",
        "",
        "1700000000.5",
        "-1700000000",
        "1" * 40,
        "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",  # Arabic-Indic digits
        "\uff11\uff17\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10",  # fullwidth digits
        "\u00b9\u2077",  # superscripts, which str.isdigit() accepts
    ],
)
def test_the_readme_receiver_says_no_to_a_malformed_timestamp_without_raising(
    timestamp: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = example_receiver()
    body, content_type = encode_body(SEED_TASK, "form")
    headers = callback_headers(SEED_TASK["task_id"], 1, 1700000000, SECRET, body, content_type)
    monkeypatch.setattr(receiver.time, "time", lambda: 1700000000.0)
    assert (
        receiver.verify_callback(SECRET, {**headers, "webhook-timestamp": timestamp}, body) is False
    )


def test_the_callbacks_page_shows_the_receivers_verify_function_verbatim() -> None:
    page = (ROOT / "docs/user-guide/callbacks.md").read_text(encoding="utf-8")
    source = EXAMPLE_RECEIVER.read_text(encoding="utf-8")
    start = source.index("# --- verify_callback (shown in docs/user-guide/callbacks.md) ---\n")
    end = source.index("# --- end of verify_callback ---")
    shown = source[start:end].split("\n", 1)[1].strip()
    assert f"```python\n{shown}\n```" in page
