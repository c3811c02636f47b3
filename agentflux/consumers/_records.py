"""Where a record came from: topic, partition, offset."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Position"]


class Position(NamedTuple):
    """The place of one record in the log (a tuple: made for every record a view applies)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int = 0
