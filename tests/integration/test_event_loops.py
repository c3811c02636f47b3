"""The platform on uvloop, the default loop of its processes: publisher and runner on a real broker."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import pytest
from _registration import register_shipped_schemas
from _samples import sample_events
from conftest import create_topic

from agentflux.consumers import GroupRunner
from agentflux.kafka import run_event_loop
from agentflux.producers import EventPublisher
from agentflux.schemas import EventCategory

if TYPE_CHECKING:
    from conftest import Cluster

    from agentflux.schemas import BaseEvent

pytestmark = pytest.mark.broker


async def _round_trip(cluster: Cluster) -> tuple[str, list[BaseEvent], list[BaseEvent]]:
    """Publish every event type (send, enqueue and publish), read them back with a runner."""
    loop_module = type(asyncio.get_running_loop()).__module__.split(".")[0]
    settings = cluster.settings.model_copy(update={"topic_prefix": f"t{uuid.uuid4().hex[:8]}."})
    topics = [settings.topic_prefix + category.topic for category in EventCategory]
    for topic in topics:
        await create_topic(settings, topic)
    await register_shipped_schemas(settings)
    events = sample_events()
    third = len(events) // 3
    async with EventPublisher(settings) as publisher:
        await publisher.prepare()
        futures = [await publisher.send(event) for event in events[:third]]
        for event in events[third : 2 * third]:
            await publisher.enqueue(event)
        for event in events[2 * third :]:
            await publisher.publish(event)
        await publisher.flush()
        assert all(future.done() and not future.exception() for future in futures)
    received: list[BaseEvent] = []

    async def note(event: BaseEvent) -> None:
        received.append(event)

    runner = GroupRunner(
        f"loop-{uuid.uuid4().hex[:6]}",
        topics,
        settings=settings,
        handlers={type(event): note for event in events},
    )
    async with runner:
        await asyncio.wait_for(runner.wait_handled(len(events)), 60)
    return loop_module, events, received


def test_publisher_and_runner_work_on_uvloop(cluster: Cluster) -> None:
    """On uvloop every event type goes out by each publishing path and comes back to a handler."""
    settings = cluster.settings.model_copy(update={"event_loop": "uvloop"})
    loop_module, events, received = run_event_loop(_round_trip(cluster), settings)
    assert loop_module == "uvloop"
    assert sorted(str(e.event_id) for e in received) == sorted(str(e.event_id) for e in events)
    stamp = {"producer_id", "sequence"}  # what the publisher adds to each record's envelope
    assert {e.event_id: e.model_dump(exclude=stamp) for e in received} == {
        e.event_id: e.model_dump(exclude=stamp) for e in events
    }
    assert all(e.sequence is not None for e in received)
