"""One trace from ``publish`` to every group's handler, across the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING

import pytest
from _otel import recorded_spans
from _traffic import prefixed_topics
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from agentflux.consumers import GroupSpec, SqliteStore
from agentflux.consumers._groups import SHIPPED_GROUPS
from agentflux.producers import EventPublisher, HitlApprovalRequestedEvent
from agentflux.schemas import EventCategory

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from conftest import Cluster
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanContext

    from agentflux.schemas import BaseEvent

pytestmark = pytest.mark.broker


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """The SDK provider for this test."""
    yield from recorded_spans(monkeypatch)


async def test_one_trace_from_publish_to_every_shipped_group_and_a_teams_handler(
    cluster: Cluster, exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    """Each group's consumer span is a child of the publishing span; a team's handler runs inside its span."""
    settings = await prefixed_topics(cluster)
    inside_handler: list[SpanContext] = []

    async def on_request(event: BaseEvent) -> None:
        del event
        inside_handler.append(trace.get_current_span().get_span_context())

    team = GroupSpec(
        name="team-traces",
        group_id=f"team-traces-{uuid.uuid4().hex[:6]}",
        categories=(EventCategory.HITL,),
        handlers={HitlApprovalRequestedEvent: on_request},
        start="earliest",
    )
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("request approval", kind=SpanKind.PRODUCER) as publishing:
        async with EventPublisher(settings) as publisher:
            await publisher.publish(
                HitlApprovalRequestedEvent(
                    session_id=f"s-{uuid.uuid4().hex[:6]}", approval_id="a-1", subject="deploy"
                )
            )
    sent = publishing.get_span_context()
    group_ids = {}
    for name, spec in [*SHIPPED_GROUPS.items(), (team.name, team)]:
        group_ids[name] = f"{spec.group_id}-{uuid.uuid4().hex[:6]}"
        async with contextlib.AsyncExitStack() as opened:
            store = None
            if spec.is_view:
                store = await opened.enter_async_context(SqliteStore(tmp_path / f"{name}.db"))
            service = spec.service(store, settings, group_id=group_ids[name])
            task = asyncio.create_task(service.run())
            try:
                async with asyncio.timeout(120):
                    while service.handled < 1:
                        assert not task.done(), f"the {name} group stopped"
                        await asyncio.sleep(0.1)  # handled in the service's task
            finally:
                service.stop()
                await task
    consumer_spans = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    by_group = {str(s.attributes["messaging.consumer.group.name"]): s for s in consumer_spans}  # type: ignore[index]
    assert set(by_group) == set(group_ids.values())
    for span in by_group.values():
        assert span.context.trace_id == sent.trace_id
        assert span.parent is not None
        assert span.parent.span_id == sent.span_id
        assert (
            span.attributes["messaging.destination.name"] == settings.topic_prefix + "hitl.events"
        )  # type: ignore[index]
    (handler_context,) = inside_handler
    assert handler_context.span_id == by_group[group_ids[team.name]].context.span_id
