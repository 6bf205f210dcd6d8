"""The gateway reading what customers send: form and JSON bodies, the 400 messages, and
HTTP Basic credentials. No I/O."""

from __future__ import annotations

import base64
import random
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp.test_utils import make_mocked_request
from pydantic import ValidationError

from humantask_gateway.auth import MAX_CREDENTIAL_LENGTH, Authenticator, credential_from_header
from humantask_gateway.bodies import (
    describe_validation_error,
    form_pairs,
    parse_form,
    parse_json_object,
    validate,
)
from humantask_shared.core.credentials import credential_hash
from humantask_shared.core.errors import InvalidRequest, Unauthorized
from humantask_shared.core.messages.base import Command
from humantask_shared.core.messages.commands import Authenticate, Principal
from humantask_shared.core.models import CreateTaskRequest, TaskListQuery
from tests.support.fake_boundary import OnlyTaskStore

SEED_FORM = (
    b"callback_url=http%3A%2F%2Fwww.example.com%2Fcallback"
    b"&instruction=Is+this+company+public+or+private%3F"
    b"&attachment_type=website"
    b"&attachment=http%3A%2F%2Fwww.google.com%2F"
    b"&categories%5B%5D=public&categories%5B%5D=private"
)


# -- parse_form ------------------------------------------------------------------------


def test_the_seed_curl_form_parses_into_a_valid_request() -> None:
    fields = parse_form(SEED_FORM)
    assert fields == {
        "callback_url": "http://www.example.com/callback",
        "instruction": "Is this company public or private?",
        "attachment_type": "website",
        "attachment": "http://www.google.com/",
        "categories": ["public", "private"],
    }
    assert validate(CreateTaskRequest, fields).categories == ["public", "private"]


def test_unescaped_brackets_work_too() -> None:
    assert parse_form(b"categories[]=a&categories[]=b")["categories"] == ["a", "b"]


def test_repeated_plain_categories_and_mixed_forms_collect_in_order() -> None:
    assert parse_form(b"categories=a&categories=b")["categories"] == ["a", "b"]
    assert parse_form(b"categories=a&categories[]=b&categories=c")["categories"] == ["a", "b", "c"]


def test_a_single_category_is_still_a_list() -> None:
    # ...so that validation says "at least 2 items", not "not a list".
    fields = parse_form(b"categories=only")
    assert fields["categories"] == ["only"]
    with pytest.raises(InvalidRequest, match=r"^categories: .*at least 2"):
        validate(CreateTaskRequest, {**parse_form(SEED_FORM), **fields})


def test_other_repeated_fields_keep_the_last_value() -> None:
    assert parse_form(b"instruction=first&instruction=second")["instruction"] == "second"


@pytest.mark.parametrize("body", [b"metadata=%7B%7D", b"metadata[]=x", b"instruction=x&metadata="])
def test_metadata_is_rejected_in_a_form(body: bytes) -> None:
    with pytest.raises(InvalidRequest, match=r"^metadata: only accepted in a JSON body"):
        parse_form(body)


@pytest.mark.parametrize("name", ["instruction", "callback_url", "unique_id", "attachment"])
def test_array_syntax_on_a_scalar_field_is_rejected(name: str) -> None:
    with pytest.raises(InvalidRequest, match=rf"^{name}: must be a single value"):
        parse_form(f"{name}[]=x".encode())


@pytest.mark.parametrize(
    "body",
    [
        b"instruction=%ff%fe",  # percent-encoded bytes that are not UTF-8
        b"instruction=\xff\xfe",  # raw bytes that are not UTF-8
        b"caf%C3=x",  # a truncated sequence in a name
    ],
)
def test_invalid_utf8_in_a_form_is_invalid_request(body: bytes) -> None:
    with pytest.raises(InvalidRequest, match="UTF-8"):
        parse_form(body)


def test_plus_and_percent_escapes_decode() -> None:
    fields = parse_form(b"instruction=big+or%20small%3F&attachment=a%2Bb&unique_id=caf%C3%A9")
    assert fields["instruction"] == "big or small?"
    assert fields["attachment"] == "a+b"
    assert fields["unique_id"] == "café"


def test_blank_values_are_kept_so_validation_can_name_them() -> None:
    fields = parse_form(SEED_FORM + b"&instruction=")
    assert fields["instruction"] == ""
    with pytest.raises(InvalidRequest, match=r"^instruction: must not be empty"):
        validate(CreateTaskRequest, fields)


def test_an_empty_form_is_no_fields() -> None:
    assert parse_form(b"") == {}


# -- parse_json_object -----------------------------------------------------------------


def test_a_json_object_parses() -> None:
    assert parse_json_object(b'{"a": [1, {"b": null}], "c": "\\u00e9"}') == {
        "a": [1, {"b": None}],
        "c": "é",
    }


@pytest.mark.parametrize("body", [b"[]", b'["a", "b"]', b'"text"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_rejected(body: bytes) -> None:
    with pytest.raises(InvalidRequest, match=r"^body: must be a JSON object$"):
        parse_json_object(body)


@pytest.mark.parametrize(
    "body", [b'{"callback_url": ', b"{", b"{'a': 1}", b'{"a": 1,}', b"", b"NaN", b"{} {}"]
)
def test_malformed_json_is_rejected(body: bytes) -> None:
    with pytest.raises(InvalidRequest, match=r"^body: malformed JSON"):
        parse_json_object(body)


@pytest.mark.parametrize(
    "body", [b'{"instruction": "\xff\xfe"}', b'{"a": "\xed\xa0\x80"}', b"\xef\xbb\xbf\xff"]
)
def test_invalid_utf8_json_is_rejected(body: bytes) -> None:
    with pytest.raises(InvalidRequest, match=r"^body: "):
        parse_json_object(body)


@pytest.mark.parametrize("depth", [2000, 100_000])
def test_absurdly_nested_json_is_rejected_not_a_crash(depth: int) -> None:
    with pytest.raises(InvalidRequest, match=r"^body: malformed JSON"):
        parse_json_object(b'{"a": ' + b"[" * depth + b"]" * depth + b"}")


def test_nested_json_that_parses_still_earns_a_400_for_deep_metadata() -> None:
    # Deep enough to parse, too deep for metadata: a 400 naming metadata, never a 500.
    body = b'{"metadata": {"a": ' + b"[" * 300 + b"]" * 300 + b"}}"
    fields = parse_json_object(body)
    with pytest.raises(InvalidRequest, match=r"^metadata: "):
        validate(CreateTaskRequest, {**parse_form(SEED_FORM), **fields})


# -- describe_validation_error and validate --------------------------------------------


def validation_error(model: type, fields: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        model.model_validate(fields)
    return info.value


def test_a_missing_field_is_required() -> None:
    fields = parse_form(SEED_FORM)
    del fields["callback_url"]
    message = describe_validation_error(validation_error(CreateTaskRequest, fields))
    assert message == "callback_url: is required"


def test_the_message_names_the_field_and_drops_pydantics_prefix() -> None:
    fields = {**parse_form(SEED_FORM), "callback_url": "ftp://x"}
    message = describe_validation_error(validation_error(CreateTaskRequest, fields))
    assert message == "callback_url: must be an absolute http or https URL"


def test_a_nested_field_is_named_with_its_path() -> None:
    fields = {**parse_form(SEED_FORM), "categories": ["big", 2]}
    message = describe_validation_error(validation_error(CreateTaskRequest, fields))
    assert message.startswith("categories.1: ")


def test_a_model_level_error_names_the_field_itself() -> None:
    fields = {**parse_form(SEED_FORM), "attachment": "not a url"}
    message = describe_validation_error(validation_error(CreateTaskRequest, fields))
    assert (
        message
        == "attachment: must be an absolute http or https URL when attachment_type is website"
    )


def test_an_empty_body_names_the_first_missing_field() -> None:
    assert (
        describe_validation_error(validation_error(CreateTaskRequest, {}))
        == "callback_url: is required"
    )


def test_validate_raises_invalid_request_with_the_description() -> None:
    with pytest.raises(InvalidRequest) as info:
        validate(TaskListQuery, {"limit": "0"})
    assert info.value.message.startswith("limit: ")
    assert validate(TaskListQuery, {"limit": "5"}).limit == 5


# -- credential_from_header ------------------------------------------------------------


def basic(userinfo: str | bytes) -> str:
    raw = userinfo.encode() if isinstance(userinfo, str) else userinfo
    return "Basic " + base64.b64encode(raw).decode()


def test_the_username_is_the_credential_and_the_password_is_ignored() -> None:
    assert credential_from_header(basic("live_key:")) == "live_key"
    assert credential_from_header(basic("live_key:secret")) == "live_key"
    assert credential_from_header(basic("live_key")) == "live_key"


def test_a_colon_in_the_password_does_not_leak_into_the_username() -> None:
    assert credential_from_header(basic("live_key:pass:with:colons")) == "live_key"


def test_the_scheme_is_case_insensitive_and_padding_spaces_are_tolerated() -> None:
    token = base64.b64encode(b"live_key:").decode()
    assert credential_from_header(f"basic {token}") == "live_key"
    assert credential_from_header(f"BASIC {token}  ") == "live_key"


def test_a_unicode_username_is_read_as_utf8() -> None:
    assert credential_from_header(basic("clé:")) == "clé"


@pytest.mark.parametrize("header", [None, ""])
def test_missing_credentials(header: str | None) -> None:
    with pytest.raises(Unauthorized, match="missing credentials"):
        credential_from_header(header)


@pytest.mark.parametrize(
    "header", ["Bearer abc", "Digest username=x", "Basic", "Basic ", "Basic    ", "live_key"]
)
def test_other_schemes_and_empty_basic_are_unauthorized(header: str) -> None:
    with pytest.raises(Unauthorized, match="HTTP Basic"):
        credential_from_header(header)


@pytest.mark.parametrize(
    "header", ["Basic !!!notbase64", "Basic bGl2ZV9rZXk", "Basic a", "Basic bGl2 ZV9r"]
)
def test_malformed_base64_is_unauthorized(header: str) -> None:
    with pytest.raises(Unauthorized, match="malformed"):
        credential_from_header(header)


def test_a_username_that_is_not_utf8_is_unauthorized() -> None:
    with pytest.raises(Unauthorized, match="malformed"):
        credential_from_header(basic(b"\xff\xfe:"))


@pytest.mark.parametrize("userinfo", [":", ":live_key", ":password", ""])
def test_an_empty_username_is_unauthorized(userinfo: str) -> None:
    header = basic(userinfo) if userinfo else "Basic " + base64.b64encode(b"").decode()
    with pytest.raises(Unauthorized):
        credential_from_header(header)


def test_an_absurdly_long_username_is_unauthorized() -> None:
    assert (
        credential_from_header(basic("k" * MAX_CREDENTIAL_LENGTH + ":"))
        == "k" * MAX_CREDENTIAL_LENGTH
    )
    with pytest.raises(Unauthorized):
        credential_from_header(basic("k" * (MAX_CREDENTIAL_LENGTH + 1) + ":"))


# -- Authenticator: what it asks the task-store, and what it remembers ------------------


class FakeTaskStore:
    """Answers Authenticate like the task-store would, and counts what it was asked."""

    def __init__(self, known: dict[tuple[str, str], str]) -> None:
        self.known = known
        self.asked: list[Authenticate] = []

    async def send(self, command: Command[Any]) -> Any:
        assert isinstance(command, Authenticate)
        self.asked.append(command)
        principal_id = self.known.get((command.credential_hash, command.role))
        if principal_id is None:
            raise Unauthorized("invalid credentials")
        return Principal(principal_id=principal_id, role=command.role)


def request_with(userinfo: str) -> Any:
    return make_mocked_request("GET", "/v1/tasks", headers={"Authorization": basic(userinfo)})


async def test_the_authenticator_sends_only_the_hash_and_caches_the_answer() -> None:
    store = FakeTaskStore({(credential_hash("live_key"), "customer"): "c1"})
    auth = Authenticator(OnlyTaskStore(store), cache_seconds=300)  # type: ignore[arg-type]

    first = await auth.authenticate(request_with("live_key:"), "customer")
    second = await auth.authenticate(request_with("live_key:ignored"), "customer")

    assert first == second == Principal(principal_id="c1", role="customer")
    assert len(store.asked) == 1
    assert store.asked[0].credential_hash == credential_hash("live_key")
    assert "live_key" not in store.asked[0].model_dump_json()


async def test_a_cached_customer_key_is_not_a_worker_token() -> None:
    store = FakeTaskStore({(credential_hash("live_key"), "customer"): "c1"})
    auth = Authenticator(OnlyTaskStore(store), cache_seconds=300)  # type: ignore[arg-type]
    await auth.authenticate(request_with("live_key:"), "customer")

    with pytest.raises(Unauthorized):
        await auth.authenticate(request_with("live_key:"), "worker")
    assert [c.role for c in store.asked] == ["customer", "worker"]


async def test_a_rejected_key_is_not_cached_and_an_expired_entry_is_looked_up_again() -> None:
    store = FakeTaskStore({})
    auth = Authenticator(OnlyTaskStore(store), cache_seconds=0)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await auth.authenticate(request_with("live_unknown:"), "customer")
    assert len(store.asked) == 2

    store.known[(credential_hash("live_unknown"), "customer")] = "c2"
    assert (await auth.authenticate(request_with("live_unknown:"), "customer")).principal_id == "c2"
    assert (await auth.authenticate(request_with("live_unknown:"), "customer")).principal_id == "c2"
    assert len(store.asked) == 4  # cache_seconds=0: every call asks again


async def test_the_header_is_checked_before_the_task_store_is_asked() -> None:
    store = FakeTaskStore({})
    auth = Authenticator(OnlyTaskStore(store), cache_seconds=300)  # type: ignore[arg-type]
    request = make_mocked_request("GET", "/v1/tasks", headers={"Authorization": "Bearer x"})
    with pytest.raises(Unauthorized):
        await auth.authenticate(request, "customer")
    assert store.asked == []


# -- the form decoder reads what urllib's parse_qsl reads -----------------------------------

FORM_PIECES = [
    "a", "b", "=", "&", "%", "+", "2F", "zz", "%F0%9F%98%80", "é", "\\", "\\x41", "%5C",
    "%e9", "%C3%A9", "1", ";", "%%", "%2", "%g0", "\n", "%00", "\\N{BULLET}", "%5Cx41",
]  # fmt: skip


def _parse_qsl(body: bytes) -> list[tuple[str, str]] | str:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return "not UTF-8"


def _form_pairs(body: bytes) -> list[tuple[str, str]] | str:
    try:
        return form_pairs(body)
    except UnicodeDecodeError:
        return "not UTF-8"


def test_form_pairs_reads_what_parse_qsl_reads() -> None:
    generator = random.Random(23)
    for _ in range(20_000):
        body = "".join(generator.choices(FORM_PIECES, k=generator.randint(0, 12))).encode()
        assert _form_pairs(body) == _parse_qsl(body), body
