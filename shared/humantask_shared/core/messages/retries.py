"""The notifier's messages to itself: an attempt of a callback's delivery coming due.

A delivery is named by its subject (the task whose callback it is) and its number (1:
the first delivery, on completion; 2, 3...: redeliveries asked for later). `delivery`
defaults to 1, so a retry queued before redeliveries existed still parses, and a
notifier that knew only `task_id` reads the first delivery's.
"""

from __future__ import annotations

from pydantic import Field

from .base import Message


class RetryDue(Message):
    """Whose callback to try again: the body of a retry, once its delay has passed."""

    routing_key = "callback.retry_due"

    # The delivery's key: the task's id for its first completion (so retries queued
    # before later completions were called back still parse), `<task id>.<n>` for its
    # n-th, `batch-<batch id>` for a batch's callback (the notifier's `domain.delivery_key`).
    task_id: str
    delivery: int = Field(default=1, ge=1)


class RedeliveryDue(Message):
    """A redelivery was asked for (by the customer or the operator): its first attempt is
    due now. Its delivery record is written before this is published."""

    routing_key = "callback.redelivery_due"

    task_id: str
    delivery: int = Field(ge=2)
