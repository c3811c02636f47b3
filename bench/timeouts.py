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
from typing import TYPE_CHECKING

from agentflux.consumers import GroupRunner
from agentflux.consumers._timeouts import HitlTimeoutJob
from agentflux.kafka import AgentfluxSettings, run_event_loop
from agentflux.producers import EventPublisher
from agentflux.schemas import (
    BaseEvent,
    EventCategory,
    HitlApprovalRequestedEvent,
    HitlTimeoutOccurredEvent,
)
from bench._cluster import local_or_given_cluster, make_topics

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

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
    """The first ``count`` timeouts on ``topic``, read by a group of the platform's own."""
    found: list[HitlTimeoutOccurredEvent] = []

    async def on_timeout(event: BaseEvent) -> None:
        assert isinstance(event, HitlTimeoutOccurredEvent)  # noqa: S101  # the handler's type
        found.append(event)

    group = f"bench-read-{uuid.uuid4().hex[:6]}"
    handlers: dict[type[BaseEvent], Callable[[BaseEvent], Awaitable[None]]] = {
        HitlTimeoutOccurredEvent: on_timeout
    }
    async with GroupRunner(group, [topic], settings=settings, handlers=handlers) as runner:
        while len(found) < count:
            if runner.finished:
                runner.raise_failure()
            await asyncio.sleep(0.2)  # poll what the handler collected
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
