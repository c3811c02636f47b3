"""The events the benchmarks publish, and the same events as the raw side's pre-encoded records."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentflux.producers import Simulator
from agentflux.schemas import event_headers, new_traceparent

if TYPE_CHECKING:
    from agentflux.producers import EventPublisher
    from agentflux.schemas import BaseEvent

__all__ = ["EVENTS_SEED", "RawRecord", "encoded_records", "generated_events", "known_records"]

EVENTS_SEED = 1  # the simulator's seed for the throughput runs: the same events every time

RawRecord = tuple[str, bytes, bytes, list[tuple[str, bytes]]]  # topic, key, value, headers


def generated_events(count: int, seed: int) -> list[BaseEvent]:
    """``count`` events of simulated sessions (about 27 events each), the same for a seed."""
    events: list[BaseEvent] = []
    sessions = max(10, count // 27)
    while len(events) < count:
        events.extend(Simulator(sessions=sessions, seed=seed + len(events)).events())
    return events[:count]


async def encoded_records(publisher: EventPublisher, events: list[BaseEvent]) -> list[RawRecord]:
    """The bytes and headers ``publisher`` sends for ``events``, by category topic (no prefix)."""
    for event in {type(event): event for event in events}.values():
        await publisher.codec.encode(event, publisher.topic_for(event))  # schemas known
    return known_records(publisher, events)


def known_records(publisher: EventPublisher, events: list[BaseEvent]) -> list[RawRecord]:
    """:func:`encoded_records` for events whose schemas ``publisher`` has registered: no awaiting."""
    return [
        (
            event.topic,
            event.session_id.encode(),
            publisher.codec.encode_known(event, publisher.topic_for(event)),
            event_headers(event, new_traceparent()),
        )
        for event in events
    ]
