"""Configuration from the environment, one settings object per service
(docs/reference/contract.md §2)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..core.broker_access import BrokerIdentities, broker_user
from ..core.placeholders import refuse_placeholder_in_url
from ..core.topology import QueueType


class CommonSettings(BaseSettings):
    """What every service reads. Each service's settings extend this."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    amqp_url: str = "amqp://guest:guest@localhost:5672/"
    # The type of the durable queues (work queues, dead letters, the retry delay):
    # `quorum` replicates them across a cluster's nodes. See docs/operations/upgrading.md.
    amqp_queue_type: QueueType = "classic"
    mongodb_url: str = "mongodb://localhost:27017/humantask"
    log_level: str = "INFO"
    # Seconds to let in-flight work finish after SIGTERM before giving up on it.
    shutdown_grace_seconds: float = Field(default=25.0, gt=0)

    @field_validator("amqp_url", "mongodb_url")
    @classmethod
    def _no_placeholder_password(cls, url: str, info: ValidationInfo) -> str:
        """A service does not start with .env.example's `change-me` as its password."""
        refuse_placeholder_in_url(str(info.field_name).upper(), url)
        return url

    @property
    def broker_user(self) -> str:
        """The RabbitMQ user AMQP_URL logs in as (the `user_id` of what this sends)."""
        return broker_user(self.amqp_url)

    @property
    def mongodb_database(self) -> str:
        """The path of MONGODB_URL names the database."""
        name = urlsplit(self.mongodb_url).path.lstrip("/")
        return name or "humantask"


class WorkerServiceSettings(CommonSettings):
    """Services that only serve health endpoints over HTTP (task-store, notifier)."""

    health_port: int = Field(default=8081, ge=0, le=65535)
    # How many messages a process works on at once.
    prefetch_count: int = Field(default=32, ge=1, le=1000)
    # The broker users of the services that send commands (one RabbitMQ user per service,
    # see broker_definitions): a command is refused unless its broker-validated `user_id`
    # is one its type allows (broker_access). This service's own user is always allowed.
    gateway_broker_user: str = "humantask-gateway"
    notifier_broker_user: str = "humantask-notifier"
    admin_broker_user: str = "humantask-admin"

    def broker_identities(self) -> BrokerIdentities:
        return BrokerIdentities(
            senders={
                "gateway": self.gateway_broker_user,
                "notifier": self.notifier_broker_user,
                "admin": self.admin_broker_user,
            },
            own_user=broker_user(self.amqp_url),
        )
