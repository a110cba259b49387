"""Timestamps as securexport writes them: RFC 3339, UTC, whole seconds, ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(moment: datetime) -> str:
    """``2026-06-01T12:00:00Z``; an aware datetime in any zone (a naive one is refused)."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must carry a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_unix(timestamp: int) -> str:
    """A Unix time (seconds) as :func:`rfc3339` text."""
    return rfc3339(datetime.fromtimestamp(timestamp, UTC))


def parse_rfc3339(text: str) -> datetime:
    """The inverse of :func:`rfc3339` (``YYYY-MM-DDTHH:MM:SSZ`` only); ValueError otherwise."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
