"""Publisher and runner on the 3-node cluster under failure: a killed leader, a crashed registry."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter, defaultdict
from typing import TYPE_CHECKING

import httpx
import pytest
from _registration import register_shipped_schemas
from _traffic import apply_directly, events_of, snapshot
from aiokafka.admin import AIOKafkaAdminClient
from conftest import create_topic, read_to_end

from agentflux.consumers import GroupRunner, SqliteStore
from agentflux.consumers._groups import SHIPPED_GROUPS
from agentflux.kafka import connection_kwargs
from agentflux.producers import (
    AgentProcessingStartedEvent,
    AgentSwitchedEvent,
    EventPublisher,
    PublishResult,
    SchemaRegistrationError,
    Simulator,
)
from agentflux.schemas import BaseEvent, EventCategory, dead_letter_topic, header_map

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from conftest import Cluster

    from agentflux.kafka import AgentfluxSettings

pytestmark = [pytest.mark.cluster3, pytest.mark.slow]


async def _durable_topic(cluster: Cluster) -> tuple[AgentfluxSettings, str]:
    settings = cluster.settings.model_copy(update={"topic_prefix": f"f{uuid.uuid4().hex[:8]}."})
    topic = settings.topic_prefix + "agent.events"
    await create_topic(
        settings,
        topic,
        partitions=3,
        replication_factor=3,
        configs={"min.insync.replicas": "2"},
    )
    await register_shipped_schemas(settings)
    return settings, topic


async def _read_all(settings: AgentfluxSettings, topic: str) -> dict[str, list[str]]:
    """Every record's event id, per session key, in log order (one partition per key)."""
    by_session: dict[str, list[str]] = defaultdict(list)
    for record in await read_to_end(settings, [topic]):
        by_session[(record.key or b"").decode()].append(header_map(record.headers)["event_id"])
    return by_session


@contextlib.asynccontextmanager
async def _registry_down(cluster: Cluster, settings: AgentfluxSettings) -> AsyncIterator[None]:
    """The registry crashed (SIGKILL) for the block, and started again after it, however it ends."""
    await asyncio.to_thread(cluster.stop_registry)
    try:
        async with httpx.AsyncClient() as http:
            with pytest.raises(httpx.TransportError):
                await http.get(f"{settings.registry_url}/subjects")
        yield
    finally:
        await asyncio.to_thread(cluster.start_registry)


def _acknowledged(
    sent: list[tuple[str, str, asyncio.Future[PublishResult]]],
) -> dict[str, list[str]]:
    by_session: dict[str, list[str]] = defaultdict(list)
    for session, event_id, future in sent:
        if not future.cancelled() and future.exception() is None:
            by_session[session].append(event_id)
    return by_session


async def test_leader_killed_while_publishing_100k_events_loses_and_repeats_nothing(
    cluster3: Cluster,
) -> None:
    """SIGKILL a leader mid-way through 100k events of 500 sessions: each acked event once, in order."""
    settings, topic = await _durable_topic(cluster3)
    victim = await cluster3.leader_of(topic, 0)
    total, sessions = 100_000, 500
    sent: list[tuple[str, str, asyncio.Future[PublishResult]]] = []
    async with EventPublisher(settings) as publisher:
        for i in range(total):
            if i == total // 3:
                await asyncio.to_thread(cluster3.kill_node, victim)
            event = AgentProcessingStartedEvent(
                session_id=f"s-{i % sessions:04d}", agent="coder", model=f"step-{i}"
            )
            sent.append((event.session_id, str(event.event_id), await publisher.send(event)))
        await publisher.flush()
        await asyncio.gather(*(future for *_, future in sent), return_exceptions=True)
    assert await cluster3.leader_of(topic, 0) != victim  # a follower took over
    await asyncio.to_thread(cluster3.start_node, victim)

    acknowledged = _acknowledged(sent)
    assert sum(map(len, acknowledged.values())) == total  # min ISR 2 of 3: every send succeeds
    on_topic = await _read_all(settings, topic)
    assert on_topic == acknowledged  # exactly once each, and in publish order per session


async def test_registry_crash_cached_schemas_flow_new_schema_fails_clearly(
    cluster3: Cluster,
) -> None:
    """With the registry down, cached schemas publish, a new one fails typed, nothing acked is lost."""
    settings, topic = await _durable_topic(cluster3)
    settings = settings.model_copy(update={"registry_retries": 1, "registry_timeout_s": 2.0})
    sent: list[tuple[str, str, asyncio.Future[PublishResult]]] = []

    async def send(publisher: EventPublisher, count: int) -> None:
        for i in range(count):
            event = AgentProcessingStartedEvent(session_id=f"s-{i % 20}", agent="coder")
            sent.append((event.session_id, str(event.event_id), await publisher.send(event)))

    async with EventPublisher(settings) as publisher:
        await send(publisher, 100)  # looks the schema up and caches it
        await publisher.flush()
        async with _registry_down(cluster3, settings):
            await send(publisher, 2000)  # cached schema: no registry needed
            await publisher.flush()
            new_type = AgentSwitchedEvent(session_id="s-1", from_agent="coder", to_agent="reviewer")
            with pytest.raises(SchemaRegistrationError, match="unavailable"):
                await publisher.publish(new_type)
        # The local registry keeps schemas in memory: restarted, it has them again once
        # registered (a production registry keeps them in its storage).
        await register_shipped_schemas(settings)
        switched = await publisher.publish(new_type)  # the registry is back: it goes through
        sent.append((new_type.session_id, str(new_type.event_id), _done(switched)))

    acknowledged = _acknowledged(sent)
    assert sum(map(len, acknowledged.values())) == 2101
    assert await _read_all(settings, topic) == acknowledged


def _done(result: PublishResult) -> asyncio.Future[PublishResult]:
    future: asyncio.Future[PublishResult] = asyncio.get_running_loop().create_future()
    future.set_result(result)
    return future


def _agent_events(count: int) -> list[BaseEvent]:
    """Two event types of 20 sessions, alternating: two schemas for a consumer to know."""
    return [
        AgentProcessingStartedEvent(session_id=f"s-{i % 20}", agent="coder")
        if i % 2
        else AgentSwitchedEvent(session_id=f"s-{i % 20}", from_agent="coder", to_agent="tester")
        for i in range(count)
    ]


def _waits(runner: GroupRunner) -> float:
    """How often the runner's records have waited for the registry (its Prometheus counter)."""
    value = runner.metrics.registry.get_sample_value(
        "agentflux_registry_waits_total", {"group": runner.group_id}
    )
    return value or 0.0


async def _until_waiting(runner: GroupRunner) -> None:
    async with asyncio.timeout(120):
        while _waits(runner) < 2:  # waited, then waited again: not one slow answer
            assert not runner.finished, "the runner stopped instead of waiting for the registry"
            await asyncio.sleep(0.05)  # poll interval of the runner's own counter


async def _committed(settings: AgentfluxSettings, group: str) -> dict[object, object]:
    admin = AIOKafkaAdminClient(**connection_kwargs(settings))
    await admin.start()
    try:
        return dict(await admin.list_consumer_group_offsets(group))
    finally:
        await admin.close()


async def _all_handled(handled: list[str], count: int) -> None:
    """Return once the handlers of every runner sharing ``handled`` saw ``count`` events."""
    while len(handled) < count:
        await asyncio.sleep(0.05)  # poll interval of the test's own list


async def test_registry_crash_runner_waits_for_it_then_cached_schemas_flow(
    cluster3: Cluster,
) -> None:
    """Without a registry a cold group waits (no dead letter, no crash, rebalances go on); warm, it needs none."""
    settings, topic = await _durable_topic(cluster3)
    settings = settings.model_copy(update={"registry_retries": 1, "registry_timeout_s": 2.0})
    handled: list[str] = []

    async def note(event: BaseEvent) -> None:
        handled.append(str(event.event_id))

    def runner(group: str) -> GroupRunner:
        handlers = {AgentProcessingStartedEvent: note, AgentSwitchedEvent: note}
        return GroupRunner(group, [topic], settings=settings, handlers=handlers, max_backoff_s=0.5)

    group = f"wait-{uuid.uuid4().hex[:6]}"
    waiting, joining = runner(group), runner(group)
    stopped = runner(f"stop-{uuid.uuid4().hex[:6]}")
    before, during = _agent_events(200), _agent_events(300)
    async with EventPublisher(settings) as publisher:
        for event in before:
            await publisher.send(event)
        await publisher.flush()
        async with contextlib.AsyncExitStack() as running:
            async with _registry_down(cluster3, settings):
                await running.enter_async_context(waiting)  # runs on after the block
                async with stopped:  # stopped while its records wait: leaves, committing nothing
                    await asyncio.gather(_until_waiting(waiting), _until_waiting(stopped))
                assert (waiting.handled, stopped.handled) == (0, 0)
                assert await _committed(settings, stopped.group_id) == {}
                # A member joining mid-outage: the waiting batch is left, so the rebalance goes on
                # at once and no member handles a batch whose partition it no longer owns.
                await running.enter_async_context(joining)
                async with asyncio.timeout(60):
                    await joining.ready.wait()
                assert not waiting.finished
                assert handled == []
            async with asyncio.timeout(120):
                await _all_handled(handled, len(before))  # the registry is back
            waits = _waits(waiting) + _waits(joining)

            async with _registry_down(cluster3, settings):
                for event in during:  # both sides have the two schemas cached
                    await publisher.send(event)
                await publisher.flush()
                async with asyncio.timeout(60):
                    await _all_handled(handled, len(before) + len(during))
            assert _waits(waiting) + _waits(joining) == waits  # none of the second outage waited
            assert waiting.handled > 0  # after the rebalance both members handle their share
            assert joining.handled > 0

    published = [str(event.event_id) for event in before + during]
    assert Counter(handled) == Counter(published)  # each handled once, none dead-lettered
    assert await read_to_end(settings, [dead_letter_topic(group)]) == []


async def test_leader_killed_while_the_context_group_consumes_ends_with_the_same_view(
    cluster3: Cluster, tmp_path: Path
) -> None:
    """SIGKILL a partition leader mid-consumption, restart it: the view equals the reference."""
    settings = cluster3.settings.model_copy(update={"topic_prefix": f"k{uuid.uuid4().hex[:8]}."})
    spec = SHIPPED_GROUPS["context"]
    topics = spec.topics(settings)
    for category in EventCategory:  # the simulator publishes to all six
        await create_topic(
            settings,
            settings.topic_prefix + category.topic,
            partitions=3,
            replication_factor=3,
            configs={"min.insync.replicas": "2"},
        )
    await register_shipped_schemas(settings)
    events = list(Simulator(sessions=300, seed=21).events())
    async with EventPublisher(settings) as publisher:
        for event in events:
            await publisher.send(event)
    expected = len(events_of("context", events))
    victim = await cluster3.leader_of(topics[0], 0)

    async with SqliteStore(tmp_path / "live.db") as live:
        runner = GroupRunner(
            f"context-{uuid.uuid4().hex[:6]}",
            topics,
            settings=settings,
            views=[spec.view()],
            store=live,
            max_poll_records=50,  # many small batches: the kill lands mid-stream
        )
        try:
            async with runner:
                async with asyncio.timeout(120):
                    await runner.wait_handled(expected // 4)
                assert runner.handled < expected  # the kill comes before the end
                await asyncio.to_thread(cluster3.kill_node, victim)
                async with asyncio.timeout(180):
                    while runner.handled - runner.redelivered < expected:  # each applied once
                        await runner.wait_handled(runner.handled + 1)
        finally:
            await asyncio.to_thread(cluster3.start_node, victim)
        async with SqliteStore(tmp_path / "reference.db") as reference:
            await apply_directly("context", reference, events)
            assert await snapshot("context", live, events) == await snapshot(
                "context", reference, events
            )
    assert await read_to_end(settings, [dead_letter_topic(runner.group_id)]) == []
