"""A shipped group moved back in time re-reads exactly the later events, and its views stay right."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import pytest
from _cli import run_cli
from _traffic import apply_directly, events_of, publish_before_and_after, snapshot

from agentflux._offsets import group_lag
from agentflux.consumers import SqliteStore, verify_audit
from agentflux.consumers._groups import shipped_runner

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Cluster


@pytest.mark.broker
@pytest.mark.parametrize("group", ["context", "metrics", "audit"])
async def test_replay_to_datetime_then_restart_reprocesses_exactly_later_events(
    cluster: Cluster, tmp_path: Path, group: str
) -> None:
    """`replay --to T --execute` + restart re-reads the events after T only; views unchanged."""
    settings, early, replay_from, late = await publish_before_and_after(
        cluster, sessions=10, seed=41
    )
    events = early + late
    total, after = len(events_of(group, events)), len(events_of(group, late))
    group_id = f"{group}-{uuid.uuid4().hex[:6]}"

    async with SqliteStore(tmp_path / "view.db") as store:
        async with shipped_runner(group, store, settings, group_id=group_id) as first:
            async with asyncio.timeout(60):
                await first.wait_handled(total)
        before = await snapshot(group, store, events)

        plan = await run_cli(
            settings, "replay", "--group", group_id, "--to", replay_from.isoformat()
        )
        assert plan.code == 0, plan.stderr
        assert "nothing changed" in plan.stdout  # without --execute only the plan is shown
        moved = await run_cli(
            settings, "replay", "--group", group_id, "--to", replay_from.isoformat(), "--execute"
        )
        assert moved.code == 0, moved.stderr
        lag = await group_lag(settings, [group_id])
        assert sum(row.lag for row in lag) == after  # exactly the later events are pending again

        async with shipped_runner(group, store, settings, group_id=group_id) as restarted:
            async with asyncio.timeout(60):
                await restarted.wait_handled(after)
                while sum(row.lag for row in await group_lag(settings, [group_id])) > 0:
                    await asyncio.sleep(0.1)  # until the re-read is committed
        assert restarted.handled == after
        assert restarted.redelivered == after  # each one found already applied: no double effect
        assert await snapshot(group, store, events) == before
        async with SqliteStore(tmp_path / "ref.db") as reference:
            await apply_directly(group, reference, events)
            assert before == await snapshot(group, reference, events)
        if group == "audit":
            assert await verify_audit(store) == []
