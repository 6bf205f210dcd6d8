"""Reading what customers send: JSON or form bodies, query strings, and the 400s they earn."""

from __future__ import annotations

import asyncio
import codecs
import re
from typing import Any

import orjson
from aiohttp import web

from humantask_shared.core.errors import InvalidRequest, RequestTimeout, UnsupportedMediaType

# Defined in core (the task-store checks input too), used by the views from here.
from humantask_shared.core.validation import describe_validation_error as describe_validation_error
from humantask_shared.core.validation import validate as validate

from .limits import BODY_DEADLINE

JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
# Form fields that are arrays; in a form they come as `name[]=a&name[]=b` or `name=a&name=b`.
FORM_ARRAY_FIELDS = frozenset({"categories"})
# Form fields a body may have: a task has at most 100 categories and a dozen other fields.
MAX_FORM_FIELDS = 256
# Form fields that only make sense as JSON.
JSON_ONLY_FIELDS = frozenset({"metadata"})
# Form fields that are numbers: a form's text becomes one when it spells one (a JSON body
# must say them as numbers); otherwise it stays text and the validation names the field.
FORM_NUMBER_FIELDS: dict[str, type[int] | type[float]] = {
    "min_workers": int,
    "max_workers": int,
    "confidence": float,
}
_INTEGER = re.compile(r"^[+-]?\d{1,6}$")
_DECIMAL = re.compile(r"^[+-]?(\d{1,6}(\.\d{0,17})?|\.\d{1,17})$")


def _form_number(name: str, value: str) -> Any:
    kind = FORM_NUMBER_FIELDS[name]
    text = value.strip()
    if _INTEGER.match(text):
        return kind(text)
    if kind is float and _DECIMAL.match(text):
        return float(text)
    return value


# A `%` that does not start an escape stands for itself (as in urllib's parse_qsl).
_NOT_AN_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def unquote_plus(raw: bytes) -> str:
    """`urllib.parse.unquote_plus` for form data, in C: percent-escapes become Python
    `\\xXX` escapes (backslashes doubled first, so no other escape exists) that the
    `unicode_escape` codec decodes. urllib's own pure-Python decoding costs about a
    quarter of a second a MiB of escapes, on the event loop; this, about 20 ms.
    Not UTF-8 once decoded: UnicodeDecodeError."""
    raw = raw.replace(b"+", b" ")
    if b"%" in raw:
        escaped = _NOT_AN_ESCAPE.sub(b"%25", raw.replace(b"\\", b"\\\\")).replace(b"%", b"\\x")
        raw = codecs.decode(escaped, "unicode_escape").encode("latin-1")
    return raw.decode("utf-8")


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    """What `parse_qsl(body, keep_blank_values=True, errors="strict")` reads, in order."""
    pairs = []
    for part in body.split(b"&"):
        if part:
            name, _, value = part.partition(b"=")
            pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


def parse_form(body: bytes, array_fields: frozenset[str] = FORM_ARRAY_FIELDS) -> dict[str, Any]:
    # Counted before parsing: the work grows with the fields, and a 1 MiB body of
    # `a=b&` is a quarter of a million of them.
    if body.count(b"&") >= MAX_FORM_FIELDS:
        raise InvalidRequest(f"body: too many form fields (at most {MAX_FORM_FIELDS})")
    try:
        pairs = form_pairs(body)
    except UnicodeDecodeError as exc:
        raise InvalidRequest("body: form data must be UTF-8") from exc
    fields: dict[str, Any] = {}
    for raw_name, value in pairs:
        name = raw_name.removesuffix("[]")
        if name in JSON_ONLY_FIELDS:
            raise InvalidRequest(f"{name}: only accepted in a JSON body")
        if name in array_fields:
            fields.setdefault(name, []).append(value)
        elif raw_name.endswith("[]"):
            raise InvalidRequest(f"{name}: must be a single value, not an array")
        elif name in FORM_NUMBER_FIELDS:
            fields[name] = _form_number(name, value)
        else:
            fields[name] = value
    return fields


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:  # also invalid UTF-8 and absurd nesting
        raise InvalidRequest(f"body: malformed JSON ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise InvalidRequest("body: must be a JSON object")
    return value


async def read_body(request: web.Request) -> bytes:
    """The body, once it has all arrived: a body still arriving at the request's
    deadline (`limits.BODY_DEADLINE`) is 408."""
    try:
        async with asyncio.timeout_at(request.get(BODY_DEADLINE)):
            return await request.read()  # aiohttp answers 413 past the app's client_max_size
    except TimeoutError as exc:
        raise RequestTimeout("request body not received in time") from exc


def parse_fields(
    request: web.Request, body: bytes, array_fields: frozenset[str] = FORM_ARRAY_FIELDS
) -> dict[str, Any]:
    """The body as a dict of fields, from JSON or a form (where `array_fields` are
    arrays); an empty body is no fields."""
    if not body:
        return {}
    if request.content_type == JSON_TYPE:
        return parse_json_object(body)
    if request.content_type == FORM_TYPE:
        return parse_form(body, array_fields)
    raise UnsupportedMediaType(
        f"Content-Type must be {JSON_TYPE} or {FORM_TYPE}, not {request.content_type or 'missing'}"
    )


async def read_fields(request: web.Request) -> dict[str, Any]:
    """`read_body`, then `parse_fields`."""
    return parse_fields(request, await read_body(request))
