"""The API reference page (`GET /docs`) in Chromium: Swagger UI draws every operation of
the served document, under the page's Content Security Policy, with no request leaving
the gateway. The gateway runs in-process (its fake boundary: the page needs no service)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.gateway import Gateway, in_process_gateway

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 30_000


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    async with in_process_gateway() as gateway:
        yield gateway


async def test_the_reference_page_draws_every_operation_with_local_files_only(
    browser: Any, gateway: Gateway
) -> None:
    base = gateway.url("/")
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith(base) or urlsplit(request.url).scheme == "data"
            else elsewhere.append(request.url)
        ),
    )
    try:
        await page.goto(gateway.url("/docs"))
        operations = page.locator(".opblock")
        await operations.first.wait_for(timeout=TIMEOUT_MS)
        _, _, document = await gateway.call("GET", "/openapi.json")
        methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
        expected = sum(len(methods & item.keys()) for item in document["paths"].values())
        assert await operations.count() == expected
        await page.get_by_text("/v1/task/categorize", exact=True).first.wait_for()
        ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS_DIR / "reference-page.png"), full_page=False)
    finally:
        await context.close()
    assert problems == [], problems
    assert elsewhere == [], f"requests left the gateway: {elsewhere}"
