"""The publisher on the 3-node cluster under failure: a killed leader, a crashed registry."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING

import httpx
import pytest
from conftest import create_topic, read_to_end

from producers import (
    AgentProcessingStartedEvent,
    AgentSwitchedEvent,
    EventPublisher,
    PublishResult,
    SchemaRegistrationError,
)
from schemas import header_map

if TYPE_CHECKING:
    from conftest import Cluster

    from schemas import AgentfluxSettings

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
    return settings, topic


async def _read_all(settings: AgentfluxSettings, topic: str) -> dict[str, list[str]]:
    """Every record's event id, per session key, in log order (one partition per key)."""
    by_session: dict[str, list[str]] = defaultdict(list)
    for record in await read_to_end(settings, [topic]):
        by_session[(record.key or b"").decode()].append(header_map(record.headers)["event_id"])
    return by_session


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
        await send(publisher, 100)  # registers and caches the schema
        await publisher.flush()
        await asyncio.to_thread(cluster3.stop_registry)
        try:
            async with httpx.AsyncClient() as http:
                with pytest.raises(httpx.TransportError):
                    await http.get(f"{settings.registry_url}/subjects")
            await send(publisher, 2000)  # cached schema: no registry needed
            await publisher.flush()
            new_type = AgentSwitchedEvent(session_id="s-1", from_agent="coder", to_agent="reviewer")
            with pytest.raises(SchemaRegistrationError, match="unavailable"):
                await publisher.publish(new_type)
        finally:
            await asyncio.to_thread(cluster3.start_registry)
        switched = await publisher.publish(new_type)  # the registry is back: it goes through
        sent.append((new_type.session_id, str(new_type.event_id), _done(switched)))

    acknowledged = _acknowledged(sent)
    assert sum(map(len, acknowledged.values())) == 2101
    assert await _read_all(settings, topic) == acknowledged


def _done(result: PublishResult) -> asyncio.Future[PublishResult]:
    future: asyncio.Future[PublishResult] = asyncio.get_running_loop().create_future()
    future.set_result(result)
    return future
