"""The workbench (`GET /work`) in a real browser: a worker signs in, answers tasks with a
click and with a key press, sees "nothing to do", and gets new work by itself.

Customer text is hostile here on purpose: the instruction, the attachment and a category
carry `<script>` and `<img onerror=...>`. The page must show it as text and run none of it.
Screenshots go to test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from e2e.conftest import Api, Stack
from e2e.isolated import empty_pool

from tests.support.services import ARTIFACTS_DIR, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TIMEOUT_MS = 20_000
XSS_INSTRUCTION = (
    'Is this review positive or negative? <script>window.__xss = "instruction"</script>'
    "<img src=x onerror=\"window.__xss = 'instruction'\">"
)
XSS_ATTACHMENT = (
    "Arrived quickly and works as described, but the box was damaged.\n"
    "<img src=x onerror=\"window.__xss = 'attachment'\"> <b>not bold</b>"
)
XSS_CATEGORY = "<img src=x onerror=\"window.__xss = 'category'\">"


def png(width: int, height: int) -> bytes:
    """A small gradient PNG, made here: the tests reach no network."""
    rows = b"".join(
        b"\x00"
        + b"".join(
            bytes((40 + 180 * x // width, 90 + 120 * y // height, 200)) for x in range(width)
        )
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
async def image_url() -> AsyncIterator[str]:
    """An image the page can load, served on 127.0.0.1."""
    app = web.Application()
    image = png(480, 270)

    async def photo(_request: web.Request) -> web.Response:
        return web.Response(body=image, content_type="image/png")

    app.router.add_get("/photo.png", photo)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/photo.png"
    await runner.cleanup()


@pytest.fixture(scope="module")
def owner(bench_stack: Stack) -> dict[str, Any]:
    return bench_stack.admin("customers", "create", "--name", "workbench owner")


@pytest.fixture
def worker_token(bench_stack: Stack) -> str:
    return bench_stack.admin("workers", "create", "--name", "browser worker")["token"]


@pytest.fixture(autouse=True)
async def pool_of_our_own(api: Api, owner: dict[str, Any]) -> AsyncIterator[None]:
    async with empty_pool(api, owner["api_key"]):
        yield


@pytest.fixture
async def page(browser: Any, bench_stack: Stack) -> AsyncIterator[Any]:
    context = await browser.new_context(
        viewport={"width": 1100, "height": 820}, base_url=bench_stack.gateway_url
    )
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    await context.close()
    assert dialogs == [], "the page opened a dialog"
    assert errors == [], f"the page's script failed: {errors}"


async def create(api: Api, owner: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"callback_url": "http://127.0.0.1:9/never-called", **fields}
    reply = await api.post("/v1/task/categorize", owner["api_key"], json=body)
    assert reply.status == 200, reply
    return reply.body


async def sign_in(page: Any, token: str) -> None:
    await page.goto("/work")
    await page.locator("#token").fill(token)
    await page.get_by_role("button", name="Sign in").click()


async def shows_task(page: Any, task: dict[str, Any]) -> None:
    await page.wait_for_function(
        "id => !document.getElementById('task').hidden"
        " && document.getElementById('task-id').textContent === id",
        arg=task["task_id"],
        timeout=TIMEOUT_MS,
    )


async def screenshot(page: Any, name: str) -> None:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS_DIR / name), full_page=True)


async def test_a_worker_completes_two_tasks_with_a_click_and_a_key(
    page: Any, api: Api, owner: dict[str, Any], worker_token: str, image_url: str
) -> None:
    review = await create(
        api,
        owner,
        instruction=XSS_INSTRUCTION,
        attachment_type="text",
        attachment=XSS_ATTACHMENT,
        categories=["positive", "negative", XSS_CATEGORY],
    )
    photo = await create(
        api,
        owner,
        instruction="What is in this picture?",
        attachment_type="image",
        attachment=image_url,
        categories=["a landscape", "a person", "an animal"],
    )

    await sign_in(page, worker_token)
    await shows_task(page, review)

    # Customer text is shown exactly as written, as text; none of it ran.
    assert await page.locator("#instruction").text_content() == XSS_INSTRUCTION
    assert await page.locator("#attachment .attachment-text").text_content() == XSS_ATTACHMENT
    labels = await page.locator("#categories button span").all_text_contents()
    assert labels == ["positive", "negative", XSS_CATEGORY]
    assert await page.locator("#categories kbd").all_text_contents() == ["1", "2", "3"]
    assert await page.locator("#task img, #task script, #task b").count() == 0
    assert await page.evaluate("window.__xss") is None
    await screenshot(page, "workbench-task.png")

    await page.get_by_role("button", name="negative").click()  # a click
    await shows_task(page, photo)
    image = page.locator("#attachment img")
    assert await image.get_attribute("src") == image_url
    await page.wait_for_function("() => document.querySelector('#attachment img').naturalWidth > 0")
    await screenshot(page, "workbench-image.png")

    await page.keyboard.press("3")  # a key press: the third category
    await page.locator("#idle").wait_for(state="visible")
    assert "Nothing to do" in await page.locator("#idle").inner_text()
    await screenshot(page, "workbench-idle.png")
    assert await page.evaluate("window.__xss") is None

    # The customer sees both tasks completed with the categories chosen.
    for task, category in [(review, "negative"), (photo, "an animal")]:
        done = await api.get(f"/v1/task/{task['task_id']}", owner["api_key"])
        assert done.body["status"] == "completed", done
        assert done.body["response"] == {"category": category, "status_code": 200}

    # A new task appears by itself: the idle page keeps checking.
    later = await create(
        api,
        owner,
        instruction="Is this sentence a question?",
        attachment_type="text",
        attachment="Is it?",
        categories=["yes", "no"],
    )
    await shows_task(page, later)


async def test_signing_out_gives_the_lease_back(
    page: Any, api: Api, bench_stack: Stack, owner: dict[str, Any], worker_token: str
) -> None:
    task = await create(
        api,
        owner,
        instruction="Released on sign-out?",
        attachment_type="text",
        attachment="text",
        categories=["yes", "no"],
    )
    await sign_in(page, worker_token)
    await shows_task(page, task)
    await page.get_by_role("button", name="Sign out").click()
    await page.locator("#sign-in").wait_for(state="visible")
    assert await page.evaluate("sessionStorage.length") == 0

    other = bench_stack.admin("workers", "create", "--name", "next worker")["token"]

    async def claimed_by_other() -> Any:
        reply = await api.post("/v1/work/claim", other)
        return reply.body if reply.status == 200 else None

    item = await wait_for(
        claimed_by_other, timeout=15, message="the released task claimed by another worker"
    )
    assert item["task_id"] == task["task_id"]


async def test_a_wrong_token_is_turned_away_on_the_sign_in_form(page: Any) -> None:
    await sign_in(page, "worker_0000000000000000000000000000dead")
    error = page.locator("#sign-in-error")
    await error.wait_for(state="visible")
    assert "not accepted" in await error.inner_text()
    assert await page.locator("#task").is_hidden()


@pytest.mark.parametrize("attachment_type", ["website", "video", "audio"])
async def test_other_attachments_are_links(
    page: Any, api: Api, owner: dict[str, Any], worker_token: str, attachment_type: str
) -> None:
    url = f"http://127.0.0.1:9/{attachment_type}?a=1&b=<2>"
    task = await create(
        api,
        owner,
        instruction=f"Open the {attachment_type}",
        attachment_type=attachment_type,
        attachment=url,
        categories=["fine", "broken"],
    )
    await sign_in(page, worker_token)
    await shows_task(page, task)
    link = page.locator("#attachment a")
    assert await link.text_content() == url
    assert await link.get_attribute("href") == url
    assert await link.get_attribute("rel") == "noopener noreferrer"
    await page.keyboard.press("1")
    await page.locator("#idle").wait_for(state="visible")
    done = await api.get(f"/v1/task/{task['task_id']}", owner["api_key"])
    assert done.body["response"]["category"] == "fine"
