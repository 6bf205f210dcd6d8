"""Declaring the topology's queues and exchanges on a channel (`core/topology.py` says
what they are). Each declaration is idempotent; `declare_all` declares an exchange that
several of its queues bind to (the dead-letter exchange) once."""

from __future__ import annotations

from collections.abc import Sequence

from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from aio_pika.exceptions import ChannelPreconditionFailed

from ..core.topology import Exchange, Queue, QueueType, queue_arguments


async def declare_exchange(channel: AbstractChannel, exchange: Exchange) -> AbstractExchange:
    return await channel.declare_exchange(exchange.name, exchange.type, durable=True)


async def declare(
    channel: AbstractChannel, queue: Queue, queue_type: QueueType = "classic"
) -> AbstractQueue:
    """Declare `queue` (its dead-letter queue first) and its bindings.

    `queue_type` is that of the durable queues; per-process queues are always classic."""
    (declared,) = await declare_all(channel, [queue], queue_type)
    return declared


async def declare_all(
    channel: AbstractChannel, queues: Sequence[Queue], queue_type: QueueType = "classic"
) -> list[AbstractQueue]:
    """Declare each of `queues` as `declare` does, each exchange they need once."""
    exchanges: dict[str, AbstractExchange] = {}

    async def declare_one(queue: Queue) -> AbstractQueue:
        if queue.parameters:
            raise ValueError(f"{queue.name} is a template: declare `named(...)` of it")
        if queue.dead_letter_queue is not None:
            await declare_one(queue.dead_letter_queue)
        declared = await _declare_queue(channel, queue, queue_type)
        if queue.exchange is not None:
            if queue.exchange.name not in exchanges:
                exchanges[queue.exchange.name] = await declare_exchange(channel, queue.exchange)
            for key in queue.routing_keys:
                await declared.bind(exchanges[queue.exchange.name], routing_key=key)
        return declared

    return [await declare_one(queue) for queue in queues]


async def _declare_queue(
    channel: AbstractChannel, queue: Queue, queue_type: QueueType
) -> AbstractQueue:
    if queue.per_process:
        return await channel.declare_queue(queue.name, exclusive=True, auto_delete=True)
    try:
        return await channel.declare_queue(
            queue.name, durable=True, arguments=queue_arguments(queue, queue_type)
        )
    except ChannelPreconditionFailed as exc:
        raise RuntimeError(
            f"the queue {queue.name} exists with other arguments (another queue type, or "
            f"as an older version declared it): delete it (rabbitmqctl delete_queue "
            f"{queue.name}) and start again; see the README, Upgrading"
        ) from exc
