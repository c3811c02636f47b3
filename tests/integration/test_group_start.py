"""Where a new group starts, on the real broker: latest, a time, and committed offsets kept."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from _traffic import prefixed_topics

from agentflux.consumers import GroupSpec, place_new_group
from agentflux.producers import EventPublisher, ToolExecutionCompletedEvent
from agentflux.schemas import EventCategory

if TYPE_CHECKING:
    from conftest import Cluster

    from agentflux.kafka import AgentfluxSettings
    from agentflux.producers import PublishResult
    from agentflux.schemas import BaseEvent

pytestmark = pytest.mark.broker


def _tool_run(session: str, call: str) -> ToolExecutionCompletedEvent:
    return ToolExecutionCompletedEvent(
        session_id=session, call_id=call, tool_name="search", duration_ms=1
    )


async def _publish(settings: AgentfluxSettings, *events: BaseEvent) -> list[PublishResult]:
    async with EventPublisher(settings) as publisher:
        return [await publisher.publish(event) for event in events]


def _group(start: str, seen: list[str]) -> GroupSpec:
    async def remember(event: BaseEvent) -> None:
        seen.append(event.call_id)  # type: ignore[attr-defined]  # a ToolExecutionCompletedEvent

    return GroupSpec(
        name="team-start",
        group_id=f"team-start-{uuid.uuid4().hex[:8]}",
        categories=(EventCategory.TOOL,),
        handlers={ToolExecutionCompletedEvent: remember},
        start=start,
    )


async def _run_until(
    spec: GroupSpec, settings: AgentfluxSettings, seen: list[str], last: str
) -> None:
    """Place the group as declared, run it until it handled ``last``, stop it."""
    await place_new_group(settings, spec.group_id, spec.topics(settings), spec.start_point)
    async with spec.runner(None, settings) as runner:
        async with asyncio.timeout(120):
            while last not in seen:
                assert not runner.finished, "the runner stopped"
                await asyncio.sleep(0.1)  # handled in the runner's task


async def test_a_latest_group_does_not_see_what_was_published_before_its_first_start(
    cluster: Cluster,
) -> None:
    """Declared latest: the events before its first start are never handled, the later one is."""
    settings = await prefixed_topics(cluster)
    session = f"s-{uuid.uuid4().hex[:6]}"  # one session: one partition, in offset order
    await _publish(settings, *(_tool_run(session, f"before-{i}") for i in range(5)))
    seen: list[str] = []
    spec = _group("latest", seen)
    placed = await place_new_group(settings, spec.group_id, spec.topics(settings), spec.start_point)
    assert sum(placed.values()) == 5  # every partition at its end: the five events behind it
    await _publish(settings, _tool_run(session, "after"))
    await _run_until(spec, settings, seen, "after")
    assert seen == ["after"]


async def test_a_time_start_begins_at_the_first_offset_at_or_after_that_time(
    cluster: Cluster,
) -> None:
    """Declared at a time: each partition starts at its first record at/after it (offsets_for_times)."""
    settings = await prefixed_topics(cluster)
    session = f"s-{uuid.uuid4().hex[:6]}"
    await _publish(settings, *(_tool_run(session, f"old-{i}") for i in range(3)))
    await asyncio.sleep(0.05)  # record timestamps are milliseconds: the time falls between them
    since = datetime.now(UTC)
    await asyncio.sleep(0.05)
    newer = await _publish(settings, *(_tool_run(session, f"new-{i}") for i in range(3)))
    seen: list[str] = []
    spec = _group(since.isoformat(), seen)
    placed = await place_new_group(settings, spec.group_id, spec.topics(settings), spec.start_point)
    first = newer[0]
    assert {(tp.partition, offset) for tp, offset in placed.items() if offset} == {
        (first.partition, first.offset)
    }
    await _run_until(spec, settings, seen, "new-2")
    assert seen == ["new-0", "new-1", "new-2"]


async def test_a_restarted_group_continues_from_its_committed_offsets(cluster: Cluster) -> None:
    """Committed offsets win over the declaration: a restart handles what came while it was down."""
    settings = await prefixed_topics(cluster)
    session = f"s-{uuid.uuid4().hex[:6]}"
    seen: list[str] = []
    spec = _group("latest", seen)
    await place_new_group(settings, spec.group_id, spec.topics(settings), spec.start_point)
    await _publish(settings, _tool_run(session, "first"))
    await _run_until(spec, settings, seen, "first")
    await _publish(settings, _tool_run(session, "while-down"))  # published while it is stopped
    again = await place_new_group(settings, spec.group_id, spec.topics(settings), spec.start_point)
    assert again == {}  # nothing moved: the group has committed offsets
    await _run_until(spec, settings, seen, "while-down")
    assert seen == ["first", "while-down"]
