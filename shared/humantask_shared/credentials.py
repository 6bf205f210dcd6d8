"""API keys and worker tokens: how they look and how they are stored (a SHA-256 digest).

Keys are 128 random bits, so a fast digest is enough: nothing to brute-force, unlike
passwords. The digest is what services look credentials up by; the key never leaves the
gateway.
"""

from __future__ import annotations

import hashlib
import secrets


def credential_hash(credential: str) -> str:
    return hashlib.sha256(credential.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    return f"live_{secrets.token_hex(16)}"


def new_worker_token() -> str:
    return f"worker_{secrets.token_hex(16)}"


def new_callback_secret() -> str:
    return f"whsec_{secrets.token_hex(24)}"
