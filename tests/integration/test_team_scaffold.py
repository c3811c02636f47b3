"""A team's group from a package outside the repository, made by the scaffold, on the real cluster.

The issue's Done-when: ``agentflux new group`` in a temporary folder, its own tests pass (the
in-memory one and the real-broker one), ``agentflux consume --app`` runs it as a service, and
``agentflux lag``, ``dlq list`` and ``replay`` work on it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from typing import TYPE_CHECKING

import httpx
import pytest
from _cli import cli_env, run_agentflux
from _traffic import prefixed_topics
from aiokafka import AIOKafkaProducer

from agentflux._local._ports import free_ports
from agentflux._offsets import group_lag
from agentflux.consumers import SqliteStore
from agentflux.kafka import connection_kwargs
from agentflux.producers import EventPublisher, ToolExecutionCompletedEvent

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Cluster

    from agentflux.kafka import AgentfluxSettings

pytestmark = [pytest.mark.broker, pytest.mark.slow]

APP = "billing.group:group"


async def _lag_on_these_topics(settings: AgentfluxSettings) -> int:
    """The billing group's lag on this test's topics (other tests' billing groups left out)."""
    rows = await group_lag(settings, ["billing"])
    return sum(row.lag for row in rows if row.topic.startswith(settings.topic_prefix))


async def _health(port: int) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        try:
            found: dict[str, object] = (await client.get("/health")).json()
        except httpx.TransportError:
            return {}  # not listening yet
    return found


async def _generated_tests_pass(root: Path, env: dict[str, str]) -> None:
    tests = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        cwd=root, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    async with asyncio.timeout(300):
        output = (await tests.communicate())[0].decode()
    assert tests.returncode == 0, output
    assert "3 passed" in output  # the in-memory tests and the real-broker one


async def _publish_one_and_a_poison(settings: AgentfluxSettings, session: str) -> None:
    async with EventPublisher(settings) as publisher:
        await publisher.publish(
            ToolExecutionCompletedEvent(
                session_id=session, call_id="c-1", tool_name="search", duration_ms=5
            )
        )
    poison = AIOKafkaProducer(**connection_kwargs(settings))
    await poison.start()
    try:
        await poison.send_and_wait(
            settings.topic_prefix + "tool.events", b"not avro", key=session.encode()
        )
    finally:
        await poison.stop()


async def _pending_dead_letters(env: dict[str, str]) -> list[dict[str, object]]:
    async with asyncio.timeout(120):
        while True:
            letters = await run_agentflux("dlq", "list", "--app", APP, "--json", env=env)
            assert letters.code == 0, letters.stderr
            if letters.stdout.strip():
                return [json.loads(line) for line in letters.stdout.splitlines()]
            await asyncio.sleep(0.5)  # the runner dead-letters it in its own time


async def _redrive_and_rebuild(
    env: dict[str, str], tmp_path: Path, letter: dict[str, object]
) -> None:
    """The poison record discarded from the DLQ; the view rebuilt from every retained event."""
    store = f"sqlite:///{tmp_path / 'live.db'}"
    where = f"{letter['partition']}:{letter['offset']}"
    discarded = await run_agentflux(
        "dlq", "redrive", "--app", APP, "--store", store, "--discard", where, env=env
    )
    assert discarded.code == 0, discarded.stderr
    assert "discarded: 1" in discarded.stdout
    assert (await run_agentflux("dlq", "list", "--app", APP, "--json", env=env)).stdout == ""
    rebuilt = await run_agentflux(
        "rebuild", "--app", APP, "--into", f"sqlite:///{tmp_path / 'fresh.db'}", "--no-compare",
        env=env,
    )  # fmt: skip
    assert rebuilt.code == 0, rebuilt.stderr
    # From the earliest offsets: the generated test's event, this test's, and the poison record.
    assert "rebuilt billing from 3 events" in rebuilt.stdout


async def test_a_scaffolded_group_runs_as_a_service_with_the_platforms_tools(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Scaffold, its tests pass, consume --app applies and dead-letters; lag, dlq list, replay work."""
    settings = await prefixed_topics(cluster)
    env = cli_env(settings) | {"PYTHONPATH": str(tmp_path / "billing")}
    made = await run_agentflux("new", "group", "billing", "--dir", str(tmp_path), env=env)
    assert made.code == 0, made.stderr
    await _generated_tests_pass(tmp_path / "billing", env)

    port = free_ports(1)[0]
    service = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from agentflux.cli import main; main()",
        "consume", "--app", APP, "--store", f"sqlite:///{tmp_path / 'live.db'}",
        "--port", str(port),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    session = f"s-{uuid.uuid4().hex[:6]}"
    try:
        async with asyncio.timeout(120):
            while (await _health(port)).get("assigned") is not True:
                assert service.returncode is None, "the service stopped"
                await asyncio.sleep(0.2)  # polls the service's own health endpoint
        await _publish_one_and_a_poison(settings, session)
        (letter,) = await _pending_dead_letters(env)
        assert letter["status"] == "pending"
        assert str(letter["original"]).startswith(settings.topic_prefix + "tool.events")
    finally:
        service.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            _, errors = await service.communicate()
    assert service.returncode == 0, errors.decode()
    async with SqliteStore(tmp_path / "live.db") as live:
        rows = await live.rows(
            "SELECT tool_name, runs FROM billing_tool_runs WHERE session_id = $1", session
        )
    assert rows == [{"tool_name": "search", "runs": 1}]

    lag = await run_agentflux("lag", "--app", APP, env=env)
    assert lag.code == 0, lag.stderr
    assert "billing" in lag.stdout
    assert await _lag_on_these_topics(settings) == 0
    await _redrive_and_rebuild(env, tmp_path, letter)
    replay = await run_agentflux("replay", "--app", APP, "--to", "earliest", "--execute", env=env)
    assert replay.code == 0, replay.stderr
    assert "moved" in replay.stdout
    # Back at the beginning: the generated broker test's event, this one and the poison record.
    lag = await run_agentflux("lag", "--group", "billing", env=env)  # by its group id
    assert lag.code == 0, lag.stderr
    assert await _lag_on_these_topics(settings) == 3
