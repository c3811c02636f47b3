"""The HITL timeout job's precision: ``python -m bench.timeouts [--pending 10000] [--spread 10]``.

Publishes ``--pending`` approval requests whose deadlines fall evenly over ``--spread`` seconds
after the job is up, runs the job, and reports how late each timeout was published: its
``occurred_at`` (the job's clock when it sent it) minus the approval's deadline. Uses the
cluster named by the environment or starts a local one, as the benchmarks do.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer

from agentflux.consumers._timeouts import HitlTimeoutJob
from agentflux.kafka import AgentfluxSettings, connection_kwargs, run_event_loop
from agentflux.producers import EventPublisher
from agentflux.schemas import (
    AvroCodec,
    EventCategory,
    HitlApprovalRequestedEvent,
    HitlTimeoutOccurredEvent,
    RegistryClient,
)
from bench._cluster import local_or_given_cluster, make_topics

_START_AFTER_S = 8  # deadlines start after the job has had time to take its partitions over


async def _lateness(settings: AgentfluxSettings, pending: int, spread: float) -> list[float]:
    prefix = f"b{uuid.uuid4().hex[:8]}."
    await make_topics(settings, prefix, [])
    settings = settings.model_copy(update={"topic_prefix": prefix})
    topic = prefix + EventCategory.HITL.topic
    # Deadlines spread evenly from _START_AFTER_S on (timeout_s is whole seconds: the spread is
    # in occurred_at).
    base = time.time() + _START_AFTER_S - 1
    requests = [
        HitlApprovalRequestedEvent(
            session_id=f"s{i % 1000}",
            approval_id=f"a{i}",
            subject="run shell?",
            occurred_at=datetime.fromtimestamp(base + spread * i / pending, UTC),
            timeout_s=1,
        )
        for i in range(pending)
    ]
    deadlines = {r.approval_id: r.occurred_at.timestamp() + r.timeout_s for r in requests}
    async with EventPublisher(settings) as publisher:
        for request in requests:
            await publisher.send(request)
        await publisher.flush()
    group = f"bench-timeouts-{uuid.uuid4().hex[:6]}"
    async with HitlTimeoutJob(group, topic, settings=settings) as job:
        while job.emitted < pending:
            if job.finished:
                job.raise_failure()
            await asyncio.sleep(0.2)  # poll the job's count
    return [
        t.occurred_at.timestamp() - deadlines[t.approval_id]
        for t in await _read_timeouts(settings, topic, pending)
    ]


async def _read_timeouts(
    settings: AgentfluxSettings, topic: str, count: int
) -> list[HitlTimeoutOccurredEvent]:
    consumer = AIOKafkaConsumer(
        topic,
        **connection_kwargs(settings),
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    found: list[HitlTimeoutOccurredEvent] = []
    try:
        async with RegistryClient.from_settings(settings) as registry:
            codec = AvroCodec(registry)
            while len(found) < count:
                batches = await consumer.getmany(timeout_ms=1000)
                for record in (r for batch in batches.values() for r in batch):
                    event = await codec.decode(record.value or b"")
                    if isinstance(event, HitlTimeoutOccurredEvent):
                        found.append(event)
    finally:
        await consumer.stop()
    return found


def main() -> None:
    """Measure and print the lateness percentiles."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=10.0)
    args = parser.parse_args()
    started = time.perf_counter()
    with local_or_given_cluster() as (settings, _watch):
        late = sorted(run_event_loop(_lateness(settings, args.pending, args.spread)))
    cuts = statistics.quantiles(late, n=100)
    print(
        f"{len(late)} timeouts, deadlines over {args.spread:.0f} s: lateness "
        f"min {late[0] * 1000:.0f} ms, p50 {cuts[49] * 1000:.0f} ms, "
        f"p99 {cuts[98] * 1000:.0f} ms, max {late[-1] * 1000:.0f} ms "
        f"({time.perf_counter() - started:.0f} s in all)"
    )


if __name__ == "__main__":
    main()
