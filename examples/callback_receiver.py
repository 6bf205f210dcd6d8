#!/usr/bin/env python3
"""A callback receiver to try humantask with: prints each callback and checks its signature.

The signature is a Standard Webhooks one (standardwebhooks.com): any of its libraries
(`pip install standardwebhooks`, `npm install standardwebhooks`, Svix, ...) verifies it
too; this file shows what they do, with Python's standard library only.

    CALLBACK_SECRET=whsec_... python3 examples/callback_receiver.py 9000

Python 3.9+, standard library only. It answers `200` to a callback whose signature
verifies (to every callback when CALLBACK_SECRET is not set) and `401` to one whose
signature does not, which the notifier counts as a failed attempt and retries once.
`verify_callback` and `decode_form` are meant to be copied into your own receiver.
"""

from __future__ import annotations

import json
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qsl

# --- verify_callback (shown in docs/user-guide/callbacks.md) ---
import base64
import hashlib
import hmac
import time


def verify_callback(secret, headers, body, tolerance_seconds=300):
    """True if humantask signed `body` (the raw bytes) with your `callback_secret`.

    Standard Webhooks: `webhook-signature` holds `v1,<base64 HMAC-SHA256>` of
    "<webhook-id>.<webhook-timestamp>.<body>", keyed with the bytes that the base64
    after `whsec_` in your secret stands for. `headers` is the request's header mapping
    (case-insensitive, as web frameworks give it). A timestamp more than
    `tolerance_seconds` away from now is refused (replays).
    """
    message_id = headers.get("webhook-id") or ""
    timestamp = headers.get("webhook-timestamp") or ""
    signatures = headers.get("webhook-signature") or ""
    # ASCII digits only: str.isdigit() and int() also take "١٧٠٠" and "１７００".
    if not (message_id and timestamp.isascii() and timestamp.isdigit() and len(timestamp) < 16):
        return False
    if abs(time.time() - int(timestamp)) > tolerance_seconds:
        return False
    encoded = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    key = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = b"v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    return any(hmac.compare_digest(given.encode(), expected) for given in signatures.split())
# --- end of verify_callback ---


_BRACKETS = re.compile(r"\[([^\]]*)\]")


def decode_form(body):
    """A form body with bracket nesting as the object it encodes:
    `task[params][categories][0]=big` gives {"task": {"params": {"categories": ["big"]}}}.
    Values stay strings; objects whose keys are 0, 1, 2, ... become lists."""
    root = {}
    for name, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
        head, _, rest = name.partition("[")
        *parents, leaf = [head, *_BRACKETS.findall("[" + rest)] if rest else [head]
        node = root
        for key in parents:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[leaf] = value
    return _with_lists(root)


def _with_lists(node):
    if not isinstance(node, dict):
        return node
    items = {key: _with_lists(value) for key, value in node.items()}
    indexes = [str(i) for i in range(len(items))]
    if items and set(items) == set(indexes):
        return [items[i] for i in indexes]
    return items


class CallbackHandler(BaseHTTPRequestHandler):
    secret = os.environ.get("CALLBACK_SECRET")

    def do_POST(self):  # http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        verified = None if self.secret is None else verify_callback(self.secret, self.headers, body)
        if self.headers.get_content_type() == "application/json":
            callback = json.loads(body)
        else:
            callback = decode_form(body)
        print(json.dumps({
            "webhook_id": self.headers.get("webhook-id"),
            "task_id": self.headers.get("X-Callback-Task-Id"),
            "attempt": self.headers.get("X-Callback-Attempt"),
            "signature_verified": verified,
            "callback": callback,
        }, indent=2), flush=True)
        self.send_response(401 if verified is False else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):  # noqa: A002 - quiet: the callback is printed
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    server = HTTPServer(("0.0.0.0", port), CallbackHandler)  # listening from here on
    print(f"waiting for callbacks on http://0.0.0.0:{port}/ (Ctrl-C to stop)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
