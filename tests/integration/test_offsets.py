"""Lag and replay against the real broker: moving a group re-reads exactly what it should."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition

from agentflux._offsets import (
    GroupActiveError,
    execute_replay,
    group_lag,
    parse_replay_target,
    plan_replay,
)
from agentflux.kafka import connection_kwargs

if TYPE_CHECKING:
    from agentflux.kafka import AgentfluxSettings

pytestmark = pytest.mark.broker

_PARTITIONS = 2
_PER_BATCH = 10


async def _create_topic(settings: AgentfluxSettings, topic: str) -> None:
    admin = AIOKafkaAdminClient(**connection_kwargs(settings))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, _PARTITIONS, 1)])
    finally:
        await admin.close()


async def _produce(settings: AgentfluxSettings, topic: str, timestamp_ms: int) -> None:
    producer = AIOKafkaProducer(**connection_kwargs(settings), acks="all")
    await producer.start()
    try:
        for i in range(_PER_BATCH):
            await producer.send_and_wait(
                topic, b"x", partition=i % _PARTITIONS, timestamp_ms=timestamp_ms
            )
    finally:
        await producer.stop()


async def _consume_all_and_commit(settings: AgentfluxSettings, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        **connection_kwargs(settings),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        seen = 0
        while seen < 2 * _PER_BATCH:
            batches = await consumer.getmany(timeout_ms=1000)
            seen += sum(len(records) for records in batches.values())
        await consumer.commit()
    finally:
        await consumer.stop()


@pytest.fixture
async def consumed_group(cluster: Any, topic_name: str) -> str:
    """A topic with two batches an hour apart, fully consumed and committed by a fresh group."""
    settings = cluster.settings
    await _create_topic(settings, topic_name)
    now_ms = int(time.time() * 1000)
    await _produce(settings, topic_name, now_ms - 2 * 3_600_000)
    await _produce(settings, topic_name, now_ms - 3_600_000)
    group = f"g-{uuid.uuid4().hex[:8]}"
    await _consume_all_and_commit(settings, topic_name, group)
    return group


async def _total_lag(settings: AgentfluxSettings, group: str) -> int:
    return sum(row.lag for row in await group_lag(settings, [group]))


async def test_lag_is_zero_after_full_consumption(cluster: Any, consumed_group: str) -> None:
    """A group that committed everything shows lag 0 on every partition."""
    rows = await group_lag(cluster.settings, [consumed_group])
    assert len(rows) == _PARTITIONS
    assert all(row.lag == 0 for row in rows)


async def test_replay_to_time_rereads_only_later_events(
    cluster: Any, consumed_group: str, topic_name: str
) -> None:
    """Moving to a time between the batches makes exactly the second batch pending again."""
    between = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 1.5 * 3600))
    plan = await plan_replay(cluster.settings, consumed_group, parse_replay_target(between))
    assert {tp.topic for tp in plan.moves} == {topic_name}
    assert await _total_lag(cluster.settings, consumed_group) == 0  # planning changes nothing
    await execute_replay(cluster.settings, plan)
    assert await _total_lag(cluster.settings, consumed_group) == _PER_BATCH


async def test_replay_to_earliest_and_exact_offset(
    cluster: Any, consumed_group: str, topic_name: str
) -> None:
    """Moving to earliest makes all pending; topic:partition:offset moves one partition."""
    settings = cluster.settings
    earliest = await plan_replay(settings, consumed_group, parse_replay_target("earliest"))
    await execute_replay(settings, earliest)
    assert await _total_lag(settings, consumed_group) == 2 * _PER_BATCH

    exact = await plan_replay(
        settings, consumed_group, parse_replay_target(f"{topic_name}:0:7"), [topic_name]
    )
    assert exact.moves == {TopicPartition(topic_name, 0): (0, 7)}
    await execute_replay(settings, exact)
    assert await _total_lag(settings, consumed_group) == 2 * _PER_BATCH - 7


async def test_replay_refused_while_group_is_active(
    cluster: Any, consumed_group: str, topic_name: str
) -> None:
    """With a member in the group, executing a replay raises and leaves offsets unchanged."""
    settings = cluster.settings
    member = AIOKafkaConsumer(
        topic_name, **connection_kwargs(settings), group_id=consumed_group, enable_auto_commit=False
    )
    await member.start()
    try:
        while not member.assignment():  # joined once the coordinator hands out partitions
            await member.getmany(timeout_ms=200)
        plan = await plan_replay(settings, consumed_group, parse_replay_target("earliest"))
        with pytest.raises(GroupActiveError, match="active member"):
            await execute_replay(settings, plan)
    finally:
        await member.stop()
    assert await _total_lag(settings, consumed_group) == 0
