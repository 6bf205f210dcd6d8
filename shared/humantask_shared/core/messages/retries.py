"""The one message a service sends itself: a callback's retry coming due (the notifier)."""

from __future__ import annotations

from .base import Message


class RetryDue(Message):
    """Whose callback to try again: the body of a retry, once its delay has passed."""

    routing_key = "callback.retry_due"

    # The delivery's key: the task's id for its first completion (so retries queued
    # before later completions were called back still parse), `<task id>.<n>` for its
    # n-th, `batch-<batch id>` for a batch's callback (the notifier's `domain.delivery_key`).
    task_id: str
