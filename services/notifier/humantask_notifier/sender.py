"""HTTP adapter: POSTs one callback and says what came of it, never raising.

Safety (docs/reference/contract.md §7), one rule for every callback address, applied when it
is sent:

- The URL is parsed once, by yarl, exactly as aiohttp will use it, so the host checked
  is the host connected to: Unicode spellings (`１２７．０．０．１`, ideographic full
  stops) are already mapped to their ASCII form (`127.0.0.1`) by IDNA/UTS 46.
- Every host, an IP literal in any spelling or a name, goes through one resolver,
  `GuardedResolver`: a literal is read without DNS (legacy IPv4 forms included), a name
  is resolved, and unless private networks are allowed every resulting address must be
  public (`addresses.is_public`). `GuardedConnector` sends literals there too (aiohttp
  alone would connect to them unchecked), and the connection then goes to exactly the
  vetted addresses, so a DNS answer cannot change between the check and the connection.
- No redirects are followed (a 3xx is just not a 200), no proxy from the environment is
  used, at most `MAX_RESPONSE_BYTES` of the answer are read, and the whole exchange
  (resolution included) is bounded by CALLBACK_TIMEOUT_SECONDS.
- Names are resolved by c-ares (aiohttp's `AsyncResolver`), through `BoundedLookup`: at
  most CALLBACK_DNS_MAX_CONCURRENT look-ups at once, each abandoned after
  CALLBACK_DNS_TIMEOUT_SECONDS. A look-up abandoned holds no thread (getaddrinfo in a
  thread pool would stay blocked until the C library gives up, and six of them fill
  asyncio's default pool on two cores), so a customer whose name servers never answer
  cannot make another customer's look-up wait.
- Errors in the callback log name the customer's own host at most: never an address it
  resolved to, and a name that resolves to a private address reads the same as one that
  does not resolve, so the log tells nothing about the notifier's network.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import AsyncResolver

from humantask_shared import __version__

from .addresses import IPAddress, callback_url, is_public, parse_ip, why_not_public
from .ports import SendResult

USER_AGENT = f"humantask-notifier/{__version__}"
MAX_RESPONSE_BYTES = 64 * 1024
MAX_ERROR_LENGTH = 300
PRIVATE_OFF = "CALLBACK_ALLOW_PRIVATE_NETWORKS is off"


class ForbiddenAddress(Exception):
    """The callback's host is, or resolves to, an address callbacks may not go to.

    Not an OSError, so aiohttp lets it through unwrapped; its message is safe to log."""


def _literal_result(host: str, address: IPAddress, port: int) -> ResolveResult:
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return ResolveResult(
        hostname=host,
        host=str(address),
        port=port,
        family=family,
        proto=0,
        flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
    )


class GuardedResolver(AbstractResolver):
    """The one path from a host to the addresses a callback connects to.

    IP literals (any spelling `inet_aton` or `ipaddress` reads) are taken as they are,
    names are resolved by `lookup` (a `BoundedLookup` in service), and unless
    `allow_private` every address must be public, or `ForbiddenAddress`."""

    def __init__(self, allow_private: bool, lookup: AbstractResolver) -> None:
        self._allow_private = allow_private
        self._lookup = lookup

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        literal = parse_ip(host)
        if literal is not None:
            if not self._allow_private and not is_public(literal):
                raise ForbiddenAddress(f"{host} is {why_not_public(literal)}")
            return [_literal_result(host, literal, port)]
        if self._allow_private:
            return await self._lookup.resolve(host, port, family)
        try:
            results = await self._lookup.resolve(host, port, family)
        except OSError as exc:
            # The same words as a private answer: no oracle for names inside our network.
            raise ForbiddenAddress(f"{host} does not resolve to a public address") from exc
        for result in results:
            address = parse_ip(result["host"])
            if address is None or not is_public(address):
                raise ForbiddenAddress(f"{host} does not resolve to a public address")
        if not results:
            raise ForbiddenAddress(f"{host} does not resolve to a public address")
        return results

    async def close(self) -> None:
        await self._lookup.close()


class BoundedLookup(AbstractResolver):
    """Look-ups of names bounded in time and in number. `resolver` does the look-up
    (c-ares by default, made at the first look-up: it needs the running loop)."""

    def __init__(
        self,
        resolver: AbstractResolver | None = None,
        *,
        timeout_seconds: float,
        max_concurrent: int,
    ) -> None:
        self._resolver = resolver
        self._timeout = timeout_seconds
        self._slots = asyncio.Semaphore(max_concurrent)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._resolver is None:
            # c-ares retries once within the timeout (a lost UDP answer), then gives up.
            self._resolver = AsyncResolver(timeout=self._timeout / 2, tries=2)
        try:
            async with asyncio.timeout(self._timeout), self._slots:  # waiting counts too
                return await self._resolver.resolve(host, port, family)
        except TimeoutError as exc:
            raise socket.gaierror(
                socket.EAI_AGAIN, f"name look-up timed out after {self._timeout:g} s"
            ) from exc

    async def close(self) -> None:
        if self._resolver is not None:
            await self._resolver.close()


if not hasattr(aiohttp.TCPConnector, "_resolve_host"):  # pragma: no cover
    raise ImportError(
        "aiohttp changed: TCPConnector._resolve_host is gone; the callback "
        "address check would not see IP literals (see GuardedConnector)"
    )


class GuardedConnector(aiohttp.TCPConnector):
    """aiohttp connects to IP literals without asking its resolver; this connector asks
    it for every host, so literals and names pass the same check."""

    def __init__(self, resolver: GuardedResolver, **kwargs: Any) -> None:
        super().__init__(resolver=resolver, **kwargs)
        self._guard = resolver

    async def _resolve_host(self, host: str, port: int, traces: Any = None) -> list[ResolveResult]:
        return await self._guard.resolve(host, port, family=self._family)


def create_session(
    timeout_seconds: float,
    allow_private_networks: bool,
    dns_timeout_seconds: float = 5.0,
    dns_max_concurrent: int = 64,
    lookup: AbstractResolver | None = None,
) -> aiohttp.ClientSession:
    """The callbacks' HTTP session; `lookup` replaces c-ares in tests."""
    bounded = BoundedLookup(
        lookup, timeout_seconds=dns_timeout_seconds, max_concurrent=dns_max_concurrent
    )
    connector = GuardedConnector(
        GuardedResolver(allow_private_networks, bounded),
        use_dns_cache=False,  # resolve (and check) at every send
        force_close=True,  # no pooled connection skips the check
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_seconds),
        headers={"User-Agent": USER_AGENT},
        trust_env=False,  # a proxy from the environment would bypass the address check
        auto_decompress=False,
    )


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


def _os_error(exc: BaseException | None) -> str:
    """An OS error without the socket address it may quote (`Connect call failed ('10.…')`)."""
    if isinstance(exc, socket.gaierror) and exc.strerror:
        return exc.strerror
    if isinstance(exc, OSError) and exc.errno is None and exc.strerror:
        return exc.strerror  # c-ares's words (`Domain name not found`): no address in them
    if isinstance(exc, OSError) and exc.errno and exc.errno > 0:
        return os.strerror(exc.errno)  # asyncio's own strerror quotes the address
    return type(exc).__name__ if exc is not None else "unknown error"


class CallbackSender:
    def __init__(
        self, session: aiohttp.ClientSession, timeout_seconds: float, allow_private_networks: bool
    ) -> None:
        self._session = session
        self._timeout = timeout_seconds
        self._allow_private = allow_private_networks

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        target = callback_url(url)
        host = None if target is None else target.raw_host
        if target is None or host is None:
            return SendResult(
                error="refused: the callback URL is not an absolute http or https URL",
                reason="invalid_url",
            )
        if ":" in host:
            host = f"[{host}]"
        try:
            async with self._session.post(
                target, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.content.read(MAX_RESPONSE_BYTES)
                return SendResult(status_code=response.status)
        except ForbiddenAddress as exc:
            return SendResult(
                error=_short(f"refused: {exc} ({PRIVATE_OFF})"), reason="refused_address"
            )
        except TimeoutError:
            return SendResult(error=f"timed out after {self._timeout:g} s", reason="timeout")
        except aiohttp.ClientConnectorDNSError as exc:
            return SendResult(
                error=_short(f"could not resolve {host}: {_os_error(exc.os_error)}"), reason="dns"
            )
        except aiohttp.ClientConnectorError as exc:
            return SendResult(
                error=_short(f"could not connect to {host}:{exc.port}: {_os_error(exc.os_error)}"),
                reason="connect",
            )
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # Reset or closed connections, malformed answers, URLs aiohttp will not send to.
            detail = _os_error(exc) if isinstance(exc, OSError) else str(exc)
            return SendResult(
                error=_short(f"connection failed: {type(exc).__name__}: {detail}"),
                reason="connection",
            )
