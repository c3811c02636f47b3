"""A second member joining mid-stream, and the service's health and Prometheus endpoints."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import httpx
import pytest
from _traffic import apply_directly, events_of, prefixed_topics, publish_traffic, snapshot

from agentflux._health_http import health_routes, serve_http
from agentflux._local._ports import free_ports
from agentflux.consumers import SqliteStore, get_audit_log, render_prometheus, verify_audit
from agentflux.consumers._groups import SHIPPED_GROUPS, shipped_runner
from agentflux.producers import EventPublisher, Simulator

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Cluster


@pytest.mark.broker
@pytest.mark.slow
async def test_member_joining_mid_stream_loses_and_repeats_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A rebalance while the first member works: the audit has every event exactly once."""
    settings, events = await publish_traffic(cluster, sessions=120, seed=13)
    group_id = f"audit-{uuid.uuid4().hex[:6]}"
    async with SqliteStore(tmp_path / "audit.db") as store:
        first = shipped_runner("audit", store, settings, group_id=group_id)
        second = shipped_runner("audit", store, settings, group_id=group_id)
        async with first:
            async with asyncio.timeout(60):
                await first.wait_handled(len(events) // 5)
            async with second:  # joins: partitions are revoked from the first mid-stream
                async with asyncio.timeout(60):
                    await second.ready.wait()  # the rebalance gave it partitions
                # Traffic after the rebalance lands on both members' partitions, so the second
                # surely has work however fast the first finished the backlog.
                late = list(Simulator(sessions=30, seed=14, session_prefix="late").events())
                async with EventPublisher(settings) as publisher:
                    for event in late:
                        await publisher.send(event)
                events += late
                expected = len(events_of("audit", events))
                async with asyncio.timeout(120):
                    while first.handled + second.handled < expected:
                        await asyncio.sleep(0.1)  # poll two runners' counters
        assert second.handled > 0  # the rebalance really gave the second member work
        rows = await get_audit_log(store, limit=1_000_000)
        assert len(rows) == expected
        assert len({r["event_id"] for r in rows}) == expected
        assert await verify_audit(store) == []


@pytest.mark.broker
async def test_health_and_prometheus_endpoints(cluster: Cluster, tmp_path: Path) -> None:
    """The metrics service answers /health and serves runner and view metrics in Prometheus text."""
    settings, events = await publish_traffic(cluster, sessions=10, seed=21)
    async with (
        SqliteStore(tmp_path / "metrics.db") as store,
        SqliteStore(tmp_path / "ref.db") as reference,
    ):
        runner = shipped_runner("metrics", store, settings, group_id=f"m-{uuid.uuid4().hex[:6]}")
        port = free_ports(1)[0]
        server = await serve_http(port, health_routes(SHIPPED_GROUPS["metrics"], runner, store))
        try:
            async with runner:
                async with asyncio.timeout(60):
                    await runner.wait_handled(len(events_of("metrics", events)))
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                    health = (await client.get("/health")).json()
                    text = (await client.get("/metrics")).text
                    missing = await client.get("/nope")
        finally:
            server.close()
            await server.wait_closed()
        assert health["handled"] == len(events_of("metrics", events))
        assert health["assigned"] is True
        assert missing.status_code == 404
        assert "agentflux_records_handled_total" in text
        assert 'agentflux_events_total{event_type="session_created"} 10.0' in text
        await apply_directly("metrics", reference, events)
        assert await snapshot("metrics", store, events) == await snapshot(
            "metrics", reference, events
        )
        assert (await render_prometheus(reference)).decode() in text


@pytest.mark.broker
async def test_members_of_a_group_hold_the_same_partitions_of_every_topic(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Co-partitioned topics, two members: each holds partition N of every topic it holds N of."""
    # Three partitions: round robin would give a member 0 and 2 of one topic but 1 of the next.
    settings = await prefixed_topics(cluster, partitions=3)
    group_id = f"context-{uuid.uuid4().hex[:6]}"
    async with (
        SqliteStore(tmp_path / "one.db") as one_store,
        SqliteStore(tmp_path / "two.db") as two_store,
        shipped_runner("context", one_store, settings, group_id=group_id) as one,
        shipped_runner("context", two_store, settings, group_id=group_id) as two,
    ):
        async with asyncio.timeout(180):  # a join under load can take a few rebalances
            while True:
                held = [sorted({tuple(p) for p in r.assignment.values()}) for r in (one, two)]
                if all(len(h) == 1 for h in held) and sum(len(h[0]) for h in held) == 3:
                    break
                await asyncio.sleep(0.1)  # the second member's join moves partitions
    (first,), (second,) = held
    assert sorted(first + second) == [0, 1, 2]  # split, each number with one member
    assert one.assignment.keys() == two.assignment.keys()  # both read all four topics
