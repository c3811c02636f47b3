"""A store-backed runner reading two topics in step by record time while behind, on a real broker.

The topics are written one after the other, their records' timestamps interleaved: topic A's at
even milliseconds, topic B's at odd ones. Read as aiokafka hands them out, all of A comes before
B; read in step, a view gets them close to timestamp order.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any, Literal

import pytest
from _registration import register_shipped_schemas
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from conftest import create_topic

from agentflux._offsets import committed_offsets
from agentflux.consumers import GroupRunner, SqliteStore
from agentflux.kafka import connection_kwargs
from agentflux.producers import AgentProcessingStartedEvent, ToolExecutionStartedEvent
from agentflux.schemas import AvroCodec, RegistryClient

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from conftest import Cluster

    from agentflux.consumers import Position, Transaction
    from agentflux.kafka import AgentfluxSettings
    from agentflux.schemas import BaseEvent

pytestmark = [pytest.mark.broker, pytest.mark.slow]

_PER_TOPIC = 3000
_MAX_POLL_RECORDS = 200
# Read in step, what one write holds spans about one fetch per topic (200 records, 400 ms of
# record time here); read as fetched, most of B comes seconds of record time late.
_WINDOW_MS = 1000

_APPLIED_COLUMNS = (("topic", "TEXT"), ("part", "INTEGER"), ("off", "BIGINT"), ("at", "BIGINT"))


class _Recording:
    """Stores each applied event's topic, offset and record time: the table's rowid is the order."""

    name = "recording"
    ddl: Sequence[str] = (
        (
            "CREATE TABLE IF NOT EXISTS applied (topic TEXT NOT NULL, "
            "part INTEGER NOT NULL, off BIGINT NOT NULL, at BIGINT NOT NULL)"
        ),
    )

    def __init__(self) -> None:
        self.first_batch = asyncio.Event()

    async def apply(self, tx: Transaction, event: BaseEvent, position: Position) -> None:
        """One event: a batch of one."""
        await self.apply_batch(tx, [(event, position)])

    async def apply_batch(
        self, tx: Transaction, events: Sequence[tuple[BaseEvent, Position]]
    ) -> None:
        """Append the events, in the order given, to the applied table."""
        rows = [(p.topic, p.partition, p.offset, p.timestamp_ms) for _, p in events]
        await tx.insert_rows("applied", _APPLIED_COLUMNS, rows)
        self.first_batch.set()


class _InStepRecording(_Recording):
    """The same, read in step (an ``InStepView``)."""

    reads_in_step: Literal[True] = True


async def _interleaved_topics(
    cluster: Cluster, partitions: int = 1
) -> tuple[AgentfluxSettings, list[str]]:
    """Topics A then B written in full, record times interleaved by topic.

    Event ``n`` of each topic goes to partition ``n % partitions``: co-partitioned topics.
    """
    settings = cluster.settings.model_copy(update={"topic_prefix": f"i{uuid.uuid4().hex[:8]}."})
    topics = [
        await create_topic(settings, settings.topic_prefix + name, partitions=partitions)
        for name in ("agent.events", "tool.events")
    ]
    await register_shipped_schemas(settings)
    # Recent record times: older ones than the topic's retention would be deleted.
    base_ms = time.time_ns() // 1_000_000 - 60_000
    a, b = topics
    async with RegistryClient.from_settings(settings) as registry:
        codec = AvroCodec(registry)
        values = [
            (
                await codec.encode(
                    AgentProcessingStartedEvent(session_id=_session(n), agent="a"), a
                ),
                await codec.encode(
                    ToolExecutionStartedEvent(
                        session_id=_session(n), call_id=f"c{n}", tool_name="t"
                    ),
                    b,
                ),
            )
            for n in range(_PER_TOPIC)
        ]
    producer = AIOKafkaProducer(**connection_kwargs(settings), linger_ms=5)
    await producer.start()
    try:
        for index, topic in enumerate(topics):  # all of A, then all of B
            sent = [
                await producer.send(
                    topic,
                    pair[index],
                    key=_session(n).encode(),
                    partition=n % partitions,
                    timestamp_ms=base_ms + 2 * n + index,
                )
                for n, pair in enumerate(values)
            ]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return settings, topics


def _session(n: int) -> str:
    return f"s{n % 7}"


def _runner(
    settings: AgentfluxSettings, topics: list[str], view: _Recording, store: SqliteStore, group: str
) -> GroupRunner:
    return GroupRunner(
        group,
        topics,
        settings=settings,
        views=[view],
        store=store,
        max_poll_records=_MAX_POLL_RECORDS,
    )


async def _applied(store: SqliteStore) -> list[dict[str, Any]]:
    return await store.rows("SELECT topic, part, off, at FROM applied ORDER BY rowid")


async def _until_stored_to_the_end(store: SqliteStore, group: str, partitions: int) -> None:
    """Until each partition's stored offset is its last: every record written (or skipped)."""
    last = [_PER_TOPIC // partitions - 1] * 2 * partitions
    while sorted((await store.positions(group)).values()) != last:
        await asyncio.sleep(0.1)  # poll interval of the store


def _assert_each_applied_once(
    applied: list[dict[str, Any]], topics: list[str], partitions: int
) -> None:
    counts = Counter((row["topic"], row["part"], row["off"]) for row in applied)
    assert [at for at, count in counts.items() if count > 1] == []  # none applied twice
    expected = {
        (topic, n % partitions, n // partitions) for topic in topics for n in range(_PER_TOPIC)
    }
    assert sorted(expected - counts.keys()) == []  # none lost
    assert counts.keys() == expected


def _late(record_times: list[int]) -> int:
    """How many events were applied after one more than ``_WINDOW_MS`` later in record time."""
    latest, late = -math.inf, 0
    for at in record_times:
        if at < latest - _WINDOW_MS:
            late += 1
        latest = max(latest, at)
    return late


async def _applied_late(
    settings: AgentfluxSettings, topics: list[str], view: _Recording, tmp_path: Path
) -> int:
    """Read both topics from the start into a fresh store; how many events were applied late."""
    store = SqliteStore(tmp_path / f"{uuid.uuid4().hex[:8]}.db")
    runner = _runner(settings, topics, view, store, f"in-step-{uuid.uuid4().hex[:6]}")
    async with store:
        async with runner, asyncio.timeout(120):
            await runner.wait_handled(2 * _PER_TOPIC)
        applied = await _applied(store)
    assert len(applied) == 2 * _PER_TOPIC
    return _late([row["at"] for row in applied])


async def test_a_view_that_reads_in_step_gets_events_close_to_record_time_order(
    cluster: Cluster, tmp_path: Path
) -> None:
    """In step, few events come a window late; as fetched (the same topics), most of B does."""
    settings, topics = await _interleaved_topics(cluster)
    in_step = await _applied_late(settings, topics, _InStepRecording(), tmp_path)
    as_fetched = await _applied_late(settings, topics, _Recording(), tmp_path)
    assert in_step < _PER_TOPIC // 20, (in_step, as_fetched)
    assert as_fetched > _PER_TOPIC // 2, (in_step, as_fetched)


async def _committed(settings: AgentfluxSettings, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(**connection_kwargs(settings))
    await admin.start()
    try:
        return await committed_offsets(admin, group)
    finally:
        await admin.close()


@pytest.mark.parametrize("leaving", ["stopped", "crashed"])
async def test_records_carried_when_a_member_leaves_are_neither_committed_nor_lost(
    cluster: Cluster, tmp_path: Path, leaving: str
) -> None:
    """Left while carrying: no commit covers them; the next member applies every event once.

    Stopped, the member commits what it wrote; crashed (its task cancelled: no last commit), the
    commit may trail the store, and the store's offsets guard keeps the re-read from applying twice.
    """
    settings, topics = await _interleaved_topics(cluster)
    group = f"in-step-{leaving}-{uuid.uuid4().hex[:6]}"
    store = SqliteStore(tmp_path / "leaving.db")
    async with store:
        first_view = _InStepRecording()
        first = _runner(settings, topics, first_view, store, group)
        async with first, asyncio.timeout(60):
            await first_view.first_batch.wait()
            if leaving == "crashed":
                first._task.cancel()
        assert first._in_step is not None
        carried = {tp: c.records[0].offset for tp, c in first._in_step._carried.items()}
        assert carried, "the first member left carrying nothing: the test proves nothing"
        committed = await _committed(settings, group)
        stored = await store.positions(group)
        for tp, offset in committed.items():
            assert offset <= stored.get((tp.topic, tp.partition), -1) + 1, (committed, stored)
        for tp, first_carried in carried.items():
            assert committed.get(tp, 0) <= first_carried, (tp, committed, carried)
        written = len(await _applied(store))
        assert written < 2 * _PER_TOPIC  # the second member has work left

        second = _runner(settings, topics, _InStepRecording(), store, group)
        async with second, asyncio.timeout(120):
            await _until_stored_to_the_end(store, group, partitions=1)
        applied = await _applied(store)
    # What the first member stored past its commit is read again, found stored, and skipped.
    stored_past_commit = sum(
        last + 1 - committed.get(TopicPartition(topic, partition), 0)
        for (topic, partition), last in stored.items()
    )
    assert second.redelivered == stored_past_commit
    _assert_each_applied_once(applied, topics, partitions=1)


class _CommitsChecked:
    """Every offset ``runner`` marks for commit, checked against what it carries at that moment."""

    def __init__(self, runner: GroupRunner) -> None:
        self.runner = runner
        self.past_carried: list[tuple[TopicPartition, int, int]] = []  # (tp, marked, first carried)
        self.while_carrying = 0  # marks of a partition that carried records then
        self._handled = runner._commits.handled
        runner._commits.handled = self.handled  # type: ignore[method-assign]  # the check

    def handled(self, tp: TopicPartition, next_offset: int) -> None:
        """Note a mark at or past a carried record, then mark as the runner asked."""
        in_step = self.runner._in_step
        assert in_step is not None
        carried = in_step._carried.get(tp)
        if carried is not None:
            self.while_carrying += 1
            if next_offset > carried.records[0].offset:
                self.past_carried.append((tp, next_offset, carried.records[0].offset))
        self._handled(tp, next_offset)


async def test_a_rebalance_commits_nothing_carried_and_loses_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A member joins while the first carries records: each event is applied once, none lost.

    The first member's first write is held (before it takes any lock) until the rebalance
    starts: it carries what it fetched beyond that write's pace when its partitions go.
    """
    settings, topics = await _interleaved_topics(cluster, partitions=2)
    group = f"in-step-rebalance-{uuid.uuid4().hex[:6]}"
    held, rebalancing = asyncio.Event(), asyncio.Event()
    async with SqliteStore(tmp_path / "shared.db") as store:  # the group's one store
        first = _runner(settings, topics, _InStepRecording(), store, group)
        write = first._write_fetched

        async def held_write(
            batches: dict[TopicPartition, list[Any]], decoded: dict[TopicPartition, list[Any]]
        ) -> None:
            if not held.is_set():
                held.set()
                await rebalancing.wait()
            await write(batches, decoded)

        first._write_fetched = held_write  # type: ignore[method-assign]  # held, then as ever
        second = _runner(settings, topics, _InStepRecording(), store, group)
        checks = [_CommitsChecked(first), _CommitsChecked(second)]
        revoked_carrying: list[bool] = []
        give_up = first.give_up_partitions

        async def giving_up(revoked: Iterable[TopicPartition]) -> None:
            assert first._in_step is not None
            revoked = list(revoked)
            if revoked:  # not the first join's
                revoked_carrying.append(any(first._in_step.carries(tp) for tp in revoked))
                rebalancing.set()
            await give_up(revoked)

        first.give_up_partitions = giving_up  # type: ignore[method-assign]  # noted, then as ever
        async with first, asyncio.timeout(120):
            try:
                await held.wait()
                async with second:
                    await _until_stored_to_the_end(store, group, partitions=2)
                    assert second.handled > 0  # the rebalance gave the second member partitions
            finally:
                rebalancing.set()  # never left held, whatever failed
        applied = await _applied(store)
    assert revoked_carrying[:1] == [True]  # the first rebalance took partitions carrying records
    assert [check.past_carried for check in checks] == [[], []]
    assert sum(check.while_carrying for check in checks) > 0
    _assert_each_applied_once(applied, topics, partitions=2)
