"""HTTP adapter: POSTs one callback and says what came of it, never raising.

Safety (API.md section 7):

- The host is resolved when the callback is sent, by the connector's own resolver, and
  unless private networks are allowed every address it resolves to must be public
  (`addresses.is_public`); the connection then goes to exactly those vetted addresses,
  so a DNS answer cannot change between the check and the connection. IP literals,
  which aiohttp does not resolve, are checked here before the request.
- No redirects are followed (a 3xx is just not a 200), no proxy from the environment is
  used, at most `MAX_RESPONSE_BYTES` of the answer are read, and the whole exchange
  (resolution included) is bounded by CALLBACK_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from humantask_shared import __version__

from .addresses import is_public, parse_ip, why_not_public

USER_AGENT = f"humantask-notifier/{__version__}"
MAX_RESPONSE_BYTES = 64 * 1024
MAX_ERROR_LENGTH = 300


class ForbiddenAddress(Exception):
    """The callback's host is, or resolves to, an address callbacks may not go to."""


@dataclass(frozen=True)
class SendResult:
    """The receiver's status code, or why there was none."""

    status_code: int | None = None
    error: str | None = None


class PublicOnlyResolver(ThreadedResolver):
    """Resolves like aiohttp's default resolver, then refuses non-public answers."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        for result in results:
            address = parse_ip(result["host"])
            if address is None or not is_public(address):
                reason = why_not_public(address) if address is not None else result["host"]
                raise ForbiddenAddress(f"{host} resolves to a non-public address: {reason}")
        return results


def create_session(timeout_seconds: float, allow_private_networks: bool) -> aiohttp.ClientSession:
    resolver = ThreadedResolver() if allow_private_networks else PublicOnlyResolver()
    connector = aiohttp.TCPConnector(
        resolver=resolver,
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


def _refused(reason: str) -> str:
    return _short(f"refused: {reason} (CALLBACK_ALLOW_PRIVATE_NETWORKS is off)")


class CallbackSender:
    def __init__(
        self, session: aiohttp.ClientSession, timeout_seconds: float, allow_private_networks: bool
    ) -> None:
        self._session = session
        self._timeout = timeout_seconds
        self._allow_private = allow_private_networks

    def _refusal(self, url: str) -> str | None:
        """Why a URL may not be sent to before any resolution: scheme, or an IP literal."""
        try:
            parts = urlsplit(url)
            scheme, host = parts.scheme, parts.hostname
        except ValueError:
            scheme, host = "", None
        if scheme not in ("http", "https") or not host:
            return "refused: the callback URL is not an absolute http or https URL"
        address = parse_ip(host)
        if address is not None and not self._allow_private and not is_public(address):
            return _refused(why_not_public(address))
        return None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        refusal = self._refusal(url)
        if refusal is not None:
            return SendResult(error=refusal)
        try:
            async with self._session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.content.read(MAX_RESPONSE_BYTES)
                return SendResult(status_code=response.status)
        except ForbiddenAddress as exc:
            return SendResult(error=_refused(str(exc)))
        except TimeoutError:
            return SendResult(error=f"timed out after {self._timeout:g} s")
        except aiohttp.ClientConnectorDNSError as exc:
            return SendResult(error=_short(f"could not resolve {exc.host}: {exc.os_error}"))
        except aiohttp.ClientConnectorError as exc:
            return SendResult(error=_short(f"could not connect to {exc.host}:{exc.port}: {exc.os_error}"))
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # Reset or closed connections, malformed answers, URLs aiohttp will not send to.
            return SendResult(error=_short(f"connection failed: {type(exc).__name__}: {exc}"))
