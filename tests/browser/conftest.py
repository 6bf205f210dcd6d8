"""Browser tests: Debian's Chromium, driven headless by Playwright, against a real stack.

Playwright never downloads a browser here: it launches `/usr/bin/chromium` (Debian's
`chromium` package, which `.ci/run` installs when this directory exists). Without it the
tests skip on a developer's machine and fail on CI (`CI=true`), saying what to install.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.conftest import Api, Stack
from e2e.isolated import api_for, isolated_stack

CHROMIUM = Path(os.environ.get("HUMANTASK_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
]
INSTALL_HINT = "apt-get install -y chromium chromium-driver; pip install -e '.[test]'"


def _browser_missing() -> str | None:
    if not CHROMIUM.exists():
        return f"Chromium is not installed at {CHROMIUM} ({INSTALL_HINT})"
    try:
        import playwright.async_api  # noqa: F401 - only whether it imports
    except ImportError:
        return f"Playwright for Python is not installed ({INSTALL_HINT})"
    return None


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run: {missing}", pytrace=False)
        pytest.skip(missing)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(scope="module")
def bench_stack(mongodb_url: str, test_session_id: str, _containers: Any) -> Iterator[Stack]:
    """A stack of its own, so that the page's pool holds only this module's tasks."""
    with isolated_stack(
        "browser", mongodb_url=mongodb_url, session_id=test_session_id, containers=_containers
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
async def api(bench_stack: Stack) -> AsyncIterator[Api]:
    async with api_for(bench_stack) as api:
        yield api
