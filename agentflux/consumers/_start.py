"""Where a new consumer group starts: ``earliest``, ``latest``, or a point in time.

Only a group that has never committed an offset is placed; a group that has committed resumes
where it left off, whatever its declaration says (a restart, a deploy, a rebalance never move
it). ``earliest`` is also where the runner reads a partition it holds no offset for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from pydantic import TypeAdapter, ValidationError

from agentflux.consumers._commits import commit_as_group
from agentflux.kafka import connection_kwargs, stop_consumer, topic_partitions

if TYPE_CHECKING:
    from collections.abc import Iterable

    from agentflux.kafka import AgentfluxSettings

__all__ = ["StartPoint", "StartPointError", "place_new_group"]

# "7d", "12h", "30m", "90s", "2w": how far back from the group's first start. ISO 8601
# durations ("P7D", "PT12H") are read by pydantic's timedelta parser; it has no short form.
_RELATIVE = re.compile(r"^(?P<amount>\d+)(?P<unit>[smhdw])$")
_ISO_DURATION = TypeAdapter(timedelta)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class StartPointError(ValueError):
    """A start point that is not earliest, latest, an ISO 8601 time or a duration back."""


@dataclass(frozen=True, slots=True)
class StartPoint:
    """Where a group that never committed starts: its text, and what it means."""

    text: str
    kind: Literal["earliest", "latest", "time"]
    when: datetime | None = None  # an absolute time
    back: timedelta | None = None  # or how far back from the first start

    @classmethod
    def parse(cls, text: str) -> StartPoint:
        """``earliest``, ``latest``, an ISO 8601 time (UTC if no zone), or ``7d`` / ``P7D`` back."""
        if text in {"earliest", "latest"}:
            return cls(text, text)  # type: ignore[arg-type]  # narrowed by the membership test
        back = _duration(text)
        if back is not None:
            return cls(text, "time", back=back)
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise StartPointError(
                f"start {text!r}: expected earliest, latest, an ISO 8601 time "
                "(2026-11-24T10:00:00+00:00) or a duration back (7d, 12h, P7D)"
            ) from None
        return cls(text, "time", when=when if when.tzinfo else when.replace(tzinfo=UTC))

    def moment(self, now: datetime) -> datetime | None:
        """The time a ``time`` start begins at, seen from ``now``; None for the keywords."""
        if self.back is not None:
            return now - self.back
        return self.when


def _duration(text: str) -> timedelta | None:
    relative = _RELATIVE.match(text)
    if relative is not None:
        return timedelta(**{_UNITS[relative["unit"]]: int(relative["amount"])})
    if not text.startswith("P"):
        return None
    try:
        return _ISO_DURATION.validate_python(text)
    except ValidationError:
        return None


async def place_new_group(
    settings: AgentfluxSettings, group_id: str, topics: Iterable[str], start: StartPoint
) -> dict[TopicPartition, int]:
    """Commit ``start``'s offsets for ``group_id`` if it never committed any; what it committed.

    Nothing is committed for ``earliest`` (the runner starts there by itself) or for a group
    that has committed before. A time start begins each partition at its first record at or
    after that time (the broker's offsets-for-times), or at its end if none is that recent.
    """
    if start.kind == "earliest":
        return {}
    admin = AIOKafkaAdminClient(**connection_kwargs(settings))
    try:
        await admin.start()
        committed = await admin.list_consumer_group_offsets(group_id)
    finally:
        await admin.close()
    if any(meta.offset >= 0 for meta in committed.values()):
        return {}
    probe = AIOKafkaConsumer(**connection_kwargs(settings), enable_auto_commit=False)
    try:
        await probe.start()
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(await topic_partitions(settings, probe, topic))
        ]
        ends: dict[TopicPartition, int] = await probe.end_offsets(partitions)
        moment = start.moment(datetime.now(UTC))
        offsets = dict(ends)
        if moment is not None:
            found = await probe.offsets_for_times(
                dict.fromkeys(partitions, int(moment.timestamp() * 1000))
            )
            offsets.update({tp: at.offset for tp, at in found.items() if at is not None})
    finally:
        await stop_consumer(probe)
    await commit_as_group(settings, group_id, offsets, f"agentflux start {start.text}")
    return offsets
