#!/usr/bin/env python3
"""A callback receiver to try humantask with: prints each callback and checks its signature.

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

# --- verify_callback (shown in the README) ---
import hashlib
import hmac
import time


def verify_callback(secret, headers, body, tolerance_seconds=300):
    """True if humantask signed `body` (the raw bytes) with your `callback_secret`.

    `headers` is the request's header mapping (case-insensitive, as web frameworks
    give it). A signature older than `tolerance_seconds` is refused (replays).
    """
    timestamp = headers.get("X-Callback-Timestamp", "")
    signature = headers.get("X-Callback-Signature", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance_seconds:
        return False
    signed = timestamp.encode() + b"." + body
    expected = "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, expected)
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

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        verified = None if self.secret is None else verify_callback(self.secret, self.headers, body)
        if self.headers.get_content_type() == "application/json":
            callback = json.loads(body)
        else:
            callback = decode_form(body)
        print(json.dumps({
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
    print(f"waiting for callbacks on http://0.0.0.0:{port}/ (Ctrl-C to stop)", flush=True)
    HTTPServer(("0.0.0.0", port), CallbackHandler).serve_forever()


if __name__ == "__main__":
    main()
