"""Concurrent writers of one view on PostgreSQL: waits, never deadlocks or unique violations."""

from __future__ import annotations

import asyncio
import zlib
from typing import TYPE_CHECKING

import pytest
from _postgres_stats import database_counters
from conftest import fresh_postgres_database

from agentflux.consumers import (
    ContextView,
    MetricsView,
    Position,
    PostgresStore,
    get_context,
    get_metrics,
)
from agentflux.producers import Simulator
from agentflux.schemas import load_topics

if TYPE_CHECKING:
    from agentflux.schemas import BaseEvent

_WRITERS = 8


def _partitions(events: list[BaseEvent]) -> list[list[tuple[BaseEvent, Position]]]:
    """The events as the declared topics partition them (6 or 3 partitions a topic).

    A session's approvals stay on one partition of its topic; its context rows are fed from
    four topics at once, and every partition's batch touches the shared counters.
    """
    declared = load_topics()
    batches: dict[tuple[str, int], list[tuple[BaseEvent, Position]]] = {}
    for event in events:
        category = event.EVENT_TYPE.category
        key = (
            event.topic,
            zlib.crc32(event.session_id.encode()) % declared.for_category(category).partitions,
        )
        batch = batches.setdefault(key, [])
        batch.append((event, Position(*key, len(batch))))
    return list(batches.values())


async def _contexts_and_metrics(store: PostgresStore, events: list[BaseEvent]) -> list[object]:
    sessions = sorted({e.session_id for e in events})
    return [*[await get_context(store, s) for s in sessions], await get_metrics(store)]


@pytest.mark.postgres
async def test_concurrent_batches_on_shared_rows_neither_deadlock_nor_collide(
    postgres_url: str,
) -> None:
    """A transaction per partition at once, on shared counters and sessions: zero deadlocks, zero rollbacks, right figures."""
    events = list(Simulator(sessions=40, seed=11).events())
    views = (ContextView(), MetricsView())
    concurrent_url = await fresh_postgres_database(postgres_url)
    reference_url = await fresh_postgres_database(postgres_url)
    async with PostgresStore(reference_url) as reference:
        for view in views:
            await reference.migrate(view.ddl)
            async with reference.transaction() as tx:
                await view.apply_batch(tx, [(e, Position("t", 0, n)) for n, e in enumerate(events)])
        expected = await _contexts_and_metrics(reference, events)
    async with PostgresStore(concurrent_url) as setup:
        for view in views:
            await setup.migrate(view.ddl)
    before = await database_counters(concurrent_url)
    async with PostgresStore(concurrent_url, pool_size=_WRITERS) as store:

        async def write(
            view: ContextView | MetricsView, batch: list[tuple[BaseEvent, Position]]
        ) -> None:
            async with store.transaction() as tx:
                await view.apply_batch(tx, batch)

        async def every_partition_at_once() -> None:
            for view in views:
                await asyncio.gather(*(write(view, batch) for batch in _partitions(events)))

        await every_partition_at_once()
        built = await _contexts_and_metrics(store, events)
        await every_partition_at_once()  # the same events twice more: the same rows contended
        await every_partition_at_once()
        metrics = await get_metrics(store)
    after = await database_counters(concurrent_url)
    assert after == before  # no deadlock, and no transaction rolled back (a unique violation would)
    assert built == expected
    assert metrics["events_by_type"] == {
        event_type: 3 * count for event_type, count in expected[-1]["events_by_type"].items()
    }
