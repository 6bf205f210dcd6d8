"""The shared models: what a customer may send (docs/reference/contract.md §5), what a task
looks like (§4), timestamps, and credentials. No I/O."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from humantask_shared.core.credentials import (
    credential_hash,
    new_api_key,
    new_callback_secret,
    new_worker_token,
)
from humantask_shared.core.models import (
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    CreateTaskRequest,
    Task,
    TaskListQuery,
    TaskParams,
    TaskResponse,
    is_http_url,
)
from humantask_shared.core.timeutil import as_utc, format_timestamp, parse_timestamp, utcnow

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

VALID: dict[str, Any] = {
    "callback_url": "http://www.example.com/test_callback",
    "instruction": "Would you say this item is big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}


def make(**overrides: Any) -> CreateTaskRequest:
    fields = {**VALID, **overrides}
    return CreateTaskRequest.model_validate({k: v for k, v in fields.items() if v is not ...})


def error_fields(exc: ValidationError) -> list[str]:
    """The first element of each error's location; '' for model-level errors."""
    return [str(error["loc"][0]) if error["loc"] else "" for error in exc.errors()]


def rejected(**overrides: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        make(**overrides)
    return info.value


def nested_dict(depth: int) -> dict[str, Any]:
    """A dict `depth` objects deep: nested_dict(1) == {}."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


# -- CreateTaskRequest -------------------------------------------------------------------


def test_the_seed_request_is_valid_with_defaults() -> None:
    request = make()
    assert request.callback_format == "form"
    assert request.metadata is None
    assert request.unique_id is None
    assert request.categories == ["big", "small"]


def test_unknown_fields_are_ignored() -> None:
    request = make(priority=30, customer_id="someone-else")
    assert not hasattr(request, "priority")
    assert "customer_id" not in request.model_dump()


@pytest.mark.parametrize(
    "field", ["callback_url", "instruction", "attachment_type", "attachment", "categories"]
)
def test_each_required_field_is_required(field: str) -> None:
    exc = rejected(**{field: ...})
    assert error_fields(exc) == [field]
    assert exc.errors()[0]["type"] == "missing"


@pytest.mark.parametrize(
    "url",
    [
        "http://www.example.com/callback",
        "https://example.com",
        "HTTPS://EXAMPLE.COM/x?y=1#z",
        "http://127.0.0.1:8080/cb",
        "http://[::1]:9000/cb",
        "https://user:pw@example.com:443/path",
    ],
)
def test_callback_url_accepts_absolute_http_urls(url: str) -> None:
    assert make(callback_url=url).callback_url == url


@pytest.mark.parametrize(
    "url",
    [
        "/callback",  # relative
        "www.example.com/callback",  # no scheme
        "ftp://example.com/x",  # wrong scheme
        "javascript:alert(1)",
        "file:///etc/passwd",
        "http://",  # no host
        "http:///path",  # no host
        "http://exa mple.com/",  # whitespace inside
        " http://example.com/",  # leading whitespace
        "http://example.com/\n",  # trailing newline
        "http://example.com/\tx",
        "http://example.com:99999/",  # port out of range
        "http://example.com:-1/",
        "http://example.com:port/",  # port not a number
        "http://[::1/",  # broken IPv6 literal
        "http://example.com/" + "x" * 2048,  # too long
        "",
    ],
)
def test_callback_url_rejects_what_is_not_an_absolute_http_url(url: str) -> None:
    exc = rejected(callback_url=url)
    assert error_fields(exc) == ["callback_url"]
    assert not is_http_url(url)


@pytest.mark.parametrize(
    "value", [42, None, ["http://example.com/"], {"url": "http://example.com"}]
)
def test_callback_url_must_be_a_string(value: Any) -> None:
    assert error_fields(rejected(callback_url=value)) == ["callback_url"]


@pytest.mark.parametrize("instruction", ["", " ", "\n\t "])
def test_instruction_must_not_be_blank(instruction: str) -> None:
    exc = rejected(instruction=instruction)
    assert error_fields(exc) == ["instruction"]
    assert "must not be empty" in str(exc)


def test_instruction_is_not_coerced_from_a_number() -> None:
    assert error_fields(rejected(instruction=42)) == ["instruction"]


@pytest.mark.parametrize("attachment_type", ["text", "image", "video", "audio", "website"])
def test_every_attachment_type_is_accepted(attachment_type: str) -> None:
    made = make(attachment_type=attachment_type, attachment="https://example.com/a.png")
    assert made.attachment_type == attachment_type


@pytest.mark.parametrize("attachment_type", ["pdf", "Text", "", None, 1])
def test_unknown_attachment_types_are_rejected(attachment_type: Any) -> None:
    assert error_fields(rejected(attachment_type=attachment_type)) == ["attachment_type"]


@pytest.mark.parametrize("attachment_type", ["image", "video", "audio", "website"])
def test_non_text_attachments_must_be_http_urls(attachment_type: str) -> None:
    for attachment in ("car", "/img.png", "ftp://example.com/a.png", "http://exa mple.com/a.png"):
        exc = rejected(attachment_type=attachment_type, attachment=attachment)
        # A model-level error: no location, the message names the field itself.
        assert error_fields(exc) == [""]
        message = exc.errors()[0]["msg"]
        assert "attachment:" in message and attachment_type in message
    assert make(attachment_type=attachment_type, attachment="http://example.com/a").attachment


@pytest.mark.parametrize("attachment", ["car", "not a url at all", "ftp://whatever", "  padded  "])
def test_text_attachments_need_not_be_urls(attachment: str) -> None:
    assert make(attachment_type="text", attachment=attachment).attachment == attachment


@pytest.mark.parametrize("attachment", ["", "   "])
def test_attachment_must_not_be_blank(attachment: str) -> None:
    assert "attachment" in error_fields(rejected(attachment=attachment))


@pytest.mark.parametrize(
    "categories",
    [
        [],
        ["big"],
        ["big", "big"],  # not distinct
        ["big", "small", "big"],
        ["big", ""],  # empty
        ["big", "   "],  # blank
        ["big", 2],  # not a string
        ["big", None],
        "big,small",  # not a list
        {"a": "big", "b": "small"},
    ],
)
def test_categories_need_two_distinct_non_empty_strings(categories: Any) -> None:
    exc = rejected(categories=categories)
    assert set(error_fields(exc)) == {"categories"}


def test_categories_keep_their_order() -> None:
    assert make(categories=["small", "big", "medium"]).categories == ["small", "big", "medium"]


def test_metadata_up_to_16_kib_is_accepted_and_one_byte_more_is_not() -> None:
    overhead = len(orjson.dumps({"x": ""}))
    at_limit = {"x": "y" * (MAX_METADATA_BYTES - overhead)}
    assert len(orjson.dumps(at_limit)) == MAX_METADATA_BYTES
    assert make(metadata=at_limit).metadata == at_limit

    over = {"x": "y" * (MAX_METADATA_BYTES - overhead + 1)}
    exc = rejected(metadata=over)
    assert error_fields(exc) == ["metadata"]
    assert str(MAX_METADATA_BYTES) in exc.errors()[0]["msg"]


def test_metadata_size_counts_encoded_bytes_not_characters() -> None:
    # 'é' is two bytes in UTF-8: 9000 of them are 18000 bytes, over the limit.
    assert error_fields(rejected(metadata={"x": "é" * 9000})) == ["metadata"]


@pytest.mark.parametrize("metadata", [[1, 2], "text", 3, True])
def test_metadata_must_be_an_object(metadata: Any) -> None:
    assert error_fields(rejected(metadata=metadata)) == ["metadata"]


def test_metadata_with_any_json_keys_and_values_is_kept_as_given() -> None:
    metadata = {"odd.key": {"$weird": [1, 2.5, None, True, {"x": "é"}]}, "": ""}
    assert make(metadata=metadata).metadata == metadata


def test_metadata_nested_to_the_limit_is_accepted() -> None:
    metadata = nested_dict(MAX_METADATA_DEPTH)
    assert make(metadata=metadata).metadata == metadata


@pytest.mark.parametrize("depth", [MAX_METADATA_DEPTH + 1, 200, 253, 254, 255, 256, 1000])
def test_deeply_nested_metadata_is_a_validation_error_not_a_crash(depth: int) -> None:
    # orjson cannot write past 255 levels and raises a TypeError (JSONEncodeError),
    # which pydantic does not turn into a ValidationError: it used to escape as a 500.
    # Short of that, a task nested ~250 deep could be created but never listed (the
    # page around it is deeper still): so metadata has a depth limit of its own.
    exc = rejected(metadata=nested_dict(depth))
    assert error_fields(exc) == ["metadata"]
    assert "nested" in exc.errors()[0]["msg"]


def test_deeply_nested_lists_in_metadata_are_a_validation_error() -> None:
    value: Any = []
    for _ in range(300):
        value = [value]
    assert error_fields(rejected(metadata={"a": value})) == ["metadata"]


def test_metadata_that_json_cannot_represent_is_a_validation_error() -> None:
    # Not reachable through a JSON body, but a Python caller must get a 400, not a crash.
    assert error_fields(rejected(metadata={"big": 10**30})) == ["metadata"]


def test_unique_id_must_be_a_non_empty_string_of_at_most_256_characters() -> None:
    assert make(unique_id="order-1").unique_id == "order-1"
    assert make(unique_id="x" * 256).unique_id == "x" * 256
    for bad in ("", "  ", "x" * 257, 7):
        assert error_fields(rejected(unique_id=bad)) == ["unique_id"], bad


@pytest.mark.parametrize(("given", "expected"), [("form", "form"), ("json", "json")])
def test_callback_format(given: str, expected: str) -> None:
    assert make(callback_format=given).callback_format == expected


@pytest.mark.parametrize("bad", ["xml", "JSON", "", None])
def test_unknown_callback_formats_are_rejected(bad: Any) -> None:
    assert error_fields(rejected(callback_format=bad)) == ["callback_format"]


def test_requests_are_immutable() -> None:
    request = make()
    with pytest.raises(ValidationError):
        request.instruction = "changed"  # type: ignore[misc]


# -- TaskListQuery -----------------------------------------------------------------------


def test_list_query_defaults_and_bounds() -> None:
    query = TaskListQuery()
    assert (query.limit, query.offset) == (100, 0)
    assert TaskListQuery.model_validate({"limit": "1", "offset": "7"}).limit == 1
    for bad in ({"limit": "0"}, {"limit": "101"}, {"offset": "-1"}, {"limit": "1.5"}):
        with pytest.raises(ValidationError):
            TaskListQuery.model_validate(bad)


# -- Task ------------------------------------------------------------------------------


def task(**overrides: Any) -> Task:
    fields: dict[str, Any] = {
        "task_id": "0123456789abcdef01234567",
        "created_at": datetime(2016, 6, 23, 9, 9, 34, 752000, tzinfo=UTC),
        "callback_url": "http://www.example.com/callback",
        "status": "pending",
        "instruction": "Is this company public or private?",
        "params": TaskParams(
            attachment_type="website",
            attachment="http://www.google.com/",
            categories=["public", "private"],
        ),
    }
    return Task(**{**fields, **overrides})


def test_a_pending_task_has_exactly_the_seed_fields() -> None:
    body = task().to_json_dict()
    assert body == {
        "task_id": "0123456789abcdef01234567",
        "created_at": "2016-06-23T09:09:34.752Z",
        "callback_url": "http://www.example.com/callback",
        "type": "categorization",
        "status": "pending",
        "instruction": "Is this company public or private?",
        "params": {
            "attachment_type": "website",
            "attachment": "http://www.google.com/",
            "categories": ["public", "private"],
        },
    }


def test_a_completed_task_has_its_response_and_completed_at() -> None:
    completed = task(
        status="completed",
        completed_at=datetime(2016, 6, 23, 9, 10, 2, 1000, tzinfo=UTC),
        response=TaskResponse(category="public"),
    ).to_json_dict()
    assert completed["completed_at"] == "2016-06-23T09:10:02.001Z"
    assert completed["response"] == {"category": "public", "status_code": 200}
    assert "canceled_at" not in completed


def test_extras_appear_only_when_they_apply() -> None:
    with_extras = task(
        metadata={"a": None},
        unique_id="u-1",
        status="canceled",
        canceled_at=datetime(2020, 1, 1, tzinfo=UTC),
    ).to_json_dict()
    # A None inside the customer's metadata is the customer's: kept.
    assert with_extras["metadata"] == {"a": None}
    assert with_extras["unique_id"] == "u-1"
    assert with_extras["canceled_at"] == "2020-01-01T00:00:00.000Z"
    assert not {"completed_at", "response"} & set(with_extras)


def test_task_json_uses_the_seed_timestamp_format_whatever_the_input_zone() -> None:
    plus_two = timezone(timedelta(hours=2))
    body = task(created_at=datetime(2016, 6, 23, 11, 9, 34, 752999, tzinfo=plus_two)).to_json_dict()
    assert body["created_at"] == "2016-06-23T09:09:34.752Z"
    naive = task(created_at=datetime(2016, 6, 23, 9, 9, 34)).to_json_dict()
    assert naive["created_at"] == "2016-06-23T09:09:34.000Z"
    assert TIMESTAMP.match(orjson.loads(task().model_dump_json())["created_at"])


def test_task_json_round_trips() -> None:
    original = task(metadata={"k": [1, "two"]}, unique_id="u")
    assert Task.model_validate(original.to_json_dict()) == original


# -- timeutil ----------------------------------------------------------------------------


def test_format_timestamp_truncates_to_milliseconds() -> None:
    moment = datetime(2016, 6, 23, 9, 9, 34, 752999, tzinfo=UTC)
    assert format_timestamp(moment) == "2016-06-23T09:09:34.752Z"
    assert format_timestamp(moment.replace(microsecond=0)) == "2016-06-23T09:09:34.000Z"
    assert format_timestamp(moment.replace(microsecond=999)) == "2016-06-23T09:09:34.000Z"


def test_format_timestamp_takes_naive_as_utc_and_converts_offsets() -> None:
    assert format_timestamp(datetime(2020, 2, 29, 23, 59, 59)) == "2020-02-29T23:59:59.000Z"
    minus_five = timezone(timedelta(hours=-5))
    assert (
        format_timestamp(datetime(2020, 2, 29, 20, 0, tzinfo=minus_five))
        == "2020-03-01T01:00:00.000Z"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-06-23T09:09:34.752Z", datetime(2016, 6, 23, 9, 9, 34, 752000, tzinfo=UTC)),
        ("2016-06-23T09:09:34.752", datetime(2016, 6, 23, 9, 9, 34, 752000, tzinfo=UTC)),
        ("2016-06-23T11:09:34+02:00", datetime(2016, 6, 23, 9, 9, 34, tzinfo=UTC)),
        ("2016-06-23T04:09:34-05:00", datetime(2016, 6, 23, 9, 9, 34, tzinfo=UTC)),
        ("2016-06-23", datetime(2016, 6, 23, tzinfo=UTC)),
        ("  2016-06-23T09:09:34Z\n", datetime(2016, 6, 23, 9, 9, 34, tzinfo=UTC)),
    ],
)
def test_parse_timestamp(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["yesterday", "2016-13-45", "", "2016-06-23T25:00:00Z"])
def test_parse_timestamp_rejects_what_is_not_iso_8601(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_format_then_parse_round_trips() -> None:
    now = utcnow()
    assert parse_timestamp(format_timestamp(now)) == now


def test_utcnow_is_aware_utc_with_millisecond_precision() -> None:
    now = utcnow()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert now.microsecond % 1000 == 0
    assert abs(datetime.now(UTC) - now) < timedelta(seconds=5)


def test_as_utc() -> None:
    naive = datetime(2020, 1, 1, 12, 0)
    assert as_utc(naive) == datetime(2020, 1, 1, 12, 0, tzinfo=UTC)
    assert as_utc(naive).tzinfo is UTC
    tokyo = datetime(2020, 1, 1, 21, 0, tzinfo=timezone(timedelta(hours=9)))
    converted = as_utc(tokyo)
    assert converted == tokyo and converted.hour == 12 and converted.utcoffset() == timedelta(0)


# -- credentials -----------------------------------------------------------------------


def test_credential_hash_is_the_sha256_hex_digest() -> None:
    # FIPS 180-2 test vector.
    assert (
        credential_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    key = "live_0123456789abcdef0123456789abcdef"
    assert credential_hash(key) == hashlib.sha256(key.encode()).hexdigest()
    assert credential_hash("clé") == hashlib.sha256("clé".encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", credential_hash(new_api_key()))


def test_different_credentials_have_different_hashes() -> None:
    assert credential_hash("live_a") != credential_hash("live_b")
    assert credential_hash("") != credential_hash(" ")


@pytest.mark.parametrize(
    ("make_secret", "pattern"),
    [
        (new_api_key, r"live_[0-9a-f]{32}"),
        (new_worker_token, r"worker_[0-9a-f]{32}"),
        # Standard Webhooks: whsec_ and the base64 of 32 random bytes.
        (new_callback_secret, r"whsec_[A-Za-z0-9+/]{43}="),
    ],
)
def test_new_secrets_have_their_prefix_and_are_random(make_secret: Any, pattern: str) -> None:
    secrets = {make_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert re.fullmatch(pattern, secret), secret


# -- Limits of docs/reference/contract.md §4-5 -----------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://bücher.example/cb",  # IDNA
        "http://例え.テスト/cb",
        "http://１２７．０．０．１/cb",  # valid IDNA (UTS 46 maps it); refused when sent
        "http://xn--bcher-kva.example/cb",
        "http://example.com/" + "x" * (2048 - len("http://example.com/")),  # exactly 2,048
    ],
)
def test_callback_url_accepts_ascii_and_idna_hosts_up_to_2048_characters(url: str) -> None:
    assert make(callback_url=url).callback_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://☃.example/cb",  # not IDNA 2008
        "http://١٢٧.٠.٠.١/cb",  # bidi rule
        "http://exa\u200bmple.com/cb",  # zero-width space
        "http://a\x00b.com/cb",
        "http://example.com/" + "x" * (2049 - len("http://example.com/")),
    ],
)
def test_callback_url_refuses_hosts_that_can_never_be_sent_to(url: str) -> None:
    assert error_fields(rejected(callback_url=url)) == ["callback_url"]


def test_text_fields_have_their_limits() -> None:
    assert make(instruction="i" * 10_000).instruction
    assert error_fields(rejected(instruction="i" * 10_001)) == ["instruction"]
    assert make(attachment="a" * 10_000).attachment
    assert error_fields(rejected(attachment="a" * 10_001)) == ["attachment"]
    url = "http://example.com/" + "x" * (2049 - len("http://example.com/"))
    exc = rejected(attachment_type="image", attachment=url)
    assert exc.errors()[0]["msg"].startswith("Value error, attachment: must be at most 2048")
    assert make(unique_id="u" * 256).unique_id
    assert error_fields(rejected(unique_id="u" * 257)) == ["unique_id"]


def test_categories_have_their_limits() -> None:
    assert len(make(categories=[str(n) for n in range(100)]).categories) == 100
    assert error_fields(rejected(categories=[str(n) for n in range(101)])) == ["categories"]
    assert make(categories=["a", "b" * 256]).categories
    assert error_fields(rejected(categories=["a", "b" * 257])) == ["categories"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"offset": "9223372036854775808"}, "offset"),
        ({"offset": 10_001}, "offset"),
        ({"start_time": "9999-12-31T23:59:59-05:00"}, "start_time"),  # past 9999 in UTC
        ({"end_time": "0001-01-01T00:00:00+01:00"}, "end_time"),  # before year 1 in UTC
        ({"start_time": "1969-12-31T23:59:59Z"}, "start_time"),
        ({"end_time": "1970-01-01T00:30:00+01:00"}, "end_time"),
        ({"unique_id": "u" * 257}, "unique_id"),
    ],
)
def test_list_queries_out_of_range_are_refused(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        TaskListQuery.model_validate(fields)
    assert error_fields(info.value) == [field]


def test_list_query_times_are_kept_in_utc() -> None:
    query = TaskListQuery.model_validate(
        {
            "start_time": "1970-01-01T00:00:00Z",
            "end_time": "9999-12-31T23:59:59+05:00",
            "offset": 10_000,
        }
    )
    assert query.start_time == datetime(1970, 1, 1, tzinfo=UTC)
    assert query.end_time == datetime(9999, 12, 31, 18, 59, 59, tzinfo=UTC)
    naive = TaskListQuery.model_validate({"start_time": "2024-05-01T12:00:00"})
    assert naive.start_time == datetime(2024, 5, 1, 12, tzinfo=UTC)
