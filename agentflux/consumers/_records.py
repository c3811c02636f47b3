"""Where a record came from: topic, partition, offset."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["Position", "millis"]


class Position(NamedTuple):
    """The place of one record in the log (a tuple: made for every record a view applies)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int = 0


def millis(at: datetime) -> int:
    """An event time as the views store it: milliseconds since the epoch."""
    return int(at.timestamp() * 1000)
