"""Follow the category topics and decode what arrives, for people watching the platform live.

The tail uses no consumer group: it assigns every partition itself and commits nothing, so
watching never disturbs a group's offsets or lag.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer

from agentflux._offsets import partitions_of
from agentflux.kafka import connection_kwargs, stop_consumer
from agentflux.schemas import AvroCodec, BaseEvent, CodecError, RegistryClient, UnknownEvent

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Collection

    from agentflux.kafka import AgentfluxSettings

__all__ = ["TailItem", "tail_events"]


@dataclass(frozen=True, slots=True)
class TailItem:
    """One record as the tail saw it: decoded, unknown, or undecodable (``error``)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    session_id: str | None
    event: BaseEvent | UnknownEvent | None = None
    error: str | None = None

    @property
    def event_type(self) -> str:
        """The event type, or the record name of an unknown type."""
        if isinstance(self.event, BaseEvent):
            return self.event.EVENT_TYPE.value
        if isinstance(self.event, UnknownEvent):
            return f"unknown:{self.event.record_name}"
        return "undecodable"

    def as_json(self) -> str:
        """One JSON line: where it was, and the event's fields."""
        fields: dict[str, Any] = {}
        if isinstance(self.event, BaseEvent):
            fields = self.event.model_dump(mode="json")
        elif isinstance(self.event, UnknownEvent):
            fields = {"record_name": self.event.record_name, "fields": self.event.data}
        return json.dumps(
            {
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                "timestamp": self.timestamp_ms,
                "event_type": self.event_type,
                **fields,
            },
            default=str,
        )

    def as_line(self) -> str:
        """One readable line: time, place, type, session, and the event's own fields."""
        when = datetime.fromtimestamp(self.timestamp_ms / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]
        where = f"{self.topic}[{self.partition}]@{self.offset}"
        details = ""
        if isinstance(self.event, BaseEvent):
            own = self.event.model_dump(
                mode="json", exclude=set(BaseEvent.model_fields), exclude_none=True
            )
            details = " ".join(f"{k}={v}" for k, v in own.items())
        elif isinstance(self.event, UnknownEvent):
            details = json.dumps(self.event.data, default=str)
        return f"{when} {where} {self.event_type} session={self.session_id} {details}".rstrip()


async def tail_events(  # noqa: PLR0913  # every filter is its own keyword
    settings: AgentfluxSettings,
    topics: Collection[str],
    *,
    start: datetime | None = None,
    sessions: Collection[str] = (),
    types: Collection[str] = (),
    idle_timeout_s: float | None = None,
) -> AsyncGenerator[TailItem, None]:
    """Yield records of ``topics`` from ``start`` (default: from now on), filtered.

    Ends when nothing arrived for ``idle_timeout_s`` (never when None). Undecodable records
    are yielded with ``error`` set, so the caller can warn and carry on.
    """
    consumer = AIOKafkaConsumer(
        **connection_kwargs(settings),
        enable_auto_commit=False,
        # What the groups see: an aborted transaction (a timeout job's retried batch) is not shown.
        isolation_level=settings.isolation_level,
    )
    try:  # stopped even when starting fails, or it warns "Unclosed AIOKafkaConsumer" later
        await consumer.start()
        partitions = await partitions_of(settings, consumer, topics)
        consumer.assign(partitions)
        if start is None:
            await consumer.seek_to_end(*partitions)
        else:
            ends = await consumer.end_offsets(partitions)
            found = await consumer.offsets_for_times(
                dict.fromkeys(partitions, int(start.timestamp() * 1000))
            )
            for tp in partitions:
                consumer.seek(tp, found[tp].offset if found[tp] is not None else ends[tp])
        async with RegistryClient.from_settings(settings) as registry:
            codec = AvroCodec(registry)
            last_seen = time.monotonic()
            while idle_timeout_s is None or time.monotonic() - last_seen < idle_timeout_s:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    last_seen = time.monotonic()
                    for record in records:
                        session = (
                            None if record.key is None else record.key.decode(errors="replace")
                        )
                        if sessions and session not in sessions:
                            continue
                        item = TailItem(
                            record.topic, record.partition, record.offset, record.timestamp, session
                        )
                        try:
                            event = await codec.decode(record.value or b"")
                        except CodecError as exc:
                            yield replace(item, error=str(exc))
                            continue
                        item = replace(item, event=event)
                        if types and item.event_type not in types:
                            continue
                        yield item
    finally:
        await stop_consumer(consumer)
