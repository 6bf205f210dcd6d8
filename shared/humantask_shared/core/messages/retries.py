"""The one message a service sends itself: a callback's retry coming due (the notifier)."""

from __future__ import annotations

from .base import Message


class RetryDue(Message):
    """Whose callback to try again: the body of a retry, once its delay has passed."""

    routing_key = "callback.retry_due"

    task_id: str
