"""An in-memory transport for users' unit tests: the publisher API with no broker."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from agentflux.producers._batching import key_partition
from agentflux.producers._errors import InvalidEventError
from agentflux.producers._protocols import PublishResult
from agentflux.producers._sequences import SessionSequences
from agentflux.schemas import EVENT_MODELS, BaseEvent, EventType, current_traceparent, event_headers

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["InMemoryTransport", "PublishedRecord"]


@dataclass(frozen=True, slots=True)
class PublishedRecord:
    """What a Kafka record would have been: topic, partition, offset, key, headers, event.

    ``event`` is the object published; ``producer_id`` and ``sequence`` are the values the
    Kafka publisher would have stamped into the record's envelope.
    """

    topic: str
    partition: int
    offset: int
    key: bytes
    headers: tuple[tuple[str, bytes], ...]
    event: BaseEvent
    producer_id: str | None = None
    sequence: int | None = None


class InMemoryTransport:
    """Keeps published events in a list, partitioned and keyed as Kafka would.

    Events are validated exactly as the Kafka publisher validates them, so a test that passes
    here does not publish invalid events in production.
    """

    def __init__(
        self, partitions: int = 6, topic_prefix: str = "", producer_id: str | None = None
    ) -> None:
        """Pretend every topic has ``partitions`` partitions; number events as the publisher."""
        self.sequences = SessionSequences(producer_id)
        self._partitions = list(range(partitions))
        self._prefix = topic_prefix
        self._offsets: dict[tuple[str, int], int] = defaultdict(int)
        self.records: list[PublishedRecord] = []

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to flush."""

    async def publish(self, event: BaseEvent) -> PublishResult:
        """Validate and record ``event``; raise InvalidEventError like the Kafka publisher."""
        try:
            type(event).model_validate(event.__dict__)
        except ValidationError as exc:
            raise InvalidEventError(f"{type(event).__name__} is invalid: {exc}") from exc
        stamped = self.sequences.stamped(event.__dict__)
        key = event.session_id.encode()
        topic = self._prefix + event.topic
        partition = key_partition(key, self._partitions)  # as the Kafka publisher partitions
        offset = self._offsets[topic, partition]
        self._offsets[topic, partition] += 1
        headers = tuple(event_headers(event, current_traceparent()))
        self.records.append(
            PublishedRecord(
                topic,
                partition,
                offset,
                key,
                headers,
                event,
                stamped["producer_id"],
                stamped["sequence"],
            )
        )
        return PublishResult(topic, partition, offset)

    async def prepare(self, models: Iterable[type[BaseEvent]] | None = None) -> int:
        """Nothing to learn ahead here: how many event types are ready (each one, always)."""
        return len(EVENT_MODELS if models is None else dict.fromkeys(models))

    async def send(self, event: BaseEvent) -> asyncio.Future[PublishResult]:
        """Record ``event`` at once; a future already resolved to where it went."""
        stored: asyncio.Future[PublishResult] = asyncio.get_running_loop().create_future()
        stored.set_result(await self.publish(event))
        return stored

    async def enqueue(self, event: BaseEvent) -> None:
        """Record ``event`` at once (invalid events raise here, as with the Kafka publisher)."""
        await self.publish(event)

    async def publish_many(self, events: Iterable[BaseEvent]) -> list[PublishResult]:
        """Record every event, in order."""
        return [await self.publish(event) for event in events]

    async def flush(self) -> None:
        """Nothing is ever pending."""

    # -- assertion helpers -------------------------------------------------------------------

    @property
    def events(self) -> list[BaseEvent]:
        """Every published event, in publish order."""
        return [r.event for r in self.records]

    def of_type(self, *event_types: EventType) -> list[BaseEvent]:
        """The published events of the given types, in publish order."""
        return [r.event for r in self.records if r.event.EVENT_TYPE in event_types]

    def for_session(self, session_id: str) -> list[BaseEvent]:
        """One session's events, in publish order."""
        return [r.event for r in self.records if r.event.session_id == session_id]

    def types(self) -> Sequence[EventType]:
        """The types of the published events, in publish order."""
        return [r.event.EVENT_TYPE for r in self.records]

    def clear(self) -> None:
        """Forget everything published so far."""
        self.records.clear()
        self._offsets.clear()

    def dump(self) -> str:
        """The published events as JSON lines, for a readable assertion failure."""
        return "\n".join(json.dumps(r.event.model_dump(mode="json")) for r in self.records)
