"""The consume benchmarks: the platform's runner against a raw getmany loop, and a view rebuild."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer

from agentflux.consumers import ContextView, GroupRunner, SqliteStore
from agentflux.kafka import connection_kwargs
from agentflux.schemas import EVENT_MODELS, EventCategory
from bench._measure import Measurement, settle_heap, side_by_side
from bench._raw import raw_consume

if TYPE_CHECKING:
    from pathlib import Path

    from agentflux.kafka import AgentfluxSettings
    from agentflux.schemas import BaseEvent

__all__ = ["bench_consume", "bench_rebuild", "noop_runner"]


def noop_runner(settings: AgentfluxSettings, name: str) -> GroupRunner:
    """A fresh group over the six category topics whose handlers do nothing: pure consuming."""

    async def noop(_: BaseEvent) -> None:
        return

    return GroupRunner(
        f"{name}-{uuid.uuid4().hex[:6]}",
        [settings.topic_prefix + category.topic for category in EventCategory],
        settings=settings,
        handlers=dict.fromkeys(EVENT_MODELS.values(), noop),
        max_poll_records=2000,
    )


async def bench_consume(settings: AgentfluxSettings, count: int, rounds: int) -> dict[str, Any]:
    """Platform runner (decode + dispatch + commit) vs a raw getmany loop with commits.

    Each round a fresh group of each side reads ``count`` records from the earliest offsets,
    timed from the moment its consumer has its partitions; rounds alternate the two sides.
    """
    topics = [settings.topic_prefix + c.topic for c in EventCategory]
    pairs: list[tuple[Measurement, Measurement]] = []
    for _ in range(rounds):
        runner = noop_runner(settings, "bench")
        settle_heap()
        async with runner:
            # Timed from the assignment on, as the raw loop is: joining is not throughput.
            await asyncio.wait_for(runner.ready.wait(), 60)
            started, cpu = time.perf_counter(), time.process_time()
            await runner.wait_handled(count)
            platform_m = Measurement.since(started, cpu, runner.handled)
        settle_heap()
        raw_m = await raw_consume(settings, topics, count, f"bench-raw-{uuid.uuid4().hex[:6]}")
        pairs.append((platform_m, raw_m))
    return {"events": count, **side_by_side(pairs)}


async def bench_rebuild(
    settings: AgentfluxSettings, expected: int, directory: Path
) -> dict[str, Any]:
    """Rebuild the context view from retained events into a fresh SQLite store."""
    topics = [
        settings.topic_prefix + c.topic
        for c in (
            EventCategory.AGENT,
            EventCategory.SESSION,
            EventCategory.TOOL,
            EventCategory.HITL,
        )
    ]
    count = await _count(settings, topics)
    async with SqliteStore(directory / "rebuild.db") as store:
        runner = GroupRunner(
            f"rebuild-{uuid.uuid4().hex[:6]}",
            topics,
            settings=settings,
            views=[ContextView()],
            store=store,
            max_poll_records=2000,
        )
        settle_heap()
        started, cpu = time.perf_counter(), time.process_time()
        async with runner:
            await runner.wait_handled(count)
        measured = Measurement.since(started, cpu, runner.handled)
    return {
        "events": count,
        "of_published": expected,
        "events_per_s": round(measured.rate),
        "cpu_us_per_event": round(measured.cpu_us_per_event, 1),
    }


async def _count(settings: AgentfluxSettings, topics: list[str]) -> int:
    consumer = AIOKafkaConsumer(**connection_kwargs(settings))
    await consumer.start()
    try:
        from aiokafka.structs import TopicPartition  # noqa: PLC0415  # local to the counting helper

        partitions = [TopicPartition(t, p) for t in topics for p in range(6)]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()
