"""The message vocabulary: what one service sends another over RabbitMQ.

- `Message`: anything sent. `routing_key` is its one name: the AMQP `type` property of
  every message of the class and, on an exchange that routes by it, its routing key.
- `Command[Result]`: an order to one service, answered with a `Result` (request/reply).
  `CommandSender.send(command)` returns that result, typed, or raises the receiver's
  domain error. Its `senders` are the services allowed to send it; `persistent` says
  whether the broker writes it to disk.
- `Event`: a fact, in the past tense, published for whoever listens. Its stamp (id,
  time, trace) is added as it leaves, never when it is built (`envelope.py`).

Which queue carries which message, and so which service answers or hears it, is the
topology's to say (`core/topology.py`), once.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar, cast

from pydantic import BaseModel, ConfigDict

# Who sends commands; each maps to a broker user (`broker_access.BrokerIdentities`).
Sender = Literal["gateway", "notifier", "admin"]

ResultT = TypeVar("ResultT", bound=BaseModel)


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    routing_key: ClassVar[str]


class Command(Message, Generic[ResultT]):
    """A command answered with a `ResultT`: declare it as `class Name(Command[Result])`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # What the receiver answers with: the `Result` of `Command[Result]`.
    result_type: ClassVar[type[BaseModel]]
    # Who may send it; the receiver refuses it from anyone else.
    senders: ClassVar[frozenset[Sender]] = frozenset({"gateway"})
    # Whether the broker writes it to disk. A query lost in a broker crash costs only
    # the caller's retry (it gets a 503), so queries skip the disk.
    persistent: ClassVar[bool] = True

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        generic = cls.__pydantic_generic_metadata__
        if generic["origin"] is Command and generic["args"]:  # the class `Command[Result]`
            (result,) = generic["args"]
            if isinstance(result, type) and issubclass(result, BaseModel):
                cls.result_type = result
        elif "routing_key" in vars(cls) and not hasattr(cls, "result_type"):
            raise TypeError(f"declare it as `class {cls.__name__}(Command[ItsResult])`")

    def read_result(self, value: Any) -> ResultT:
        """A reply's `result` as this command's result."""
        return cast(ResultT, self.result_type.model_validate(value))


class Event(Message):
    request_id: str | None = None


class CommandSender(Protocol):
    """Runs commands in the services that answer them (`runtime.command_client`; fakes
    in tests)."""

    async def send(self, command: Command[ResultT]) -> ResultT:
        """The command's result; the receiving service's domain errors are raised here."""
        ...
