"""The audit group SIGKILLed mid-batch on the 3-node cluster: restarted, the same chains, hash for hash."""

from __future__ import annotations

import sys
import uuid
from typing import TYPE_CHECKING

import pytest
from _cli import cli_env, rebuild_into
from _hanging_consumer import kill_when_hung, serve_until
from _traffic import prefixed_topics

from agentflux.consumers import SqliteStore, audit_report, verify_audit
from agentflux.producers import EventPublisher, Simulator

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Cluster

pytestmark = [pytest.mark.cluster3, pytest.mark.slow]


async def _applied(store_path: Path, group_id: str) -> int:
    """How many records the group's store says it applied (the offsets stored with the chains)."""
    async with SqliteStore(store_path) as store:
        return sum(offset + 1 for offset in (await store.positions(group_id)).values())


async def _hashes(store_path: Path) -> list[tuple[str, str, int, str, str]]:
    async with SqliteStore(store_path) as store:
        rows = await store.rows(
            "SELECT session_id, chain, seq, kind, hash FROM audit_chain ORDER BY session_id, chain, seq"
        )
    return [(r["session_id"], r["chain"], int(r["seq"]), r["kind"], r["hash"]) for r in rows]


async def test_audit_killed_mid_batch_on_three_nodes_ends_with_the_same_hashes(
    cluster3: Cluster, tmp_path: Path
) -> None:
    """SIGKILL inside a batch's transaction, restart as the service: every chain and hash as uninterrupted."""
    settings = await prefixed_topics(cluster3, replication=3, min_isr=2)
    events = list(Simulator(sessions=150, seed=29).events())
    async with EventPublisher(settings) as publisher:
        for event in events:
            await publisher.send(event)
    total = len(events)  # the audit group reads every category
    store_path = tmp_path / "audit.db"
    group_id = f"audit-{uuid.uuid4().hex[:6]}"
    env = cli_env(settings)

    # The first run hangs inside a batch's open transaction, part of the fetch applied, then
    # is SIGKILLed there: deterministic, unlike racing a consumer that may finish first.
    marker = tmp_path / "hung"
    hang_after = str(total // 2)
    store_url = f"sqlite:///{store_path}"
    await kill_when_hung(
        ["audit", store_url, group_id, hang_after, str(marker), "--batch"], marker, env, 180
    )
    killed_at = await _applied(store_path, group_id)
    assert 0 < killed_at <= total // 2  # committed batches survived; the hung one did not

    async def caught_up() -> bool:
        return await _applied(store_path, group_id) >= total

    service = [sys.executable, "-c", "from agentflux.cli import main; main()", "consume", "audit"]
    service += ["--store", store_url, "--group-id", group_id]
    await serve_until(service, env, tmp_path / "service.log", caught_up, 240)

    async with SqliteStore(store_path) as live:
        assert await verify_audit(live) == []
        reports = await audit_report(live)
    assert {report.status for report in reports.values()} == {"intact"}
    assert sum(report.records for report in reports.values()) == total
    # An uninterrupted build from the topics: `agentflux rebuild` compares every column.
    await rebuild_into(settings, "audit", tmp_path / "uninterrupted.db", store_path)
    assert await _hashes(tmp_path / "uninterrupted.db") == await _hashes(store_path)
