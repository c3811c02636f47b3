"""Audit evidence on the real broker: a hole in a producer's sequence is one gap, nothing else."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import pytest
from _cli import run_cli
from _registration import register_shipped_schemas
from conftest import create_topic

from agentflux.consumers import SqliteStore, audit_report
from agentflux.consumers._groups import shipped_runner
from agentflux.producers import EventPublisher
from agentflux.schemas import AgentSwitchedEvent, EventCategory, SessionCreatedEvent

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Cluster

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def test_a_dropped_event_is_reported_as_one_gap(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sequence 0, 1, 3, 4 published: the chain has a gap at 2, and verify says exactly that."""
    monkeypatch.setenv("AGENTFLUX_AUDIT_GRACE_S", "1")
    settings = cluster.settings.model_copy(update={"topic_prefix": f"a{uuid.uuid4().hex[:8]}."})
    for category in EventCategory:
        await create_topic(settings, settings.topic_prefix + category.topic, partitions=3)
    await register_shipped_schemas(settings)
    created = SessionCreatedEvent(session_id="hole-1", initial_agent="orchestrator")
    switches = [
        AgentSwitchedEvent(session_id="hole-1", from_agent=f"a{i}", to_agent=f"a{i + 1}")
        for i in range(1, 5)
    ]
    numbered = [
        event.model_copy(update={"producer_id": "runtime-x", "sequence": sequence})
        for sequence, event in enumerate([created, *switches])
        if sequence != 2  # lost on the way
    ]
    later = SessionCreatedEvent(session_id="other-1", initial_agent="orchestrator")
    store_path = tmp_path / "audit.db"
    async with (
        SqliteStore(store_path) as store,
        shipped_runner("audit", store, settings, group_id=f"a-{uuid.uuid4().hex[:6]}") as runner,
        EventPublisher(settings) as publisher,
    ):
        for event in numbered:
            await publisher.publish(event)
        async with asyncio.timeout(60):
            await runner.wait_handled(len(numbered))
            # Nothing more arrives: the runner's idle sweep records the gap once the grace
            # period (1 s) has passed without a delivery.
            while not (await audit_report(store))["hole-1"].gaps:
                await asyncio.sleep(0.2)  # poll the store the runner writes
        await publisher.publish(later)
        async with asyncio.timeout(60):
            await runner.wait_handled(len(numbered) + 1)
        reports = await audit_report(store)
    assert reports["hole-1"].gaps == 1
    assert (reports["hole-1"].late, reports["hole-1"].pending) == (0, 0)
    assert reports["other-1"].status == "intact"

    verified = await run_cli(
        settings, "audit", "verify", "--store", f"sqlite:///{store_path}", "--against-topics"
    )
    assert verified.code == 1, verified.stdout + verified.stderr
    lines = verified.stdout.splitlines()
    assert "hole-1: gaps (5 records, 1 gap(s), 0 late, 0 pending)" in lines
    assert "other-1: intact (1 records, 0 gap(s), 0 late, 0 pending)" in lines
    assert "1 of 2 session(s) not intact" in verified.stdout + verified.stderr
    assert "differs" not in verified.stdout + verified.stderr  # the topics give the same chains
