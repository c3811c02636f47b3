"""The runner under failure: dead letters, poison records, and a consumer killed mid-batch."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from _cli import rebuild_into
from _hanging_consumer import kill_when_hung, serve_until
from _registration import register_shipped_schemas
from _traffic import apply_directly, events_of, publish_traffic, snapshot
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import CommitFailedError, KafkaConnectionError
from aiokafka.structs import TopicPartition
from conftest import create_topic

from agentflux._offsets import group_lag
from agentflux.consumers import GroupRunner, SqliteStore, verify_audit
from agentflux.kafka import connection_kwargs
from agentflux.kafka._gate import gate
from agentflux.producers import AgentProcessingStartedEvent, AgentSwitchedEvent, EventPublisher
from agentflux.schemas import BaseEvent, header_map

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Cluster

    from agentflux.kafka import AgentfluxSettings


async def _dead_letters(
    settings: AgentfluxSettings, topic: str, expected: int
) -> list[dict[str, object]]:
    consumer = AIOKafkaConsumer(topic, **connection_kwargs(settings), auto_offset_reset="earliest")
    await consumer.start()
    found: list[dict[str, object]] = []
    try:
        async with asyncio.timeout(60):
            while len(found) < expected:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found.extend(
                        {"key": r.key, "value": r.value, **header_map(r.headers)} for r in records
                    )
    finally:
        await consumer.stop()
    return found


async def _agent_topic(cluster: Cluster, partitions: int) -> tuple[AgentfluxSettings, str]:
    """Settings with a topic prefix of their own, and its agent topic (where agent events go)."""
    settings = cluster.settings.model_copy(update={"topic_prefix": f"t{uuid.uuid4().hex[:8]}."})
    topic = settings.topic_prefix + "agent.events"
    await register_shipped_schemas(settings)
    return settings, await create_topic(settings, topic, partitions=partitions)


@pytest.mark.broker
async def test_failing_handler_dead_letters_and_partition_flows(cluster: Cluster) -> None:
    """A handler that always fails sends its records to the DLQ with failure headers; others flow."""
    settings, topic = await _agent_topic(cluster, partitions=1)
    events: list[BaseEvent] = []
    for i in range(3):
        events.append(AgentSwitchedEvent(session_id="s1", from_agent="a", to_agent=f"b{i}"))
        events.append(AgentProcessingStartedEvent(session_id="s1", agent=f"b{i}"))
    async with EventPublisher(settings) as publisher:
        for event in events:
            await publisher.publish(event)

    handled: list[BaseEvent] = []

    async def always_fails(event: BaseEvent) -> None:
        raise RuntimeError(f"cannot handle {event.event_id}")

    async def works(event: BaseEvent) -> None:
        handled.append(event)

    group = f"dlq-{uuid.uuid4().hex[:6]}"
    runner = GroupRunner(
        group,
        [topic],
        settings=settings,
        handlers={AgentSwitchedEvent: always_fails, AgentProcessingStartedEvent: works},
        max_attempts=3,
        backoff_s=0.01,
    )
    async with runner:
        async with asyncio.timeout(60):
            await runner.wait_handled(3)
    assert [e.event_id for e in handled] == [
        e.event_id for e in events if isinstance(e, AgentProcessingStartedEvent)
    ]

    letters = await _dead_letters(settings, runner.dlq_topic, 3)
    switches = [e for e in events if isinstance(e, AgentSwitchedEvent)]
    assert [letter["event_id"] for letter in letters] == [str(e.event_id) for e in switches]
    first = letters[0]
    assert first["key"] == b"s1"
    assert first["x-error-type"] == "RuntimeError"
    assert "cannot handle" in str(first["x-error-message"])
    assert first["x-attempts"] == "3"
    assert first["x-original-topic"] == topic
    assert first["x-original-partition"] == "0"
    assert first["x-original-offset"] == "0"
    assert first["x-group"] == group
    assert "x-failed-at" in first
    assert first["ce_type"] == "dev.agentflux.agent_switched"  # the original headers travel along


@pytest.mark.broker
async def test_poison_records_are_dead_lettered_at_once(cluster: Cluster) -> None:
    """Random bytes, an unknown schema id and a truncated payload go straight to the DLQ."""
    settings, topic = await _agent_topic(cluster, partitions=1)
    good = AgentProcessingStartedEvent(session_id="s1", agent="coder")
    async with EventPublisher(settings) as publisher:
        framed = await publisher.codec.encode(good, topic)
    producer = AIOKafkaProducer(**connection_kwargs(settings))
    await producer.start()
    try:
        for poison in (b"\xde\xad\xbe\xef random", b"\x00\x7f\xff\xff\xf0abc", framed[:-3], framed):
            await producer.send_and_wait(topic, poison, key=b"s1")
    finally:
        await producer.stop()
    seen: list[BaseEvent] = []

    async def record(event: BaseEvent) -> None:
        seen.append(event)

    runner = GroupRunner(
        f"poison-{uuid.uuid4().hex[:6]}",
        [topic],
        settings=settings,
        handlers={AgentProcessingStartedEvent: record},
    )
    async with runner:
        async with asyncio.timeout(60):
            await runner.wait_handled(1)
    assert seen == [good]
    letters = await _dead_letters(settings, runner.dlq_topic, 3)
    assert [letter["x-attempts"] for letter in letters] == ["1", "1", "1"]
    assert {letter["x-error-type"] for letter in letters} <= {
        "CorruptPayloadError",
        "UnknownSchemaIdError",
    }
    assert "UnknownSchemaIdError" in {letter["x-error-type"] for letter in letters}


async def _applied(store_path: Path, group: str) -> int:
    async with SqliteStore(store_path) as store:
        return sum(offset + 1 for offset in (await store.positions(group)).values())


async def _end_total(settings: AgentfluxSettings, group_topics: list[str]) -> int:
    consumer = AIOKafkaConsumer(**connection_kwargs(settings))
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in group_topics for p in range(3)]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.parametrize("group", ["context", "metrics", "audit"])
async def test_consumer_killed_mid_batch_ends_with_the_same_view(
    cluster: Cluster, tmp_path: Path, group: str
) -> None:
    """SIGKILL a group's service mid-stream, restart it: its view equals an uninterrupted build."""
    settings, events = await publish_traffic(cluster, sessions=150, seed=9)
    from agentflux.consumers._groups import SHIPPED_GROUPS  # noqa: PLC0415  # only this test needs the specs

    topics = SHIPPED_GROUPS[group].topics(settings)
    total = await _end_total(settings, topics)
    assert total == len(events_of(group, events))
    store_path = tmp_path / f"{group}.db"
    group_id = f"{group}-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "AGENTFLUX_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "AGENTFLUX_REGISTRY_URL": settings.registry_url,
        "AGENTFLUX_TOPIC_PREFIX": settings.topic_prefix,
    }
    command = [
        sys.executable,
        "-c",
        "from agentflux.cli import main; main()",
        "consume",
        group,
        "--store",
        f"sqlite:///{store_path}",
        "--group-id",
        group_id,
    ]

    # The first run hangs inside a batch's transaction halfway through, then is SIGKILLed:
    # deterministic, unlike racing a consumer that may finish first.
    marker = tmp_path / "hung"
    hanging = [group, f"sqlite:///{store_path}", group_id, str(total // 2), str(marker)]
    await kill_when_hung(hanging, marker, env, 120)
    killed_at = await _applied(store_path, group_id)
    assert 0 < killed_at <= total // 2  # committed work survived; the hung batch did not

    async def caught_up() -> bool:
        return await _applied(store_path, group_id) >= total

    output = tmp_path / "service.log"
    await serve_until(command, env, output, caught_up, 180)
    # Every service says at start which accelerations it runs with (and why any is off).
    assert "accelerations" in output.read_text()

    async with SqliteStore(store_path) as live, SqliteStore(tmp_path / "reference.db") as reference:
        await apply_directly(group, reference, events)
        assert await snapshot(group, live, events) == await snapshot(group, reference, events)
        if group == "audit":
            assert await verify_audit(live) == []
    # Every column, the audit chain's sequence numbers and hashes included, equals a build that
    # was never interrupted.
    await rebuild_into(settings, group, tmp_path / "uninterrupted.db", store_path)


@pytest.mark.broker
async def test_a_runner_failing_to_start_closes_what_it_opened(
    cluster: Cluster, new_topic: str
) -> None:
    """A start that fails half-way closes the dead-letter producer and registry client it opened."""
    runner = GroupRunner(
        f"bad-{uuid.uuid4().hex[:6]}",
        [new_topic],
        settings=cluster.settings,
        handlers={},
        max_poll_records=0,  # refused by the consumer, made after the producer started
    )
    with pytest.raises(ValueError, match="max_poll_records"):
        await runner.run()
    assert runner._dead_letters._producer._closed
    assert runner.codec.registry._http.is_closed


async def _until_all_committed(settings: AgentfluxSettings, group: str, partitions: int) -> None:
    """Return once the group has committed every partition up to its end (asks the broker)."""
    async with asyncio.timeout(60):
        while True:
            rows = await group_lag(settings, [group])
            if len(rows) == partitions and all(row.lag == 0 for row in rows):
                return
            await asyncio.sleep(0.1)  # between two questions to the broker


@pytest.mark.broker
async def test_a_commit_failing_at_a_rebalance_does_not_stop_later_commits(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revocation commit that fails: the member goes on committing what it handles afterwards."""
    settings, topic = await _agent_topic(cluster, partitions=2)
    group = f"commits-{uuid.uuid4().hex[:6]}"
    handled: set[str] = set()

    async def remember(event: BaseEvent) -> None:
        handled.add(str(event.event_id))

    def member() -> GroupRunner:
        return GroupRunner(
            group, [topic], settings=settings, handlers={AgentSwitchedEvent: remember}
        )

    async def publish(sessions: str) -> list[str]:
        events = [
            AgentSwitchedEvent(session_id=f"{sessions}-{i % 20}", from_agent="a", to_agent="b")
            for i in range(60)
        ]
        async with EventPublisher(settings) as publisher:
            for event in events:
                await publisher.send(event)
        return [str(event.event_id) for event in events]

    refusing = True
    first, second = member(), member()
    async with first:
        async with asyncio.timeout(60):
            await first.ready.wait()
        commit = first._consumer.commit

        async def refused_while_asked(offsets: Any = None) -> None:
            if refusing:  # as when the group's coordinator moves mid-rebalance
                raise CommitFailedError("injected: the coordinator moved")
            await commit(offsets)

        monkeypatch.setattr(first._consumer, "commit", refused_while_asked)
        published = await publish("before")
        async with asyncio.timeout(60):
            await first.wait_handled(len(published))  # handled on both partitions, uncommitted
        async with second:  # the rebalance: the first member's commit of both partitions fails
            async with asyncio.timeout(60):
                await second.ready.wait()
            refusing = False
            published += await publish("after")
            await _until_all_committed(settings, group, partitions=2)
        assert first.handled > len(published) // 2  # it kept handling after the rebalance
    assert handled == set(published)


@pytest.mark.broker
@pytest.mark.skipif(
    not gate().tested, reason="the cleanup reaches into aiokafka: only on a tested version"
)
async def test_a_consumer_stop_cut_short_inside_aiokafka_still_closes_every_connection(
    cluster: Cluster, new_topic: str
) -> None:
    """A consumer stop cut short by a fetch's stray cancellation: the runner closes the rest."""
    runner = GroupRunner(
        f"cut-{uuid.uuid4().hex[:6]}", [new_topic], settings=cluster.settings, handlers={}
    )
    async with runner:
        async with asyncio.timeout(60):
            await runner.ready.wait()
        consumer = runner._consumer

        async def send_to_a_broker_that_is_down() -> None:
            raise KafkaConnectionError

        async def fetch_retrying_after_a_failure() -> None:
            # aiokafka's fetch of a broker that is down: its backoff sleep sits in an ``except``
            # clause, so a cancellation escapes Fetcher.close (aio-libs/aiokafka issue 647).
            try:
                await send_to_a_broker_that_is_down()
            except KafkaConnectionError:
                await asyncio.sleep(60)

        consumer._fetcher._pending_tasks.add(asyncio.create_task(fetch_retrying_after_a_failure()))
    client = consumer._client
    assert [conn for conn in client._conns.values() if conn.connected()] == []
    assert client._sync_task is None  # the metadata task that would reconnect is gone
    assert runner._task.exception() is None  # the run ended normally, not cancelled


@pytest.mark.broker
async def test_a_refused_commit_is_retried_with_no_new_record_to_trigger_it(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits refused for a while, then accepted: an idle partition's offsets get committed."""
    settings, topic = await _agent_topic(cluster, partitions=1)
    group = f"retry-{uuid.uuid4().hex[:6]}"

    async def ignore(_event: BaseEvent) -> None:
        pass

    runner = GroupRunner(
        group,
        [topic],
        settings=settings,
        handlers={AgentSwitchedEvent: ignore},
        backoff_s=0.05,
        max_backoff_s=0.2,
    )
    refusals = 0
    refused_twice = asyncio.Event()
    async with runner:
        async with asyncio.timeout(60):
            await runner.ready.wait()
        commit = runner._consumer.commit

        async def refused_twice_then_accepted(offsets: Any = None) -> None:
            nonlocal refusals
            if refusals < 2:  # refused, then refused on the retry too
                refusals += 1
                if refusals == 2:
                    refused_twice.set()
                raise CommitFailedError("injected: a rebalance is under way")
            await commit(offsets)

        monkeypatch.setattr(runner._consumer, "commit", refused_twice_then_accepted)
        events = [
            AgentSwitchedEvent(session_id=f"s-{i}", from_agent="a", to_agent="b") for i in range(10)
        ]
        async with EventPublisher(settings) as publisher:
            for event in events:
                await publisher.send(event)
        async with asyncio.timeout(60):
            await runner.wait_handled(len(events))
            await refused_twice.wait()  # retried on its own: nothing new was published
        await _until_all_committed(settings, group, partitions=1)
