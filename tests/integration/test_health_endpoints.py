"""The service's /livez, /readyz, /health and /metrics on a real broker, bound beyond loopback."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import uuid
from typing import TYPE_CHECKING, TypeAlias

import httpx
import pytest
from _cli import cli_env
from _postgres_server import postgres_server
from _traffic import events_of, prefixed_topics, publish_traffic
from prometheus_client.parser import text_string_to_metric_families

from agentflux._health_http import health_routes, serve_http
from agentflux._local._ports import free_ports
from agentflux.consumers import GroupRunner, PostgresStore, SqliteStore
from agentflux.consumers._groups import SHIPPED_GROUPS, shipped_runner
from agentflux.consumers._timeouts import HitlTimeoutJob
from agentflux.schemas import EventCategory

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conftest import Cluster

pytestmark = pytest.mark.broker

EVERY_INTERFACE = "0.0.0.0"  # noqa: S104  # the services image's setting, under test here


async def test_readiness_follows_the_assignment_and_the_store(
    cluster: Cluster, tmp_path: Path
) -> None:
    """/readyz: 503 before partitions, 200 once assigned, 503 when the store stops answering."""
    settings, events = await publish_traffic(cluster, sessions=3, seed=34)
    async with (
        SqliteStore(tmp_path / "context.db") as store,
        SqliteStore(tmp_path / "context.db") as probed,  # the routes' own handle, closed below
    ):
        runner = shipped_runner("context", store, settings, group_id=f"h-{uuid.uuid4().hex[:6]}")
        port = free_ports(1)[0]
        # Every interface, as in the services image; a client on loopback reaches it.
        async with (
            await serve_http(
                port,
                health_routes(SHIPPED_GROUPS["context"], runner, probed),
                EVERY_INTERFACE,
            ),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
        ):
            before = await client.get("/readyz")
            alive_before = await client.get("/livez")
            async with runner:
                async with asyncio.timeout(60):
                    await runner.wait_handled(len(events_of("context", events)))
                ready = await client.get("/readyz")
                health = await client.get("/health")
                await probed.close()
                store_gone = await client.get("/readyz")
                alive = await client.get("/livez")
                head = await client.head("/livez")
                missing = await client.get("/nope")
                posted = await client.post("/readyz")
    assert (before.status_code, before.json()["assigned"]) == (503, False)
    assert alive_before.status_code == 200
    assert ready.status_code == 200
    assert ready.json() | {"handled": 0} == {
        "group": runner.group_id,
        "assigned": True,
        "handled": 0,
        "store": "ok",
    }
    assert health.status_code == 200
    assert health.json()["assigned"] is True
    assert health.json()["handled"] == len(events_of("context", events))
    assert store_gone.status_code == 503
    assert store_gone.json()["assigned"] is True
    assert store_gone.json()["store"].startswith("unreachable")
    assert (alive.status_code, alive.json()) == (200, {"live": True})
    assert (head.status_code, head.content) == (200, b"")
    assert missing.status_code == 404
    assert posted.status_code == 404


async def _readyz(port: int) -> tuple[int, dict[str, object]]:
    """/readyz of the routes on ``port``: status and body."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        answer = await client.get("/readyz")
    body: dict[str, object] = answer.json()
    return answer.status_code, body


async def _until(holds: Callable[[], bool]) -> None:
    """Return once ``holds()`` is true (a rebalance or a reconnection to finish)."""
    while not holds():
        await asyncio.sleep(0.05)  # poll interval over the runners' own state


Member: TypeAlias = GroupRunner | HitlTimeoutJob


def _holds_nothing(member: Member) -> bool:
    """Whether the member's last rebalance left it no partition (as it records it)."""
    if isinstance(member, GroupRunner):
        return not member.assignment
    return not member._parts  # the job keeps its partitions to itself


@pytest.mark.parametrize("kind", ["runner", "timeout job"])
async def test_readiness_is_cleared_when_the_partitions_move_to_another_member(
    cluster: Cluster, kind: str
) -> None:
    """A member whose only partition goes to a second member answers 503, and 200 once back."""
    prefixed = await prefixed_topics(cluster, partitions=1)  # the timeout job's schema too
    topic = prefixed.topic_prefix + EventCategory.HITL.topic
    group = f"h-{uuid.uuid4().hex[:6]}"

    def member(client_id: str) -> Member:
        # The range assignor gives the partition to the lowest member id, which starts with
        # the client id: the second member ("a...") takes it from the first ("z...").
        settings = prefixed.model_copy(update={"client_id": client_id})
        if kind == "runner":
            return GroupRunner(group, [topic], settings=settings, handlers={})
        return HitlTimeoutJob(group, topic, settings=settings)

    first, second = member("z-first"), member("a-second")
    port = free_ports(1)[0]
    routes = health_routes(group, first, None)
    async with await serve_http(port, routes), asyncio.timeout(120), first:
        await first.ready.wait()
        alone = await _readyz(port)
        async with second:
            await second.ready.wait()
            await _until(lambda: _holds_nothing(first))
            moved = await _readyz(port)
            second_holds = not _holds_nothing(second)
        # The second member left: the partition comes back.
        await first.ready.wait()
        back = await _readyz(port)
    assert alone == (200, {"group": group, "assigned": True, "handled": 0, "store": "none"})
    assert second_holds
    assert moved == (503, {"group": group, "assigned": False, "handled": 0, "store": "none"})
    assert back == (200, alone[1])


@pytest.mark.postgres
async def test_readiness_is_cleared_while_postgresql_is_stopped(cluster: Cluster) -> None:
    """/readyz answers 503 while the group's PostgreSQL is down, and 200 once it is back."""
    settings, events = await publish_traffic(cluster, sessions=2, seed=37)
    port = free_ports(1)[0]
    with postgres_server() as server:  # our own: the suite's shared server keeps running
        async with PostgresStore(server.url) as store:
            runner = shipped_runner(
                "context", store, settings, group_id=f"h-{uuid.uuid4().hex[:6]}"
            )
            routes = health_routes(SHIPPED_GROUPS["context"], runner, store)
            async with await serve_http(port, routes), runner, asyncio.timeout(120):
                await runner.wait_handled(len(events_of("context", events)))
                running = await _readyz(port)
                server.stop()
                stopped = await _readyz(port)
                stopped_again = await _readyz(port)  # the pool now fails to reconnect
                server.start()
                while (back := await _readyz(port))[0] != 200:
                    await asyncio.sleep(0.05)  # the pool reconnects on a later ping
    assert (running[0], running[1]["assigned"], running[1]["store"]) == (200, True, "ok")
    for answer in (stopped, stopped_again):
        assert answer[0] == 503
        assert answer[1]["assigned"] is True
        assert str(answer[1]["store"]).startswith("unreachable")
    assert back[1]["store"] == "ok"


async def test_metrics_parse_as_prometheus_text(cluster: Cluster, tmp_path: Path) -> None:
    """/metrics of the metrics service parses with prometheus_client's parser, view included."""
    settings, events = await publish_traffic(cluster, sessions=4, seed=35)
    async with SqliteStore(tmp_path / "metrics.db") as store:
        runner = shipped_runner("metrics", store, settings, group_id=f"h-{uuid.uuid4().hex[:6]}")
        port = free_ports(1)[0]
        async with (
            await serve_http(port, health_routes(SHIPPED_GROUPS["metrics"], runner, store)),
            runner,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
        ):
            async with asyncio.timeout(60):
                await runner.wait_handled(len(events_of("metrics", events)))
            scraped = await client.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
    assert "agentflux_records_handled" in families
    sessions = [
        s.value
        for s in families["agentflux_events"].samples
        if s.labels.get("event_type") == "session_created"
    ]
    assert sessions == [4.0]


async def _ready_json(client: httpx.AsyncClient) -> dict[str, object]:
    """/readyz's body once it answers 200."""
    while True:
        try:
            answer = await client.get("/readyz")
        except httpx.TransportError:
            answer = None  # not listening yet
        if answer is not None and answer.status_code == 200:
            found: dict[str, object] = answer.json()
            return found
        await asyncio.sleep(0.2)  # poll until the service has joined and the store answers


@pytest.mark.slow
async def test_the_service_listens_on_the_host_setting_and_stops_on_sigterm(
    cluster: Cluster, tmp_path: Path
) -> None:
    """`consume` with AGENTFLUX_HEALTH_HOST=0.0.0.0 becomes ready, then exits 0 on SIGTERM."""
    settings, _ = await publish_traffic(cluster, sessions=2, seed=36)
    group_id = f"h-{uuid.uuid4().hex[:6]}"
    port = free_ports(1)[0]
    env = cli_env(settings) | {"AGENTFLUX_HEALTH_HOST": EVERY_INTERFACE}
    command = [
        *(sys.executable, "-c", "from agentflux.cli import main; main()"),
        *("consume", "context", "--store", f"sqlite:///{tmp_path / 'context.db'}"),
        *("--port", str(port), "--group-id", group_id),
    ]
    log = tmp_path / "service.log"
    with log.open("wb") as sink:
        service = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            async with asyncio.timeout(120):
                ready = await _ready_json(client)
        service.send_signal(signal.SIGTERM)
        # Within the 30 s grace period compose and Kubernetes give a container by default.
        exit_code = service.wait(timeout=30)
    finally:
        service.kill()
    assert ready["group"] == group_id
    assert ready["store"] == "ok"
    assert exit_code == 0, log.read_text()
    # It listened on every interface, not on loopback alone.
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    listening = [line for line in lines if line["event"].startswith("health and metrics")]
    assert [line["host"] for line in listening] == [EVERY_INTERFACE]
