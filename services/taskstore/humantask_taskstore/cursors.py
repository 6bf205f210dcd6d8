"""Signed list cursors: the `next_token` of `GET /v1/tasks` (docs/reference/contract.md §5)
and of `GET /scale/v1/tasks` (§11).

A token is `<payload>.<signature>`: the payload is the cursor (`ListCursor`: where the next
page starts, and the span of creation times to look in first), the signature an
HMAC-SHA256, cut to 16 bytes, over the payload, the customer and the query's filters,
keyed with a secret every task-store copy shares (`repository.keys`). The span decides
what the next page costs, so a cursor the task-store did not make, or one of another
customer or another query, is refused (`400` naming `next_token`) before any query runs.
`/scale/v1`'s token carries more (the list's `total` and the next page's `offset`),
signed the same way, and each list's signature names its list, so that one list's token
is never taken by the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson

from humantask_shared.core.errors import InvalidRequest
from humantask_shared.core.models import (
    NEXT_TOKEN_SIGNATURE_LENGTH,
    NOT_OUR_TOKEN,
    ListCursor,
    TaskListQuery,
    split_next_token,
)
from humantask_shared.core.scale_models import (
    ScaleListToken,
    ScaleTaskListQuery,
    split_scale_token,
)

# What a page's size or position may change between pages: the filters may not (nor
# what `/scale/v1` accepts and ignores).
_NOT_FILTERS = {
    "limit",
    "offset",
    "next_token",
    "include_attachment_url",
    "limited_response",
}
# Which list a signature is for.
_V1, _SCALE = b"v1", b"scale/v1"


class CursorSigner:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a list cursor key takes at least 32 bytes")
        self._key = key

    def sign(self, cursor: ListCursor, customer_id: str, query: TaskListQuery) -> str:
        payload = cursor.payload()
        return f"{payload}.{self._signature(_V1, payload, customer_id, query)}"

    def sign_scale(self, token: ScaleListToken, customer_id: str, query: ScaleTaskListQuery) -> str:
        payload = token.payload()
        return f"{payload}.{self._signature(_SCALE, payload, customer_id, query)}"

    def verify(self, token: str, customer_id: str, query: TaskListQuery) -> ListCursor:
        """The cursor of a token this task-store signed for this customer and these
        filters; `InvalidRequest` naming `next_token` otherwise."""
        try:
            cursor, signature = split_next_token(token)
        except ValueError:
            raise InvalidRequest(f"next_token: {NOT_OUR_TOKEN}") from None
        self._check(_V1, token, signature, customer_id, query, "the request whose Link header")
        return cursor

    def verify_scale(
        self, token: str, customer_id: str, query: ScaleTaskListQuery
    ) -> ScaleListToken:
        """The page of a `/scale/v1` token this task-store signed for this customer and
        these filters; `InvalidRequest` naming `next_token` otherwise."""
        try:
            page, signature = split_scale_token(token)
        except ValueError:
            raise InvalidRequest(f"next_token: {NOT_OUR_TOKEN}") from None
        self._check(_SCALE, token, signature, customer_id, query, "the page that")
        return page

    def _check(
        self,
        list_name: bytes,
        token: str,
        signature: str,
        customer_id: str,
        query: TaskListQuery | ScaleTaskListQuery,
        source: str,
    ) -> None:
        payload = token.rpartition(".")[0]
        expected = self._signature(list_name, payload, customer_id, query)
        if not hmac.compare_digest(signature, expected):
            raise InvalidRequest(
                f"next_token: {NOT_OUR_TOKEN} for this query (keep the filters of {source} gave it)"
            )

    def _signature(
        self,
        list_name: bytes,
        payload: str,
        customer_id: str,
        query: TaskListQuery | ScaleTaskListQuery,
    ) -> str:
        filters = query.model_dump(mode="json", exclude=_NOT_FILTERS, exclude_none=True)
        if list_name != _V1:  # `/v1`'s signatures stay what they were
            filters = {"list": list_name.decode(), **filters}
        message = b"\n".join(
            [
                payload.encode(),
                customer_id.encode(),
                orjson.dumps(filters, option=orjson.OPT_SORT_KEYS),
            ]
        )
        digest = hmac.new(self._key, message, hashlib.sha256).digest()[:16]
        signature = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        assert len(signature) == NEXT_TOKEN_SIGNATURE_LENGTH
        return signature
