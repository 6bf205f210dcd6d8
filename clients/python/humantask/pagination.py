"""One page of a list, and the way to the next.

`api.tasks.list(...)` walks every page for you, one request per page, each asked only
when the items before it are used up. `api.tasks.list_page(...)` gives one page:

    page = api.tasks.list_page(status='pending', limit=50)
    while page is not None:
        handle(page.items)
        page = page.next_page()

`page.next_token` is the server's cursor for the next page, to pass back as
`list_page(..., next_token=...)` later (a "more" button, a job that resumes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """A page: its `items`, and `next_page()` (None after the last page)."""

    items: list[T]
    next_params: Mapping[str, str] | None = None
    _fetch: Callable[[Mapping[str, str]], Page[T]] | None = field(default=None, repr=False)

    @property
    def has_next(self) -> bool:
        return self.next_params is not None

    @property
    def next_token(self) -> str | None:
        return None if self.next_params is None else self.next_params.get("next_token")

    def next_page(self) -> Page[T] | None:
        """The next page (one request), or None when this is the last."""
        if self.next_params is None or self._fetch is None:
            return None
        return self._fetch(self.next_params)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class AsyncPage(Generic[T]):
    """A page of the asyncio client: `await page.next_page()`."""

    items: list[T]
    next_params: Mapping[str, str] | None = None
    _fetch: Callable[[Mapping[str, str]], Awaitable[AsyncPage[T]]] | None = field(
        default=None, repr=False
    )

    @property
    def has_next(self) -> bool:
        return self.next_params is not None

    @property
    def next_token(self) -> str | None:
        return None if self.next_params is None else self.next_params.get("next_token")

    async def next_page(self) -> AsyncPage[T] | None:
        if self.next_params is None or self._fetch is None:
            return None
        return await self._fetch(self.next_params)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def walk(first: Callable[[], Page[T]]) -> Iterator[T]:
    """Every item of every page, asking for a page only when the caller gets to it."""
    page: Page[T] | None = first()
    while page is not None:
        yield from page.items
        page = page.next_page()


async def walk_async(first: Callable[[], Awaitable[AsyncPage[T]]]) -> AsyncIterator[T]:
    page: AsyncPage[T] | None = await first()
    while page is not None:
        for item in page.items:
            yield item
        page = await page.next_page()
