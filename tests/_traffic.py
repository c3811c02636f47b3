"""Simulated traffic on fresh prefixed topics, and reference views built without Kafka."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from _registration import register_shipped_schemas
from conftest import create_topic

from agentflux.consumers import Position, get_audit_log, get_context, get_metrics
from agentflux.consumers._groups import SHIPPED_GROUPS
from agentflux.producers import EventPublisher, Simulator
from agentflux.schemas import EventCategory

if TYPE_CHECKING:
    from conftest import Cluster

    from agentflux.consumers import Store
    from agentflux.kafka import AgentfluxSettings
    from agentflux.schemas import BaseEvent


async def prefixed_topics(
    cluster: Cluster, *, partitions: int = 3, replication: int = 1, min_isr: int = 1
) -> AgentfluxSettings:
    """Settings whose six category topics exist under a prefix no other test uses."""
    settings = cluster.settings.model_copy(update={"topic_prefix": f"v{uuid.uuid4().hex[:8]}."})
    for category in EventCategory:
        await create_topic(
            settings,
            settings.topic_prefix + category.topic,
            partitions=partitions,
            replication_factor=replication,
            configs={"min.insync.replicas": str(min_isr)},
        )
    await register_shipped_schemas(settings)  # publishers only look schemas up
    return settings


async def publish_traffic(
    cluster: Cluster, *, sessions: int, seed: int
) -> tuple[AgentfluxSettings, list[BaseEvent]]:
    """Create the six category topics under a fresh prefix and publish simulated sessions there."""
    settings = await prefixed_topics(cluster)
    events = list(Simulator(sessions=sessions, seed=seed).events())
    async with EventPublisher(settings) as publisher:
        for event in events:
            await publisher.send(event)
    return settings, events


def events_of(group: str, events: list[BaseEvent]) -> list[BaseEvent]:
    """The events a shipped group reads."""
    categories = SHIPPED_GROUPS[group].categories
    return [e for e in events if e.EVENT_TYPE.category in categories]


async def apply_directly(group: str, store: Store, events: list[BaseEvent]) -> None:
    """Build a group's view by applying the events in publish order, with no broker."""
    view = SHIPPED_GROUPS[group].view()
    await store.migrate(view.ddl)
    for offset, event in enumerate(events_of(group, events)):
        async with store.transaction() as tx:
            await view.apply(tx, event, Position(event.topic, 0, offset))


async def snapshot(group: str, store: Store, events: list[BaseEvent]) -> Any:
    """What a group's view says, in a form two correct builds must agree on exactly."""
    if group == "context":
        return {
            s: await get_context(store, s)
            for s in sorted({e.session_id for e in events_of(group, events)})
        }
    if group == "metrics":
        return await get_metrics(store)
    rows = await get_audit_log(store, limit=1_000_000)
    # Chains interleave topics in arrival order, which differs between builds; contents do not.
    return sorted((r["session_id"], r["event_id"], r["event_type"], r["occurred_ms"]) for r in rows)


async def publish_before_and_after(
    cluster: Cluster, *, sessions: int, seed: int
) -> tuple[AgentfluxSettings, list[BaseEvent], datetime, list[BaseEvent]]:
    """Two batches of traffic with a moment between them: (settings, early, that moment, late)."""
    settings, early = await publish_traffic(cluster, sessions=sessions, seed=seed)
    await asyncio.sleep(0.05)  # keep the moment strictly between the batches' ms timestamps
    moment = datetime.now(UTC)
    await asyncio.sleep(0.05)
    late = list(Simulator(sessions=sessions, seed=seed + 1, session_prefix="late").events())
    async with EventPublisher(settings) as publisher:
        for event in late:
            await publisher.send(event)
    return settings, early, moment, late
