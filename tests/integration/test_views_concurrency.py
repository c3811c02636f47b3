"""Shipped groups with two members each on one PostgreSQL: no deadlock, no retried batch."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING

import pytest
from _postgres_stats import database_counters
from _traffic import apply_directly, events_of, prefixed_topics, snapshot
from conftest import fresh_postgres_database

from agentflux.consumers import PostgresStore, SqliteStore
from agentflux.consumers._groups import SHIPPED_GROUPS, shipped_runner
from agentflux.producers import EventPublisher, Simulator
from agentflux.schemas import load_topics

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Cluster

    from agentflux.consumers import GroupRunner, Store
    from agentflux.schemas import BaseEvent

_GROUPS = ("context", "metrics")
_POLL_S = 0.2


async def _applied_everything(store: Store, group_id: str, expected: int) -> None:
    """Wait until the group's stored offsets cover ``expected`` records (topics start at 0)."""
    while sum(last + 1 for last in (await store.positions(group_id)).values()) < expected:
        await asyncio.sleep(_POLL_S)  # the members commit batch by batch; look again shortly


@pytest.mark.broker
@pytest.mark.postgres
async def test_two_members_per_group_never_deadlock_nor_retry_a_batch(
    cluster: Cluster, postgres_url: str, tmp_path: Path
) -> None:
    """Context and metrics, two members each, topics partitioned as declared: zero deadlocks, rollbacks and retried batches; the views are right."""
    # As declared: six partitions each, co-partitioned.
    partitions = {t.partitions for t in load_topics().topics if t.category is not None}
    settings = await prefixed_topics(cluster, partitions=partitions.pop())
    events: list[BaseEvent] = list(Simulator(sessions=150, seed=23).events())
    async with EventPublisher(settings) as publisher:
        for event in events:
            await publisher.enqueue(event)
        await publisher.flush()
    url = await fresh_postgres_database(postgres_url)
    async with PostgresStore(url) as setup:
        # Tables made before the members start: concurrent CREATE TABLE IF NOT EXISTS of one
        # table can collide in PostgreSQL's catalog, a failure that is not this test's subject.
        await setup.migrate([sql for g in _GROUPS for sql in SHIPPED_GROUPS[g].view().ddl])
    before = await database_counters(url)
    group_ids = {group: f"{group}-{uuid.uuid4().hex[:6]}" for group in _GROUPS}
    async with PostgresStore(url, pool_size=8) as store:
        members: list[GroupRunner] = [
            shipped_runner(group, store, settings, group_id=group_ids[group])
            for group in _GROUPS
            for _ in range(2)
        ]
        async with contextlib.AsyncExitStack() as running:
            for member in members:
                await running.enter_async_context(member)
            async with asyncio.timeout(180):
                for group in _GROUPS:
                    await _applied_everything(
                        store, group_ids[group], len(events_of(group, events))
                    )
        built = {group: await snapshot(group, store, events) for group in _GROUPS}
    after = await database_counters(url)
    assert [member.batch_fallbacks for member in members] == [0, 0, 0, 0]
    assert after == before  # no deadlock; no transaction rolled back (a unique violation would)
    async with SqliteStore(tmp_path / "reference.db") as reference:
        for group in _GROUPS:
            await apply_directly(group, reference, events)
            assert built[group] == await snapshot(group, reference, events), group
