"""AsyncAPI 3.0: what the services say to each other over RabbitMQ."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from humantask_shared.messages.commands import COMMANDS, Command, Reply
from humantask_shared.messages.events import EVENTS, Event
from humantask_shared.messaging import (
    COMMANDS_EXCHANGE,
    DEAD_LETTER_ARGUMENTS,
    DEAD_LETTER_EXCHANGE,
    DEADLINE_HEADER,
    EVENTS_EXCHANGE,
    NOTIFIER_COMMANDS_EXCHANGE,
    NOTIFIER_COMMANDS_QUEUE,
    REQUEST_ID_HEADER,
    TASKSTORE_COMMANDS_QUEUE,
)

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


@dataclass(frozen=True)
class CommandRoute:
    """Who sends a command, who answers it, the exchange it is published on and the
    queue it waits in meanwhile."""

    sender: str
    handler: str
    queue: str
    exchange: str = COMMANDS_EXCHANGE


COMMAND_SENDER = "gateway"
COMMAND_HANDLER = "taskstore"
# Where a command goes unless COMMAND_HANDLERS says otherwise; its sender is the one of
# `Command.senders` (which the receiver enforces).
DEFAULT_COMMAND_ROUTE = (COMMAND_HANDLER, TASKSTORE_COMMANDS_QUEUE, COMMANDS_EXCHANGE)
COMMAND_HANDLERS: dict[str, tuple[str, str, str]] = {
    "callback.list": ("notifier", NOTIFIER_COMMANDS_QUEUE, NOTIFIER_COMMANDS_EXCHANGE),
}
EVENT_PUBLISHER = "taskstore"
# Who consumes which events (routing keys). Add a service here when it starts consuming.
EVENT_SUBSCRIBERS: dict[str, tuple[str, ...]] = {
    "gateway": ("credential.changed",),
    "notifier": ("credential.changed", "task.completed"),
}
REPLY_QUEUE_ADDRESS = "{owner}.replies.{id}"  # see RpcClient.start in messaging.py

COMMAND_HEADERS_SCHEMA = "CommandHeaders"
TRACED_HEADERS_SCHEMA = "TracedHeaders"
REPLIES_CHANNEL = "replies"

_ASYNCAPI_INFO_DESCRIPTION = f"""\
Messages between the humantask services on RabbitMQ.

Commands go from the {COMMAND_SENDER} to the {COMMAND_HANDLER} (unless their operations
say otherwise) on the direct exchange `{COMMANDS_EXCHANGE}` (the notifier's on
`{NOTIFIER_COMMANDS_EXCHANGE}`), routed by command name into the durable queue of the
service that answers them (`{TASKSTORE_COMMANDS_QUEUE}`, `{NOTIFIER_COMMANDS_QUEUE}`).
Each is answered with a `Reply` on the caller's own reply queue (the command's
`reply_to`, matched by `correlation_id`). A command expires when its caller stops
waiting (`{DEADLINE_HEADER}`, and the AMQP expiration). Every command carries the AMQP
`user_id` of its sender's broker user (the broker refuses any other), and its receiver
refuses it, answering `unauthorized`, unless that user is one allowed to send it.

Events go from the {EVENT_PUBLISHER} to the topic exchange `{EVENTS_EXCHANGE}`,
persistent, routed by event name. Consumers deduplicate on `event_id`. Every gateway and
notifier hears `credential.changed` on an exclusive, auto-delete queue of its own
(`<service>.credentials.<id>`): a fanout per process, not competing consumers.

A message a service cannot handle is dead-lettered through `{DEAD_LETTER_EXCHANGE}`
into `<queue>.dead-letter`, a bounded queue (the oldest messages are dropped past its
length, and each expires after a week); a command whose handler failed is answered with
an `unavailable` error first, so its caller never waits for its timeout.
"""


def command_id(command: type[Command]) -> str:
    return command.__name__


def reply_id(command: type[Command]) -> str:
    return f"{command.__name__}Reply"


def event_id(event: type[Event]) -> str:
    return event.__name__


def build_asyncapi() -> Json:
    """The AsyncAPI 3.0 document of the commands, replies and events on RabbitMQ."""
    commands = [COMMANDS[name] for name in sorted(COMMANDS)]
    events = [EVENTS[key] for key in sorted(EVENTS)]
    schemas = collect_schemas(_asyncapi_model_uses(commands, events))
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
            **{f"command.{c.name}": _command_channel(c) for c in commands},
            **_command_queue_channels(commands),
            REPLIES_CHANNEL: _replies_channel(commands),
            **{f"event.{e.routing_key}": _event_channel(e) for e in events},
        },
        "operations": {
            **{
                f"{command_route(c).sender}.send.{c.name}": _send_command_operation(c)
                for c in commands
            },
            **{
                f"{command_route(c).handler}.receive.{c.name}": _receive_command_operation(c)
                for c in commands
            },
            **{
                f"{EVENT_PUBLISHER}.send.{e.routing_key}": _publish_event_operation(e)
                for e in events
            },
            **_subscriber_operations(),
        },
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "messages": {
                **{command_id(c): _command_message(c, schemas) for c in commands},
                "Reply": _reply_message("Reply", "The answer to any command.", schemas.ref(Reply)),
                **{reply_id(c): _typed_reply_message(c, schemas) for c in commands},
                **{event_id(e): _event_message(e, schemas) for e in events},
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
    commands: list[type[Command]], events: list[type[Event]]
) -> list[ModelUse]:
    uses: list[ModelUse] = [(command, "validation") for command in commands]
    uses.append((Reply, "serialization"))
    uses.extend((c.result_model, "serialization") for c in commands if c.result_model is not None)
    uses.extend((event, "serialization") for event in events)
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


def _amqp_exchange(name: str, kind: str) -> Json:
    return {"name": name, "type": kind, "durable": True, "autoDelete": False, "vhost": "/"}


def _amqp_queue(
    name: str, durable: bool = True, exclusive: bool = False, auto_delete: bool = False
) -> Json:
    return {
        "name": name,
        "durable": durable,
        "exclusive": exclusive,
        "autoDelete": auto_delete,
        "vhost": "/",
    }


def _amqp_bindings(binding: Json) -> Json:
    return {"amqp": {**binding, "bindingVersion": AMQP_BINDING_VERSION}}


def _routing_key_bindings(exchange: str, kind: str) -> Json:
    """A channel that is a routing key on an exchange (AMQP binding `is: routingKey`)."""
    return _amqp_bindings({"is": "routingKey", "exchange": _amqp_exchange(exchange, kind)})


def _queue_bindings(queue: Json, arguments: Json | None = None) -> Json:
    """A channel that is a queue; `arguments` are its `x-` queue arguments."""
    return _amqp_bindings({"is": "queue", "queue": queue, **(arguments or {})})


def command_route(command: type[Command]) -> CommandRoute:
    handler, queue, exchange = COMMAND_HANDLERS.get(command.name, DEFAULT_COMMAND_ROUTE)
    (sender,) = command.senders  # one sender each
    return CommandRoute(sender, handler, queue, exchange)


def _queue_channel_id(queue: str) -> str:
    return f"queue.{queue}"


def _command_channel(command: type[Command]) -> Json:
    return {
        "address": command.name,
        "title": f"Command {command.name}",
        "description": f"Routed by `{command_route(command).exchange}` into "
        f"`{command_route(command).queue}`.",
        "messages": {command_id(command): _ref("components", "messages", command_id(command))},
        "bindings": _routing_key_bindings(command_route(command).exchange, "direct"),
    }


def _command_queue_channels(commands: list[type[Command]]) -> Json:
    """Each command queue and its dead-letter queue, with the commands routed there."""
    channels: Json = {}
    queues: dict[str, list[type[Command]]] = {}
    for command in commands:
        queues.setdefault(command_route(command).queue, []).append(command)
    for queue, routed in queues.items():
        handler = command_route(routed[0]).handler
        channels[_queue_channel_id(queue)] = _commands_queue_channel(
            queue, handler, routed, command_route(routed[0]).exchange
        )
        channels[_queue_channel_id(f"{queue}.dead-letter")] = _dead_letter_channel(
            queue, handler, routed
        )
    return channels


def _commands_queue_channel(
    queue: str, handler: str, commands: list[type[Command]], exchange: str
) -> Json:
    return {
        "address": queue,
        "title": f"The {handler}'s command queue",
        "description": f"Bound to `{exchange}` with the name of each command the "
        f"{handler} answers; competing consumers. Dead-letters into "
        f"`{queue}.dead-letter`.",
        "messages": {
            command_id(c): _ref("components", "messages", command_id(c)) for c in commands
        },
        "bindings": _queue_bindings(
            _amqp_queue(queue),
            arguments={
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                "x-dead-letter-routing-key": queue,
            },
        ),
    }


def _dead_letter_channel(queue: str, handler: str, commands: list[type[Command]]) -> Json:
    dead_letter = f"{queue}.dead-letter"
    return {
        "address": dead_letter,
        "title": f"Commands the {handler} could not handle",
        "description": f"Bound to `{DEAD_LETTER_EXCHANGE}` with routing key "
        f"`{queue}`; kept for inspection, never consumed, bounded (the "
        "oldest dropped first, each kept a week at most).",
        "messages": {
            command_id(c): _ref("components", "messages", command_id(c)) for c in commands
        },
        "bindings": _queue_bindings(
            _amqp_queue(dead_letter), arguments=dict(DEAD_LETTER_ARGUMENTS)
        ),
    }


def _replies_channel(commands: list[type[Command]]) -> Json:
    return {
        "address": REPLY_QUEUE_ADDRESS,
        "title": "A caller's reply queue",
        "description": "Exclusive to one caller; replies reach it through the default exchange.",
        "parameters": {
            "owner": {"description": "The service waiting for replies.", "examples": ["gateway"]},
            "id": {"description": "A random hex id, unique per connection."},
        },
        "messages": {
            "Reply": _ref("components", "messages", "Reply"),
            **{reply_id(c): _ref("components", "messages", reply_id(c)) for c in commands},
        },
        "bindings": _queue_bindings(
            _amqp_queue(REPLY_QUEUE_ADDRESS, durable=False, exclusive=True, auto_delete=True)
        ),
    }


def _event_channel(event: type[Event]) -> Json:
    return {
        "address": event.routing_key,
        "title": f"Event {event.routing_key}",
        "messages": {event_id(event): _ref("components", "messages", event_id(event))},
        "bindings": _routing_key_bindings(EVENTS_EXCHANGE, "topic"),
    }


def _command_reply(command: type[Command]) -> Json:
    return {
        "address": {
            "description": "The command's AMQP `reply_to` property.",
            "location": "$message.header#/reply_to",
        },
        "channel": _ref("channels", REPLIES_CHANNEL),
        "messages": [_ref("channels", REPLIES_CHANNEL, "messages", reply_id(command))],
    }


def _send_command_operation(command: type[Command]) -> Json:
    channel = f"command.{command.name}"
    return {
        "action": "send",
        "channel": _ref("channels", channel),
        "title": f"{command_route(command).sender} sends {command.name}",
        "messages": [_ref("channels", channel, "messages", command_id(command))],
        "reply": _command_reply(command),
        "bindings": _amqp_bindings({"deliveryMode": 2, "mandatory": True}),
    }


def _receive_command_operation(command: type[Command]) -> Json:
    route = command_route(command)
    queue_channel = _queue_channel_id(route.queue)
    return {
        "action": "receive",
        "channel": _ref("channels", queue_channel),
        "title": f"{route.handler} handles {command.name}",
        "messages": [_ref("channels", queue_channel, "messages", command_id(command))],
        "reply": _command_reply(command),
        "bindings": _amqp_bindings({"ack": True}),
    }


def _publish_event_operation(event: type[Event]) -> Json:
    channel = f"event.{event.routing_key}"
    return {
        "action": "send",
        "channel": _ref("channels", channel),
        "title": f"{EVENT_PUBLISHER} publishes {event.routing_key}",
        "messages": [_ref("channels", channel, "messages", event_id(event))],
        "bindings": _amqp_bindings({"deliveryMode": 2, "mandatory": False}),
    }


def _subscriber_operations() -> Json:
    operations: Json = {}
    for service, routing_keys in sorted(EVENT_SUBSCRIBERS.items()):
        for routing_key in routing_keys:
            if routing_key not in EVENTS:
                raise ValueError(f"{service} subscribes to {routing_key!r}, not in EVENTS")
            channel = f"event.{routing_key}"
            operations[f"{service}.receive.{routing_key}"] = {
                "action": "receive",
                "channel": _ref("channels", channel),
                "title": f"{service} consumes {routing_key}",
                "messages": [_ref("channels", channel, "messages", event_id(EVENTS[routing_key]))],
                "bindings": _amqp_bindings({"ack": True}),
            }
    return operations


def _docstring_summary(model: type[BaseModel]) -> str | None:
    doc = model.__doc__
    return doc.strip().split("\n\n", 1)[0].replace("\n", " ") if doc else None


def _with_summary(message: Json, model: type[BaseModel]) -> Json:
    summary = _docstring_summary(model)
    if summary:
        message["summary"] = summary
    return message


def _command_message(command: type[Command], schemas: Schemas) -> Json:
    message: Json = {"name": command.name, "title": command.__name__}
    _with_summary(message, command)
    message.update(
        {
            "contentType": JSON_MEDIA_TYPE,
            "headers": {"$ref": SCHEMA_REF_TEMPLATE.format(model=COMMAND_HEADERS_SCHEMA)},
            "payload": schemas.ref(command, "validation"),
            "correlationId": _ref("components", "correlationIds", "command"),
            "bindings": _amqp_bindings({"messageType": command.name}),
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


def _typed_reply_message(command: type[Command], schemas: Schemas) -> Json:
    """The `Reply` to one command, its `result` narrowed to the command's result model."""
    result: Json = {"type": "null"}
    if command.result_model is not None:
        result = {"anyOf": [schemas.ref(command.result_model), {"type": "null"}]}
    payload = {"allOf": [schemas.ref(Reply), {"type": "object", "properties": {"result": result}}]}
    return _reply_message(reply_id(command), f"The reply to {command.name}.", payload)


def _event_message(event: type[Event], schemas: Schemas) -> Json:
    message: Json = {"name": event.routing_key, "title": event.__name__}
    _with_summary(message, event)
    message.update(
        {
            "contentType": JSON_MEDIA_TYPE,
            "headers": {"$ref": SCHEMA_REF_TEMPLATE.format(model=TRACED_HEADERS_SCHEMA)},
            "payload": schemas.ref(event),
            "bindings": _amqp_bindings({"messageType": event.routing_key}),
        }
    )
    return message
