"""API keys, worker tokens and callback secrets: how they look and how they are used.

Keys and tokens are 128 random bits, so a fast digest is enough to store them (nothing
to brute-force, unlike passwords). The digest is what services look credentials up by;
the key itself never leaves the gateway.

A callback secret is a Standard Webhooks secret (standardwebhooks.com): `whsec_` and the
base64 of 32 random bytes; callbacks are signed with the decoded bytes
(docs/reference/contract.md §7).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets

CALLBACK_SECRET_PREFIX = "whsec_"
CALLBACK_SECRET_BYTES = 32


def credential_hash(credential: str) -> str:
    return hashlib.sha256(credential.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    return f"live_{secrets.token_hex(16)}"


def new_worker_token() -> str:
    return f"worker_{secrets.token_hex(16)}"


def new_callback_secret() -> str:
    """`whsec_<base64 of 32 random bytes>`, what every Standard Webhooks library reads."""
    key = secrets.token_bytes(CALLBACK_SECRET_BYTES)
    return CALLBACK_SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def callback_signing_key(secret: str) -> bytes:
    """The HMAC key of a callback secret: the bytes its base64 part decodes to.

    Secrets made before humantask spoke Standard Webhooks are `whsec_` and 48 hex
    digits. Hex digits are base64 characters too, so such a secret decodes (to 36
    bytes), exactly as the Standard Webhooks libraries decode it on the receiving side:
    old secrets keep working unchanged. Anything that does not decode (no secret
    humantask ever made) is used as its UTF-8 bytes rather than refused.
    """
    encoded = secret.removeprefix(CALLBACK_SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    return key or secret.encode("utf-8")
