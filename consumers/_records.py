"""Where a record came from: topic, partition, offset."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Position"]


@dataclass(frozen=True, slots=True)
class Position:
    """The place of one record in the log."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int = 0
