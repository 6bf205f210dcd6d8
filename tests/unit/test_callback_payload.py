"""The callback body and signature (API.md section 7), without I/O."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from humantask_notifier.payload import (
    callback_headers,
    callback_object,
    encode_body,
    encode_form,
    form_fields,
    signature,
)
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
        "task": SEED_TASK, "response": SEED_TASK["response"], "task_id": SEED_TASK["task_id"]
    }
    assert callback_object(SEED_TASK) == json.loads(body)


@pytest.mark.parametrize(("value", "expected"), [
    ({"a": None}, [("a", "")]),
    ({"a": True, "b": False}, [("a", "true"), ("b", "false")]),
    ({"n": 3, "x": 1.5}, [("n", "3"), ("x", "1.5")]),
    ({"a": [], "b": {}}, []),
    ({"a": [[1, 2], {"k": "v"}]}, [("a[0][0]", "1"), ("a[0][1]", "2"), ("a[1][k]", "v")]),
])
def test_scalars_become_strings(value: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert list(form_fields(value)) == expected


def test_reserved_characters_are_escaped_and_come_back() -> None:
    value = {"task": {"instruction": "a&b=c d+é?", "metadata": {"k y": "1%"}}}
    body = encode_form(value)
    assert b" " not in body and b"&b=" not in body
    assert example_receiver().decode_form(body) == value


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b"task_id=abc"
    expected = hmac.new(b"whsec_test", b"1700000000.task_id=abc", hashlib.sha256).hexdigest()
    assert signature("whsec_test", 1700000000, body) == f"v1={expected}"


def test_headers_carry_task_attempt_timestamp_and_signature() -> None:
    body, content_type = encode_body(SEED_TASK, "form")
    headers = callback_headers(SEED_TASK["task_id"], 2, 1700000000, "whsec_x", body, content_type)
    assert headers == {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Callback-Task-Id": SEED_TASK["task_id"],
        "X-Callback-Attempt": "2",
        "X-Callback-Timestamp": "1700000000",
        "X-Callback-Signature": signature("whsec_x", 1700000000, body),
    }


def test_the_readme_receiver_verifies_our_signature_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver = example_receiver()
    body, content_type = encode_body(SEED_TASK, "form")
    headers = callback_headers(SEED_TASK["task_id"], 1, 1700000000, "whsec_x", body, content_type)
    monkeypatch.setattr(receiver.time, "time", lambda: 1700000100.0)
    assert receiver.verify_callback("whsec_x", headers, body)
    assert not receiver.verify_callback("whsec_y", headers, body)
    assert not receiver.verify_callback("whsec_x", headers, body + b"&extra=1")
    assert not receiver.verify_callback("whsec_x", {**headers, "X-Callback-Timestamp": "1700000001"}, body)
    monkeypatch.setattr(receiver.time, "time", lambda: 1700000000.0 + 301)
    assert not receiver.verify_callback("whsec_x", headers, body)  # too old: a replay


def test_the_readme_shows_the_receivers_verify_function_verbatim() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    source = EXAMPLE_RECEIVER.read_text(encoding="utf-8")
    start = source.index("# --- verify_callback (shown in the README) ---\n")
    end = source.index("# --- end of verify_callback ---")
    shown = source[start:end].split("\n", 1)[1].strip()
    assert f"```python\n{shown}\n```" in readme
