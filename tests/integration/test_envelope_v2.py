"""Envelope v2 on a real broker and registry, with v1 events still on the topics.

The v1 events are written as a runtime still on the released v1 schemas writes them (their
schema from ``history/.../v1.avsc``, registered first); the v2 ones by today's publisher.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import uuid
from functools import partial
from typing import TYPE_CHECKING, Any

import fastavro
import pytest
from _cli import rebuild_into
from _traffic import apply_directly, events_of, snapshot
from aiokafka import AIOKafkaProducer
from conftest import create_topic, read_to_end

from agentflux._schemas import check_schemas, default_root
from agentflux.consumers import GroupRunner, SqliteStore, get_context
from agentflux.consumers._groups import shipped_runner
from agentflux.kafka import connection_kwargs
from agentflux.producers import EventPublisher, Simulator
from agentflux.schemas import (
    EVENT_MODELS,
    AvroCodec,
    EventCategory,
    HitlApprovalRequestedEvent,
    IncompatibleSchemaError,
    RegistryClient,
    event_headers,
    load_schema,
    released_schema,
    subject_name,
)

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Cluster

    from agentflux.kafka import AgentfluxSettings
    from agentflux.schemas import BaseEvent

pytestmark = [pytest.mark.broker, pytest.mark.slow]

_V2_ONLY = ("producer_id", "sequence")


async def _fresh_topics(cluster: Cluster) -> AgentfluxSettings:
    """The six category topics under a new prefix, each subject with v1 then v2 registered."""
    settings = cluster.settings.model_copy(update={"topic_prefix": f"e{uuid.uuid4().hex[:8]}."})
    async with RegistryClient.from_settings(settings) as registry:
        for category in EventCategory:
            await create_topic(settings, settings.topic_prefix + category.topic, partitions=3)
        for model in EVENT_MODELS.values():
            subject = subject_name(settings.topic_prefix + model.TOPIC, model.RECORD_NAME)
            await registry.set_compatibility(subject, "FULL_TRANSITIVE")
            await registry.register(subject, released_schema(model, 1))
            await registry.register(subject, load_schema(model))
    return settings


def _frame(schema_id: int, schema: dict[str, Any], datum: dict[str, Any]) -> bytes:
    body = io.BytesIO()
    body.write(b"\x00" + schema_id.to_bytes(4, "big"))
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), datum)
    return body.getvalue()


async def _publish_raw(
    settings: AgentfluxSettings, events: list[BaseEvent], *, version: int, headers: bool
) -> None:
    """Write ``events`` with released schema ``version`` (its id looked up), as another client."""
    producer = AIOKafkaProducer(**connection_kwargs(settings))
    await producer.start()
    try:
        async with RegistryClient.from_settings(settings) as registry:
            for event in events:
                model, topic = type(event), settings.topic_prefix + event.topic
                schema = released_schema(model, version)
                schema_id = await registry.lookup(subject_name(topic, model.RECORD_NAME), schema)
                assert schema_id is not None
                names = {f["name"] for f in schema["fields"]}
                datum = {k: v for k, v in event.__dict__.items() if k in names}
                datum["schema_version"] = version
                await producer.send_and_wait(
                    topic,
                    _frame(schema_id, schema, datum),
                    key=event.session_id.encode(),
                    headers=event_headers(event, "") if headers else None,
                )
    finally:
        await producer.stop()


async def _publish_v2(settings: AgentfluxSettings, events: list[BaseEvent]) -> None:
    async with EventPublisher(settings) as publisher:
        for event in events:
            await publisher.send(event)


async def test_a_consumer_on_v1_schemas_reads_v2_events(cluster: Cluster) -> None:
    """A GroupRunner reading with the v1 schemas gets every v2 event, the new fields ignored."""
    settings = await _fresh_topics(cluster)
    events = list(Simulator(sessions=4, seed=7).events())
    await _publish_v2(settings, events)
    received: list[BaseEvent] = []

    async def keep(event: BaseEvent) -> None:
        received.append(event)

    async with RegistryClient.from_settings(settings) as registry:
        codec = AvroCodec(registry, reader_schemas=partial(released_schema, version=1))
        runner = GroupRunner(
            f"v1-reader-{uuid.uuid4().hex[:6]}",
            [settings.topic_prefix + c.topic for c in EventCategory],
            settings=settings,
            handlers=dict.fromkeys(EVENT_MODELS.values(), keep),
            codec=codec,
        )
        async with runner:
            async with asyncio.timeout(60):
                await runner.wait_handled(len(events))
    assert len(received) == len(events)
    assert all(e.producer_id is None and e.sequence is None for e in received)
    expected = {e.event_id: e.model_dump(exclude={"schema_version", *_V2_ONLY}) for e in events}
    assert {e.event_id: e.model_dump(exclude={"schema_version", *_V2_ONLY}) for e in received} == (
        expected
    )


@pytest.mark.parametrize("group", ["context", "metrics", "audit"])
async def test_v1_and_v2_events_build_the_same_views_live_and_rebuilt(
    cluster: Cluster, tmp_path: Path, group: str
) -> None:
    """Retained v1 events are read with defaults; the live view equals the reference and rebuild."""
    settings = await _fresh_topics(cluster)
    old = list(Simulator(sessions=6, seed=21, session_prefix="old").events())
    new = list(Simulator(sessions=6, seed=22, session_prefix="new").events())
    await _publish_raw(settings, old, version=1, headers=True)
    await _publish_v2(settings, new)
    events = old + new
    live_path, fresh_path, reference_path = (tmp_path / f"{n}.db" for n in ("l", "f", "r"))
    async with SqliteStore(live_path) as live:
        runner = shipped_runner(group, live, settings, group_id=f"{group}-{uuid.uuid4().hex[:6]}")
        async with runner:
            async with asyncio.timeout(60):
                await runner.wait_handled(len(events_of(group, events)))
        assert await read_to_end(settings, [runner.dlq_topic]) == []
        await rebuild_into(settings, group, fresh_path, live_path)
        async with SqliteStore(reference_path) as reference:
            await apply_directly(group, reference, events)
            assert await snapshot(group, live, events) == await snapshot(group, reference, events)


async def test_a_breaking_change_is_refused_by_the_gate_and_the_registry(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A required field without default, or an enum symbol without default: refused twice."""
    settings = await _fresh_topics(cluster)
    root = tmp_path / "avro"
    shutil.copytree(default_root(), root)
    approval = root / "hitl" / "HitlApprovalRequested.avsc"
    required = json.loads(approval.read_text())
    required["fields"].append({"name": "risk", "type": "string"})
    approval.write_text(json.dumps(required))
    decision = root / "hitl" / "HitlDecisionMade.avsc"
    escalated = json.loads(decision.read_text())
    enum = next(f for f in escalated["fields"] if f["name"] == "decision")["type"]
    enum["symbols"].append("ESCALATED")
    decision.write_text(json.dumps(escalated))

    problems, _ = check_schemas(root)
    assert any("HitlApprovalRequested" in p and "risk" in p for p in problems)
    assert any("HitlDecision" in p and "ESCALATED" in p for p in problems)

    topic = settings.topic_prefix + "hitl.events"
    async with RegistryClient.from_settings(settings) as registry:
        for record, schema in (
            ("agentflux.events.hitl.HitlApprovalRequested", required),
            ("agentflux.events.hitl.HitlDecisionMade", escalated),
        ):
            subject = subject_name(topic, record)
            with pytest.raises(IncompatibleSchemaError):
                await registry.register(subject, schema)
            assert await registry.lookup(subject, schema) is None
    assert await read_to_end(settings, [topic]) == []


async def test_a_foreign_record_without_headers_is_consumed_by_the_shipped_groups(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Another client's record (latest schema, no agentflux headers) reaches the context view."""
    settings = await _fresh_topics(cluster)
    requested = HitlApprovalRequestedEvent(
        session_id="foreign-1", approval_id="a-9", subject="deploy to production?"
    )
    await _publish_raw(settings, [requested], version=2, headers=False)
    async with SqliteStore(tmp_path / "context.db") as store:
        runner = shipped_runner("context", store, settings, group_id=f"c-{uuid.uuid4().hex[:6]}")
        async with runner:
            async with asyncio.timeout(60):
                await runner.wait_handled(1)
        assert await read_to_end(settings, [runner.dlq_topic]) == []
        context = await get_context(store, "foreign-1")
    assert context is not None
    assert context["pending_approvals"] == ["a-9"]
