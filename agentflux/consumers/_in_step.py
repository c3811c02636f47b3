"""A group's partitions read in step by record time while the group is behind.

A runner that catches up (a rebuild, a restart after downtime) gets from aiokafka whatever each
partition's fetch brings: a topic of small records races ahead of a topic of large ones, so a
session's events reach a view far from the order they were published in. A view that chains
events in publish order (the audit view) then holds a large share of them for a predecessor, and
holding costs a store write and a delete per event.

``InStep`` carries the records of the partitions that are ahead, by record timestamp, of the
slowest partition still behind, until that one catches up; meanwhile the runner pauses every
other partition, so the ones behind that carry nothing (:attr:`InStep.wanted`) get fetched
(aiokafka hands out its buffered records in one fixed partition order up to ``max_records``:
left alone, the partitions at the end of that order wait). Only while the member's partitions
have more than ``behind`` records left to read, in all: at the head of the log (a live group)
nothing is carried, and a partition that stops delivering holds nothing up for longer than the
runner's idle poll, which writes all that is carried. Kafka Streams does the same across a
task's partitions (``max.task.idle.ms``); aiokafka has no such option (checked: 0.14), so it is
here.

Pure: the runner says what was fetched and where each partition ends, writes what
:meth:`InStep.take` gives back and fetches only :attr:`InStep.wanted` next.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from aiokafka import ConsumerRecord, TopicPartition

    from agentflux.consumers._records import Position

__all__ = ["InStep", "Ready"]

Records = list["ConsumerRecord[bytes, bytes]"]
Decoded = list[tuple[Any, "Position"]]


@dataclass(slots=True)
class _Carried:
    records: Records
    decoded: Decoded | None  # None: a record would not decode, the partition goes record by record


@dataclass(slots=True)
class Ready:
    """What to write now."""

    batches: dict[TopicPartition, Records]
    decoded: dict[TopicPartition, Decoded]


class InStep:
    """Records fetched ahead of the slowest partition behind, carried until it catches up."""

    def __init__(self, behind: int) -> None:
        """In step while more than ``behind`` records are left to read."""
        self.behind = behind
        #: The partitions to fetch next (none named: all of them).
        self.wanted: tuple[TopicPartition, ...] = ()
        self._carried: dict[TopicPartition, _Carried] = {}
        self._last_time: dict[TopicPartition, int] = {}  # the last fetched record's timestamp

    @property
    def carrying(self) -> bool:
        """Whether any record is carried."""
        return bool(self._carried)

    def carries(self, tp: TopicPartition) -> bool:
        """Whether records of ``tp`` are carried (its position is past what was written)."""
        return tp in self._carried

    def add(
        self,
        batches: Mapping[TopicPartition, Records],
        decoded: Mapping[TopicPartition, Decoded],
    ) -> None:
        """Carry a fetch: after what each partition carries already, in offset order."""
        for tp, fetched in batches.items():
            carried, records, found = self._carried.get(tp), fetched, decoded.get(tp)
            if carried is not None:
                # A partition given back and read again from its commit repeats records: once.
                last = carried.records[-1].offset
                if records[0].offset <= last:
                    records = [r for r in records if r.offset > last]
                    if found is not None:
                        found = [e for e in found if e[1].offset > last]
                    if not records:
                        continue
                carried.records += records
                carried.decoded = (
                    None if carried.decoded is None or found is None else carried.decoded + found
                )
            else:
                self._carried[tp] = _Carried(list(records), found)
            self._last_time[tp] = records[-1].timestamp

    def take(
        self,
        ends: Mapping[TopicPartition, int | None],
        positions: Mapping[TopicPartition, int | None],
    ) -> Ready:
        """What can be written now: each partition's records up to the pace's record time.

        ``ends``: each assigned partition's end (high watermark, or last stable offset when
        reading committed records); ``positions``: where its next fetched record starts (past
        what is carried). None where not known yet.
        """
        for tp in [tp for tp in self._carried if tp not in ends]:  # taken by a rebalance
            self.drop([tp])
        lags = {
            tp: end - position
            for tp, end in ends.items()
            if end is not None and (position := positions.get(tp)) is not None
        }
        # A partition behind that delivered nothing yet holds everything until it does; so does
        # one whose end is not known yet (its broker has not answered a fetch since the start).
        for tp in ends:
            if tp not in lags:
                lags[tp] = 1 if tp not in self._last_time else 0
        pace = (
            min(self._last_time.get(tp, -math.inf) for tp, lag in lags.items() if lag > 0)
            if sum(lags.values()) > self.behind
            else None
        )
        cuts = {
            tp: len(carried.records) if carried.decoded is None else _cut(carried.records, pace)
            for tp, carried in self._carried.items()
        }
        # The partitions behind whose records carried are all in pace move the pace: fetched.
        self.wanted = (
            ()
            if pace is None
            else tuple(
                tp
                for tp, lag in lags.items()
                if lag > 0 and (tp not in cuts or cuts[tp] == len(self._carried[tp].records))
            )
        )
        # In step, a few records are not worth a transaction of their own: they wait for more.
        if pace is not None and sum(cuts.values()) < self.behind // 2:
            return Ready({}, {})
        ready = Ready({}, {})
        for tp, cut in cuts.items():
            carried = self._carried[tp]
            if cut == len(carried.records):  # all of it
                del self._carried[tp]
                ready.batches[tp] = carried.records
                if carried.decoded is not None:
                    ready.decoded[tp] = carried.decoded
            elif cut:
                first_kept = carried.records[cut].offset
                decoded = carried.decoded or []
                split = _first_at(decoded, first_kept)
                ready.batches[tp], carried.records = carried.records[:cut], carried.records[cut:]
                ready.decoded[tp], carried.decoded = decoded[:split], decoded[split:]
        return ready

    def take_all(self) -> Ready:
        """Everything carried (the group is idle: no partition will set a pace soon)."""
        self.wanted = ()
        ready = Ready({}, {})
        for tp, carried in self._carried.items():
            ready.batches[tp] = carried.records
            if carried.decoded is not None:
                ready.decoded[tp] = carried.decoded
        self._carried.clear()
        return ready

    def drop(self, partitions: Collection[TopicPartition]) -> None:
        """Forget ``partitions`` (revoked: their new owner reads them from the last commit)."""
        for tp in partitions:
            self._carried.pop(tp, None)
            self._last_time.pop(tp, None)


def _cut(records: Records, pace: float | None) -> int:
    """How many leading records are at or before ``pace`` (None: no pace, all of them)."""
    if pace is not None:
        for index, record in enumerate(records):
            if record.timestamp > pace:
                return index
    return len(records)


def _first_at(decoded: Decoded, offset: int) -> int:
    """The index of the first decoded event at or after ``offset`` (they are in offset order)."""
    for index, (_, position) in enumerate(decoded):
        if position.offset >= offset:
            return index
    return len(decoded)
