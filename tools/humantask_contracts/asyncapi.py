"""AsyncAPI 3.0: what the services say to each other over RabbitMQ.

Derived from the declared topology (`humantask_shared.core.topology`): every exchange and
queue it declares, what each queue carries and who consumes and publishes it, and the
commands and events of `humantask_shared.core.messages`. Nothing here names a queue.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from humantask_shared.core.messages.base import Command, Event
from humantask_shared.core.messages.envelope import Reply, wire_model
from humantask_shared.core.messages.events import EVENTS
from humantask_shared.core.topology import (
    COMMANDS,
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    QUEUES,
    REPLY_QUEUE,
    Exchange,
    Queue,
    command_queue,
    queue_arguments,
    routing_key,
)
from humantask_shared.runtime.broker import DEADLINE_HEADER, REQUEST_ID_HEADER

from .schemas import (
    API_VERSION,
    JSON_MEDIA_TYPE,
    SCHEMA_REF_TEMPLATE,
    Json,
    ModelUse,
    Schemas,
    collect_schemas,
)

AMQP_BINDING_VERSION = "0.3.0"

COMMAND_HEADERS_SCHEMA = "CommandHeaders"
TRACED_HEADERS_SCHEMA = "TracedHeaders"

_ASYNCAPI_INFO_DESCRIPTION = f"""\
Messages between the humantask services on RabbitMQ.

Commands are published on a direct exchange, routed by command name into the durable
queue of the service that answers them (each command's channel names both). Each is
answered with a `Reply` on the caller's own reply queue (the command's `reply_to`,
matched by `correlation_id`). A command expires when its caller stops waiting
(`{DEADLINE_HEADER}`, and the AMQP expiration). Every command carries the AMQP `user_id`
of its sender's broker user (the broker refuses any other), and its receiver refuses
it, answering `unauthorized`, unless that user is one allowed to send it.

Events go to the topic exchange `{EVENTS_EXCHANGE.name}`, persistent, routed by event
name. Consumers deduplicate on `event_id`.

A message a service cannot handle is dead-lettered through `{DEAD_LETTER_EXCHANGE.name}`
into `<queue>.dead-letter`, a bounded queue; a command whose handler failed is answered
with an `unavailable` error first, so its caller never waits for its timeout.

Every queue the services declare is a `queue.` channel; a queue of one process (or one
setting) is a parameterised address. The `x-` arguments shown are those of
`AMQP_QUEUE_TYPE=classic`; with `quorum`, every durable queue also has
`x-queue-type: quorum` (the exclusive ones stay classic).
"""


def message_id(model: type[BaseModel]) -> str:
    return model.__name__


def reply_id(command: type[Command[Any]]) -> str:
    return f"{command.__name__}Reply"


def queue_channel_id(queue: Queue) -> str:
    return f"queue.{queue.name}"


def command_channel_id(command: type[Command[Any]]) -> str:
    return f"command.{command.routing_key}"


def event_channel_id(event: type[Event]) -> str:
    return f"event.{event.routing_key}"


def build_asyncapi() -> Json:
    """The AsyncAPI 3.0 document of the commands, replies and events on RabbitMQ."""
    commands = sorted(COMMANDS, key=routing_key)
    events = sorted(EVENTS, key=routing_key)
    carried = {message for queue in QUEUES for message in queue.carries}
    others = sorted(carried - {*commands, *events, Reply}, key=message_id)
    schemas = collect_schemas(_asyncapi_model_uses(commands, events, others))
    _add_header_schemas(schemas)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "humantask messaging",
            "version": API_VERSION,
            "description": _ASYNCAPI_INFO_DESCRIPTION,
        },
        "defaultContentType": JSON_MEDIA_TYPE,
        "servers": {
            "rabbitmq": {
                "host": "localhost:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The broker named by `AMQP_URL`.",
            },
        },
        "channels": {
            **{command_channel_id(c): _command_channel(c) for c in commands},
            **{event_channel_id(e): _event_channel(e) for e in events},
            **{queue_channel_id(q): _queue_channel(q, commands) for q in QUEUES},
        },
        "operations": {
            **_send_command_operations(commands),
            **_publish_event_operations(events),
            **_direct_send_operations(),
            **_receive_operations(),
        },
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "messages": {
                **{message_id(c): _command_message(c, schemas) for c in commands},
                "Reply": _reply_message("Reply", "The answer to any command.", schemas.ref(Reply)),
                **{reply_id(c): _typed_reply_message(c, schemas) for c in commands},
                **{message_id(e): _event_message(e, schemas) for e in events},
                **{message_id(m): _other_message(m, schemas) for m in others},
            },
            "correlationIds": {
                "command": {
                    "description": "The AMQP `correlation_id` property: a reply carries its "
                    "command's.",
                    "location": "$message.header#/correlation_id",
                },
            },
        },
    }


def _asyncapi_model_uses(
    commands: list[type[Command[Any]]], events: list[type[Event]], others: list[type[BaseModel]]
) -> list[ModelUse]:
    uses: list[ModelUse] = [(command, "validation") for command in commands]
    uses.append((Reply, "serialization"))
    uses.extend((c.result_type, "serialization") for c in commands)
    uses.extend((wire_model(event), "serialization") for event in events)
    uses.extend((other, "serialization") for other in others)
    return uses


def _add_header_schemas(schemas: Schemas) -> None:
    request_id = {
        "type": "string",
        "description": "Follows a task from the HTTP request to the callback; may be empty.",
    }
    schemas.add(
        TRACED_HEADERS_SCHEMA,
        {
            "type": "object",
            "properties": {REQUEST_ID_HEADER: request_id},
        },
    )
    schemas.add(
        COMMAND_HEADERS_SCHEMA,
        {
            "type": "object",
            "properties": {
                REQUEST_ID_HEADER: dict(request_id),
                DEADLINE_HEADER: {
                    "type": "integer",
                    "description": "Unix milliseconds after which nobody waits for the "
                    "reply; a later command is dropped unanswered.",
                },
            },
            "required": [REQUEST_ID_HEADER, DEADLINE_HEADER],
        },
    )


def _ref(*parts: str) -> Json:
    """A `$ref` to `#/parts/...`, escaping `/` and `~` in each part (JSON Pointer)."""
    escaped = (part.replace("~", "~0").replace("/", "~1") for part in parts)
    return {"$ref": "#/" + "/".join(escaped)}


def _message_ref(model: type[BaseModel]) -> Json:
    return _ref("components", "messages", message_id(model))


def _amqp_bindings(binding: Json) -> Json:
    return {"amqp": {**binding, "bindingVersion": AMQP_BINDING_VERSION}}


def _routing_key_bindings(exchange: Exchange) -> Json:
    """A channel that is a routing key on an exchange (AMQP binding `is: routingKey`)."""
    return _amqp_bindings(
        {
            "is": "routingKey",
            "exchange": {
                "name": exchange.name,
                "type": exchange.type,
                "durable": True,
                "autoDelete": False,
                "vhost": "/",
            },
        }
    )


def _command_channel(command: type[Command[Any]]) -> Json:
    queue = command_queue(command)
    assert queue.exchange is not None
    return {
        "address": command.routing_key,
        "title": f"Command {command.routing_key}",
        "description": f"Routed by `{queue.exchange.name}` into `{queue.name}`.",
        "messages": {message_id(command): _message_ref(command)},
        "bindings": _routing_key_bindings(queue.exchange),
    }


def _event_channel(event: type[Event]) -> Json:
    queues = [q.name for q in QUEUES if event in q.carries and q.exchange == EVENTS_EXCHANGE]
    where = ", ".join(f"`{name}`" for name in queues) or "no queue: nobody consumes it yet"
    return {
        "address": event.routing_key,
        "title": f"Event {event.routing_key}",
        "description": f"Published on `{EVENTS_EXCHANGE.name}`, routed into {where}.",
        "messages": {message_id(event): _message_ref(event)},
        "bindings": _routing_key_bindings(EVENTS_EXCHANGE),
    }


def _bound(queue: Queue) -> str:
    if queue.exchange is None:
        return "Bound to no exchange: messages reach it through the default exchange."
    keys = ", ".join(f"`{key}`" for key in queue.routing_keys)
    return f"Bound to `{queue.exchange.name}` with {keys}."


def _services(services: tuple[str, ...]) -> str:
    return ", ".join(services) or "nobody"


def _queue_channel(queue: Queue, commands: list[type[Command[Any]]]) -> Json:
    dead_letter = queue.dead_letter_queue
    description = [
        queue.description,
        _bound(queue),
        f"Consumed by: {_services(queue.consumers)}. Published to by: "
        f"{_services(queue.publishers)}.",
    ]
    if dead_letter is not None:
        description.append(f"Dead-letters into `{dead_letter.name}`.")
    messages = {message_id(m): _message_ref(m) for m in queue.carries}
    if queue == REPLY_QUEUE:
        messages.update(
            {reply_id(c): _ref("components", "messages", reply_id(c)) for c in commands}
        )
    channel: Json = {
        "address": queue.name,
        "title": f"Queue {queue.name}",
        "description": " ".join(description),
        "messages": messages,
    }
    if queue.parameters:
        channel["parameters"] = {
            name: {"description": text} for name, text in queue.parameters.items()
        }
    channel["bindings"] = _amqp_bindings(
        {
            "is": "queue",
            "queue": {
                "name": queue.name,
                "durable": not queue.per_process,
                "exclusive": queue.per_process,
                "autoDelete": queue.per_process,
                "vhost": "/",
            },
            **queue_arguments(queue, "classic"),
        }
    )
    return channel


def _command_reply(command: type[Command[Any]]) -> Json:
    channel = queue_channel_id(REPLY_QUEUE)
    return {
        "address": {
            "description": "The command's AMQP `reply_to` property.",
            "location": "$message.header#/reply_to",
        },
        "channel": _ref("channels", channel),
        "messages": [_ref("channels", channel, "messages", reply_id(command))],
    }


def _send_command_operations(commands: list[type[Command[Any]]]) -> Json:
    operations: Json = {}
    for command in commands:
        channel = command_channel_id(command)
        for sender in sorted(command.senders):
            operations[f"{sender}.send.{command.routing_key}"] = {
                "action": "send",
                "channel": _ref("channels", channel),
                "title": f"{sender} sends {command.routing_key}",
                "messages": [_ref("channels", channel, "messages", message_id(command))],
                "reply": _command_reply(command),
                "bindings": _amqp_bindings({"deliveryMode": 2, "mandatory": True}),
            }
    return operations


def _publish_event_operations(events: list[type[Event]]) -> Json:
    """Whoever publishes to the queues bound to the events exchange publishes events."""
    publishers = sorted({p for q in QUEUES if q.exchange == EVENTS_EXCHANGE for p in q.publishers})
    operations: Json = {}
    for event in events:
        channel = event_channel_id(event)
        for publisher in publishers:
            operations[f"{publisher}.send.{event.routing_key}"] = {
                "action": "send",
                "channel": _ref("channels", channel),
                "title": f"{publisher} publishes {event.routing_key}",
                "messages": [_ref("channels", channel, "messages", message_id(event))],
                "bindings": _amqp_bindings({"deliveryMode": 2, "mandatory": False}),
            }
    return operations


def _direct_send_operations() -> Json:
    """Messages published straight into a queue (through the default exchange) other than
    replies, which are the commands' `reply`."""
    operations: Json = {}
    for queue in QUEUES:
        if queue.exchange is not None or queue == REPLY_QUEUE:
            continue
        channel = queue_channel_id(queue)
        for publisher in queue.publishers:
            for message in queue.carries:
                operations[f"{publisher}.send.{routing_key(message)}"] = {
                    "action": "send",
                    "channel": _ref("channels", channel),
                    "title": f"{publisher} sends {routing_key(message)} to {queue.name}",
                    "messages": [_ref("channels", channel, "messages", message_id(message))],
                    "bindings": _amqp_bindings({"deliveryMode": 2, "mandatory": True}),
                }
    return operations


def _receive_operations() -> Json:
    """Each consumer of a queue receives what it carries (replies: see `_command_reply`)."""
    operations: Json = {}
    for queue in QUEUES:
        if queue == REPLY_QUEUE:
            continue
        channel = queue_channel_id(queue)
        for consumer in queue.consumers:
            for message in queue.carries:
                operation: Json = {
                    "action": "receive",
                    "channel": _ref("channels", channel),
                    "title": f"{consumer} handles {routing_key(message)} from {queue.name}",
                    "messages": [_ref("channels", channel, "messages", message_id(message))],
                }
                if issubclass(message, Command):
                    operation["reply"] = _command_reply(message)
                operation["bindings"] = _amqp_bindings({"ack": not queue.per_process})
                operations[f"{consumer}.receive.{routing_key(message)}"] = operation
    return operations


def _docstring_summary(model: type[BaseModel]) -> str | None:
    doc = model.__doc__
    return doc.strip().split("\n\n", 1)[0].replace("\n", " ") if doc else None


def _with_summary(message: Json, model: type[BaseModel]) -> Json:
    summary = _docstring_summary(model)
    if summary:
        message["summary"] = summary
    return message


def _command_message(command: type[Command[Any]], schemas: Schemas) -> Json:
    message: Json = {"name": command.routing_key, "title": command.__name__}
    _with_summary(message, command)
    message.update(
        {
            "contentType": JSON_MEDIA_TYPE,
            "headers": {"$ref": SCHEMA_REF_TEMPLATE.format(model=COMMAND_HEADERS_SCHEMA)},
            "payload": schemas.ref(command, "validation"),
            "correlationId": _ref("components", "correlationIds", "command"),
            "bindings": _amqp_bindings({"messageType": command.routing_key}),
        }
    )
    return message


def _reply_message(name: str, summary: str, payload: Json) -> Json:
    return {
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": JSON_MEDIA_TYPE,
        "headers": {"$ref": SCHEMA_REF_TEMPLATE.format(model=TRACED_HEADERS_SCHEMA)},
        "payload": payload,
        "correlationId": _ref("components", "correlationIds", "command"),
    }


def _typed_reply_message(command: type[Command[Any]], schemas: Schemas) -> Json:
    """The `Reply` to one command, its `result` narrowed to the command's result model."""
    result = {"anyOf": [schemas.ref(command.result_type), {"type": "null"}]}
    payload = {"allOf": [schemas.ref(Reply), {"type": "object", "properties": {"result": result}}]}
    return _reply_message(reply_id(command), f"The reply to {command.routing_key}.", payload)


def _event_message(event: type[Event], schemas: Schemas) -> Json:
    message: Json = {"name": event.routing_key, "title": event.__name__}
    _with_summary(message, event)
    message.update(
        {
            "contentType": JSON_MEDIA_TYPE,
            "headers": {"$ref": SCHEMA_REF_TEMPLATE.format(model=TRACED_HEADERS_SCHEMA)},
            "payload": schemas.ref(wire_model(event)),
            "bindings": _amqp_bindings({"messageType": event.routing_key}),
        }
    )
    return message


def _other_message(model: type[BaseModel], schemas: Schemas) -> Json:
    message: Json = {"name": routing_key(model), "title": model.__name__}
    _with_summary(message, model)
    message.update(
        {
            "contentType": JSON_MEDIA_TYPE,
            "headers": {"$ref": SCHEMA_REF_TEMPLATE.format(model=TRACED_HEADERS_SCHEMA)},
            "payload": schemas.ref(model),
            "bindings": _amqp_bindings({"messageType": routing_key(model)}),
        }
    )
    return message
