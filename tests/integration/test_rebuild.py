"""`agentflux rebuild`: views rebuilt from retained events equal the live ones, and swap in."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import pytest
from _cli import rebuild_into, run_cli
from _traffic import apply_directly, events_of, publish_traffic, snapshot
from aiokafka.admin import AIOKafkaAdminClient
from conftest import fresh_postgres_database

from agentflux._offsets import group_lag, list_groups
from agentflux.consumers import SqliteStore, open_store
from agentflux.consumers._groups import shipped_runner
from agentflux.kafka import connection_kwargs
from agentflux.producers import EventPublisher, Simulator

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Cluster

    from agentflux.kafka import AgentfluxSettings
    from agentflux.schemas import BaseEvent


async def _topics(settings: AgentfluxSettings) -> list[str]:
    admin = AIOKafkaAdminClient(**connection_kwargs(settings))
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


async def _live_view(
    settings: AgentfluxSettings, group: str, store_url: str, events: list[BaseEvent]
) -> str:
    group_id = f"{group}-{uuid.uuid4().hex[:6]}"
    async with (
        open_store(store_url) as store,
        shipped_runner(group, store, settings, group_id=group_id) as runner,
    ):
        async with asyncio.timeout(60):
            await runner.wait_handled(len(events_of(group, events)))
    return group_id


@pytest.mark.broker
@pytest.mark.parametrize("group", ["context", "metrics", "audit"])
async def test_rebuild_into_fresh_sqlite_matches_the_live_view(
    cluster: Cluster, tmp_path: Path, group: str
) -> None:
    """After simulated traffic, each rebuilt view equals the live one exactly."""
    settings, events = await publish_traffic(cluster, sessions=25, seed=51)
    live_path, fresh_path = tmp_path / "live.db", tmp_path / "fresh.db"
    await _live_view(settings, group, f"sqlite:///{live_path}", events)

    topics_before = set(await _topics(settings))
    done = await rebuild_into(settings, group, fresh_path, live_path)
    assert f"from {len(events_of(group, events))} events" in done.stdout
    async with SqliteStore(live_path) as live, SqliteStore(fresh_path) as fresh:
        assert await snapshot(group, fresh, events) == await snapshot(group, live, events)
    assert not [
        g for g in await list_groups(settings) if g.startswith(f"agentflux.rebuild.{group}")
    ]
    left = set(await _topics(settings)) - topics_before
    assert not [t for t in left if "agentflux.rebuild." in t]  # nor its dead-letter topic

    again = await run_cli(settings, "rebuild", group, "--into", f"sqlite:///{fresh_path}")
    assert again.code == 1  # a store that already holds the view is refused
    assert "already holds" in again.stderr


@pytest.mark.broker
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_rebuild_reports_differences_and_swap_makes_it_live(
    cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    """A damaged live view is reported; --swap replaces it and the service resumes exactly."""
    settings, events = await publish_traffic(cluster, sessions=25, seed=52)
    if kind == "sqlite":
        live_url, first_url, second_url = (
            f"sqlite:///{tmp_path / name}" for name in ("live.db", "a.db", "b.db")
        )
    else:
        server = request.getfixturevalue("postgres_url")
        live_url, first_url, second_url = [await fresh_postgres_database(server) for _ in range(3)]
    group_id = await _live_view(settings, "metrics", live_url, events)
    async with open_store(live_url) as live, live.transaction() as tx:
        await tx.execute("DELETE FROM m_counts WHERE metric = $1", "events")  # the damage

    checked = await run_cli(
        settings,
        "rebuild",
        "metrics",
        "--into",
        first_url,
        "--live",
        live_url,
    )
    assert checked.code == 1
    assert "DIFFERENT" in checked.stdout
    assert "only in the rebuilt one" in checked.stdout

    swap = ("--live", live_url, "--group-id", group_id, "--swap")
    if kind == "postgres":  # a service still connected to the live database: refused, nothing moved
        async with open_store(live_url):
            busy = await run_cli(settings, "rebuild", "metrics", "--into", second_url, *swap)
        assert busy.code == 1
        assert "still open" in busy.stderr
        second_url = await fresh_postgres_database(request.getfixturevalue("postgres_url"))

    swapped = await run_cli(settings, "rebuild", "metrics", "--into", second_url, *swap)
    assert swapped.code == 0, swapped.stdout + swapped.stderr
    assert "swapped" in swapped.stdout
    assert "replaced" in swapped.stdout  # the old view is kept aside, and said where

    late = list(Simulator(sessions=8, seed=53, session_prefix="late").events())
    async with EventPublisher(settings) as publisher:
        for event in late:
            await publisher.send(event)
    everything = events + late
    async with open_store(live_url) as live:
        async with shipped_runner("metrics", live, settings, group_id=group_id) as resumed:
            async with asyncio.timeout(60):
                await resumed.wait_handled(len(late))
                while sum(row.lag for row in await group_lag(settings, [group_id])) > 0:
                    await asyncio.sleep(0.1)  # until the resumed service committed everything
        assert resumed.handled == len(late)  # resumed exactly where the rebuild ended
        async with SqliteStore(tmp_path / "ref.db") as reference:
            await apply_directly("metrics", reference, everything)
            assert await snapshot("metrics", live, everything) == await snapshot(
                "metrics", reference, everything
            )
