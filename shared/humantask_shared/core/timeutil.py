"""Timestamps in the API's format: UTC, millisecond precision, `Z` suffix."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, truncated to milliseconds: what MongoDB stores is what the API shows."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_timestamp(moment: datetime) -> str:
    """`2016-06-23T09:09:34.752Z`, the API's format."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 with or without offset; a naive time is taken as UTC."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def as_utc(moment: datetime) -> datetime:
    """MongoDB hands back naive datetimes that are UTC; make that explicit."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
