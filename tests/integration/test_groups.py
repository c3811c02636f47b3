"""The three shipped groups on the real cluster build the same views as a direct, broker-less build."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import pytest
from _traffic import apply_directly, events_of, publish_traffic, snapshot
from conftest import fresh_postgres_database

from agentflux.consumers import SqliteStore, open_store, verify_audit
from agentflux.consumers._groups import shipped_runner

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Cluster

    from agentflux.consumers import Store

GROUPS = ["context", "metrics", "audit"]


async def _fresh_postgres(postgres_url: str) -> Store:
    return open_store(await fresh_postgres_database(postgres_url))


async def _check_groups(cluster: Cluster, live: dict[str, Store], reference_dir: Path) -> None:
    settings, events = await publish_traffic(cluster, sessions=60, seed=5)
    for group in GROUPS:
        async with (
            live[group] as store,
            SqliteStore(reference_dir / f"{group}-reference.db") as reference,
        ):
            runner = shipped_runner(
                group, store, settings, group_id=f"{group}-{uuid.uuid4().hex[:6]}"
            )
            expected = len(events_of(group, events))
            async with runner:
                async with asyncio.timeout(120):
                    await runner.wait_handled(expected)
            assert runner.handled == expected
            await apply_directly(group, reference, events)
            assert await snapshot(group, store, events) == await snapshot(group, reference, events)
            if group == "audit":
                assert await verify_audit(store) == []


@pytest.mark.broker
@pytest.mark.slow
async def test_groups_on_sqlite(cluster: Cluster, tmp_path: Path) -> None:
    """Context, metrics and audit views built from Kafka into SQLite match the direct build."""
    live: dict[str, Store] = {g: SqliteStore(tmp_path / f"{g}.db") for g in GROUPS}
    await _check_groups(cluster, live, tmp_path)


@pytest.mark.broker
@pytest.mark.postgres
@pytest.mark.slow
async def test_groups_on_postgres(cluster: Cluster, postgres_url: str, tmp_path: Path) -> None:
    """The same views built into PostgreSQL match the direct build too."""
    live = {g: await _fresh_postgres(postgres_url) for g in GROUPS}
    await _check_groups(cluster, live, tmp_path)
