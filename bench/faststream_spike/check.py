"""The same behaviour, checked on both sides against the real RabbitMQ.

Each server gets commands from a raw aio-pika probe, so that what is checked is the
server's answer (a reply, a dead-letter, or silence), not a client's reading of it:

- a command is answered with its handler's typed result;
- a command whose deadline passed is dropped unexecuted: no reply, not dead-lettered;
- a command without an allowed `user_id` is answered `unauthorized`, then dead-lettered,
  its deadline passed or not (the sender is checked first);
- a malformed command is answered `invalid`, then dead-lettered;
- a handler that fails (a bug) has its caller answered `unavailable`, then is dead-lettered;
- a command whose caller went away (its reply queue is gone) is not dead-lettered.

And FastStream's default on that last point, for the README: a handler that returns its
result plainly has it published mandatory, so on a channel that raises returned messages
(which "no service handles this" needs) the executed command is dead-lettered.

And each client: a result for a command, `Unavailable` at once for a command that no
queue is bound for (a returned mandatory message, not a timeout).

Servers take one message at a time here (prefetch 1), so a reply to a later command on
the same queue means an earlier one was settled.

FastStream is imported where it is used, so that the unit suite can import this module
from the project's venv (which has no FastStream).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aio_pika
import orjson
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import BaseModel

from humantask_shared.broker_access import BrokerIdentities, broker_user
from humantask_shared.errors import Unavailable
from humantask_shared.messages.commands import Command
from humantask_shared.messaging import DEADLINE_HEADER, connect_broker, open_channel
from humantask_shared.topology import (
    COMMANDS_EXCHANGE,
    DEAD_LETTER_ARGUMENTS,
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_SUFFIX,
)

from . import ours
from .commands import Boom, Nobody, Ping, PingResult

REPLY_WAIT_SECONDS = 5.0
GONE_CALLER = "spike.replies.gone"  # a reply queue nobody declared: its caller went away


class Client(Protocol):
    async def send(self, command: Command, result_model: type[PingResult]) -> BaseModel: ...


class Probe:
    """Publishes hand-made commands and keeps every reply by correlation id."""

    def __init__(self, connection: AbstractRobustConnection) -> None:
        self._connection = connection
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def start(self) -> None:
        self.channel = await open_channel(self._connection)
        self._reply_queue = await self.channel.declare_queue(exclusive=True, auto_delete=True)
        await self._reply_queue.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._replies.get(message.correlation_id or "")
        if future is not None and not future.done():
            future.set_result(orjson.loads(message.body))

    async def send(
        self,
        exchange: str,
        command_type: str,
        body: dict[str, Any],
        *,
        user_id: str | None,
        deadline_ms: int,
        reply_to: str | None = None,
    ) -> asyncio.Future[dict[str, Any]]:
        correlation_id = uuid.uuid4().hex
        reply = asyncio.get_running_loop().create_future()
        self._replies[correlation_id] = reply
        exchange_object = await self.channel.get_exchange(exchange, ensure=False)
        await exchange_object.publish(
            aio_pika.Message(
                orjson.dumps(body),
                content_type="application/json",
                correlation_id=correlation_id,
                reply_to=reply_to or self._reply_queue.name,
                message_id=uuid.uuid4().hex,
                type=command_type,
                user_id=user_id,
                headers={DEADLINE_HEADER: deadline_ms},
            ),
            routing_key=command_type,
        )
        return reply

    async def depth(self, queue: str) -> int:
        declared = await self.channel.declare_queue(queue, passive=True)
        # declare() again: a robust channel hands back the queue it declared first.
        return int((await declared.declare()).message_count or 0)


async def wait_for(condition: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(0.05)
    return False


class Report:
    def __init__(self) -> None:
        self.failures = 0

    def __call__(self, side: str, what: str, passed: bool, detail: object = "") -> None:
        self.failures += not passed
        print(f"{'PASS' if passed else 'FAIL'}  {side:<28} {what}  {detail}", flush=True)


async def check_server(
    probe: Probe,
    report: Report,
    side: str,
    exchange: str,
    queue_of: Callable[[str], str],
    user: str,
) -> None:

    def later(seconds: float = REPLY_WAIT_SECONDS) -> int:
        return int((time.time() + seconds) * 1000)

    async def answer(future: asyncio.Future[dict[str, Any]]) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(future, REPLY_WAIT_SECONDS)
        except TimeoutError:
            return None

    async def dead_lettered(
        command: str,
        body: dict[str, Any],
        user_id: str | None,
        expected: str,
        what: str,
        deadline_ms: int | None = None,
    ) -> None:
        dead_letters = dead_letters_of(queue_of(command))
        before = await probe.depth(dead_letters)
        sent = await probe.send(
            exchange, command, body, user_id=user_id, deadline_ms=deadline_ms or later()
        )
        code = ((await answer(sent)) or {}).get("error", {}).get("code")
        grew = await wait_for(lambda: _grew(probe, dead_letters, before), REPLY_WAIT_SECONDS)
        report(side, f"{what}: {expected} reply, then dead-lettered", code == expected and grew)

    ping = {"n": 1, "text": "hi"}
    reply = await answer(
        await probe.send(exchange, Ping.name, ping, user_id=user, deadline_ms=later())
    )
    answered = reply is not None and reply["ok"] and reply["result"] == ping
    report(side, "ping answered with its result", answered, reply)

    dead_letters = dead_letters_of(queue_of(Ping.name))
    before = await probe.depth(dead_letters)
    expired = await probe.send(exchange, Ping.name, ping, user_id=user, deadline_ms=later(-1))
    after = await answer(
        await probe.send(exchange, Ping.name, ping, user_id=user, deadline_ms=later())
    )
    dropped = after is not None and not expired.done() and await probe.depth(dead_letters) == before
    report(side, "expired command dropped unexecuted", dropped)

    before = await probe.depth(dead_letters)
    await probe.send(
        exchange, Ping.name, ping, user_id=user, deadline_ms=later(), reply_to=GONE_CALLER
    )
    after = await answer(
        await probe.send(exchange, Ping.name, ping, user_id=user, deadline_ms=later())
    )
    kept = after is not None and await probe.depth(dead_letters) == before
    report(side, "a caller that went away costs its reply only", kept)

    await dead_lettered(Ping.name, ping, None, "unauthorized", "no allowed sender")
    await dead_lettered(
        Ping.name, ping, None, "unauthorized", "no allowed sender, expired", later(-1)
    )
    await dead_lettered(Ping.name, {"n": "x", "text": 1}, user, "invalid", "malformed")
    await dead_lettered(Boom.name, {}, user, "unavailable", "failing handler")


async def faststream_default_reply(amqp_url: str, probe: Probe, report: Report) -> None:
    """A plain-return handler, as FastStream's docs write them, answering a gone caller."""
    from . import fs_side
    from .fs_side import AckPolicy, RabbitQueue

    name = "spike.faststream.plain-return"
    broker = fs_side.spike_broker(amqp_url)
    handled = asyncio.Event()

    @broker.subscriber(
        RabbitQueue(
            name,
            durable=True,
            arguments={
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
                "x-dead-letter-routing-key": name,
            },
        ),
        ack_policy=AckPolicy.REJECT_ON_ERROR,
    )
    async def plain(command: Ping) -> PingResult:
        handled.set()
        return PingResult(n=command.n, text=command.text)

    await broker.start()
    try:
        dead_letters = await broker.declare_queue(
            RabbitQueue(dead_letters_of(name), durable=True, arguments=DEAD_LETTER_ARGUMENTS)
        )
        await dead_letters.bind(DEAD_LETTER_EXCHANGE.name, routing_key=name)
        before = await probe.depth(dead_letters.name)
        await broker.publish(Ping(n=3, text="hi"), name, reply_to=GONE_CALLER, persist=True)
        await asyncio.wait_for(handled.wait(), REPLY_WAIT_SECONDS)
        grew = await wait_for(lambda: _grew(probe, dead_letters.name, before), REPLY_WAIT_SECONDS)
        report(
            "faststream plain return", "pitfall: executed, then dead-lettered (reproduced)", grew
        )
    finally:
        await broker.stop()


def dead_letters_of(queue: str) -> str:
    return f"{queue}{DEAD_LETTER_SUFFIX}"


async def _grew(probe: Probe, queue: str, before: int) -> bool:
    return await probe.depth(queue) > before


async def check_client(report: Report, side: str, client: Client) -> None:
    result = await client.send(Ping(n=2, text="hi"), PingResult)
    report(side, "send returns the typed result", result == PingResult(n=2, text="hi"), result)
    started = time.perf_counter()
    try:
        await client.send(Nobody(), PingResult)
        report(side, "unrouted command is Unavailable", False, "answered?")
    except Unavailable as exc:
        took = time.perf_counter() - started
        report(
            side,
            "unrouted command is Unavailable at once",
            took < 1,
            f"{took * 1000:.0f} ms: {exc}",
        )


async def check(amqp_url: str) -> int:
    """Run every check; the number of failures."""
    from . import fs_side

    user = broker_user(amqp_url)
    # Ping and Boom may come from "gateway" (this URL's user); nothing is this service's own.
    identities = BrokerIdentities(
        senders={"gateway": user, "notifier": "spike-notifier", "admin": "spike-admin"},
        own_user="spike-self",
    )
    report = Report()
    connection = await connect_broker(amqp_url, "spike-check")
    fs_server = fs_side.spike_broker(amqp_url, identities)
    fs_side.add_handlers(fs_server, prefetch=1)
    fs_client_broker = fs_side.spike_broker(amqp_url)
    reply_queue_client = fs_side.ReplyQueueClient(fs_client_broker, user, timeout=5)
    try:
        async with ours.serving(connection, identities, prefetch=1):
            await fs_server.start()
            await fs_side.declare_dead_letter_queues(fs_server)
            await fs_client_broker.start()
            probe = Probe(connection)
            await probe.start()
            await check_server(
                probe, report, "ours", COMMANDS_EXCHANGE.name, lambda _name: ours.QUEUE.name, user
            )
            await check_server(
                probe,
                report,
                "faststream",
                fs_side.EXCHANGE.name,
                lambda name: f"spike.faststream.{name}",
                user,
            )
            async with ours.client(connection, user, timeout=5) as our_client:
                await check_client(report, "ours CommandClient", our_client)
            direct = fs_side.DirectReplyClient(fs_client_broker, user, timeout=5)
            await check_client(report, "faststream broker.request", direct)
            await check_client(report, "faststream reply queue", reply_queue_client)
            await faststream_default_reply(amqp_url, probe, report)
    finally:
        await fs_client_broker.stop()
        await fs_server.stop()
        await connection.close()
    print(f"{report.failures} failed", flush=True)
    return report.failures
