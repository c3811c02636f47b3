"""When the audit group may call a held event's predecessor missing: event time, not arrival.

The category topics are co-partitioned: a session's events are all in partition N of each
topic. Each partition has a *stream time*, the latest event time (``occurred_at``) read from it
(Kafka Streams' term). A held event is overdue once every partition N that is still delivering
has moved more than the grace period past it in event time: the predecessor, were it anywhere in
those partitions, would have been read by then. So a group that lags on one topic (a rebuild, a
catch-up) waits for that topic instead of declaring false gaps, and the same events give the
same gaps however fast each topic is read.

A partition that has delivered nothing for the grace period of wall-clock time is caught up:
it no longer holds the decision back. When none of partition N's topics delivered anything for
that long (a quiet group), every event held there is overdue: an auditor is not left at
``pending`` for ever. Kafka Streams has the same escape, ``max.task.idle.ms``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

__all__ = ["StreamClock"]


class StreamClock:
    """The stream time of each partition, and from it, per partition number, a cutoff."""

    def __init__(self, grace_s: float, clock: Callable[[], float]) -> None:
        """Hold events ``grace_s`` seconds of event time; ``clock`` is the wall clock (seconds)."""
        self.grace_s = grace_s
        self._clock = clock
        self._stream_ms: dict[tuple[str, int], int] = {}
        self._delivered_at: dict[tuple[str, int], float] = {}  # wall clock of the last delivery
        self._topics: set[str] = set()
        self._assigned: Callable[[], Collection[int]] | None = None

    def follow(
        self, topics: Collection[str], assigned: Callable[[], Collection[int]] | None
    ) -> None:
        """Decide over these topics (and any other seen) and the numbers ``assigned()`` gives.

        ``assigned`` None: over the partition numbers seen so far (a view applied by hand).
        """
        self._topics = set(topics)
        self._assigned = assigned

    def assignment(self) -> frozenset[int] | None:
        """The partition numbers assigned now; None for a view applied by hand."""
        return None if self._assigned is None else frozenset(self._assigned())

    def now(self) -> float:
        """The wall clock."""
        return self._clock()

    def observe(self, topic: str, partition: int, occurred_ms: int, now: float) -> None:
        """An event read from ``topic``'s ``partition``, at wall-clock ``now``."""
        key = (topic, partition)
        if occurred_ms > self._stream_ms.get(key, -1):
            self._stream_ms[key] = occurred_ms
        self._delivered_at[key] = now
        self._topics.add(topic)

    def cutoffs(self, now: float) -> dict[int, float]:
        """Per partition number: a held event that occurred before it (ms) is overdue.

        ``math.inf`` for a partition number none of whose topics delivered within the grace
        period; partition numbers with nothing overdue yet are left out.
        """
        numbers = (
            {p for _, p in self._delivered_at} if self._assigned is None else set(self._assigned())
        )
        # A partition that just came (a start, a rebalance) is waited for a grace period, from now.
        for key in [key for key in self._delivered_at if key[1] not in numbers]:
            del self._delivered_at[key]
        cutoffs: dict[int, float] = {}
        for number in numbers:
            delivering = [
                self._stream_ms.get((topic, number), -math.inf)
                for topic in self._topics
                if now - self._delivered_at.setdefault((topic, number), now) < self.grace_s
            ]
            watermark = min(delivering, default=math.inf)
            if watermark > -math.inf:
                cutoffs[number] = watermark - self.grace_s * 1000
        return cutoffs
