"""The one message a service sends itself: a callback's retry coming due (the notifier)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class RetryDue(BaseModel):
    """Whose callback to try again: the body of a retry, once its delay has passed."""

    model_config = ConfigDict(frozen=True)

    # Its AMQP `type` property.
    message_type: ClassVar[str] = "callback.retry_due"

    task_id: str
