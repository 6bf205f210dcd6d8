"""examples/callback_receiver.py, the example receiver of the docs, run as a reader would run it."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request

from humantask_notifier.payload import callback_headers, encode_body
from humantask_shared.core.credentials import new_callback_secret
from tests.support.callbacks import EXAMPLE_RECEIVER, SEED_CALLBACK, SEED_TASK
from tests.support.services import ServiceProcess, free_port, wait_until

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post(url: str, body: bytes, headers: dict[str, str | bytes]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with NO_PROXY.open(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def test_the_example_receiver_prints_verified_callbacks_and_refuses_forged_ones() -> None:
    port = free_port()
    secret = new_callback_secret()
    receiver = ServiceProcess(
        "callback-receiver",
        {"CALLBACK_SECRET": secret},
        args=[str(EXAMPLE_RECEIVER), str(port)],
        executable=sys.executable,
    ).start()
    try:
        url = f"http://127.0.0.1:{port}/callback"
        wait_until(lambda: "waiting for callbacks" in receiver.log_text(), timeout=15)
        body, content_type = encode_body(SEED_TASK, "form")
        headers = callback_headers(
            SEED_TASK["task_id"], 1, int(time.time()), secret, body, content_type
        )
        assert post(url, body, headers) == 200
        forged = callback_headers(
            SEED_TASK["task_id"], 1, int(time.time()), new_callback_secret(), body, content_type
        )
        assert post(url, body, forged) == 401
        # Arabic-Indic digits, sent as UTF-8: refused, and the receiver carries on.
        arabic = "".join(chr(0x0660 + int(digit)) for digit in headers["webhook-timestamp"])
        assert post(url, body, {**headers, "webhook-timestamp": arabic.encode()}) == 401

        wait_until(lambda: receiver.log_text().count('"signature_verified"') == 3, timeout=15)
        text = receiver.log_text()
        first = json.loads(text[text.index("{") : text.index("\n}\n") + 2])
        assert first["signature_verified"] is True
        assert first["attempt"] == "1"
        assert first["callback"] == SEED_CALLBACK
        assert '"signature_verified": false' in text
    finally:
        receiver.terminate(timeout=10)
