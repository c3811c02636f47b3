"""The HITL timeout job on a real broker: transactional timeouts, seen once, even across a SIGKILL."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from _cli import cli_env
from _traffic import prefixed_topics
from conftest import read_to_end

from agentflux._health_http import health_routes, serve_http
from agentflux._local._ports import free_ports
from agentflux._offsets import group_lag
from agentflux.consumers import SqliteStore, get_metrics
from agentflux.consumers._groups import shipped_runner
from agentflux.consumers._pending import timeout_event_id
from agentflux.consumers._timeouts import HitlTimeoutJob
from agentflux.producers import EventPublisher
from agentflux.schemas import (
    AvroCodec,
    BaseEvent,
    EventCategory,
    HitlApprovalRequestedEvent,
    HitlDecision,
    HitlDecisionMadeEvent,
    HitlTimeoutOccurredEvent,
    RegistryClient,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from conftest import Cluster

    from agentflux.kafka import AgentfluxSettings


def _requests(count: int, timeouts: list[int], prefix: str) -> list[HitlApprovalRequestedEvent]:
    return [
        HitlApprovalRequestedEvent(
            session_id=f"{prefix}-s{i % 97}",
            approval_id=f"{prefix}-a{i}",
            subject="run shell?",
            timeout_s=timeouts[i % len(timeouts)],
        )
        for i in range(count)
    ]


def _decision(request: HitlApprovalRequestedEvent) -> HitlDecisionMadeEvent:
    return HitlDecisionMadeEvent(
        session_id=request.session_id,
        approval_id=request.approval_id,
        approver="alice",
        decision=HitlDecision.APPROVED,
    )


async def _publish(settings: AgentfluxSettings, events: Sequence[BaseEvent]) -> None:
    async with EventPublisher(settings) as publisher:
        for event in events:
            await publisher.send(event)
        await publisher.flush()


async def _timeouts(
    settings: AgentfluxSettings, *, isolation_level: str = "read_committed"
) -> list[HitlTimeoutOccurredEvent]:
    """Every timeout on the hitl topic now, as a consumer with ``isolation_level`` reads it."""
    topic = settings.topic_prefix + EventCategory.HITL.topic
    records = await read_to_end(settings, [topic], isolation_level=isolation_level)
    async with RegistryClient.from_settings(settings) as registry:
        codec = AvroCodec(registry)
        events = [await codec.decode(record.value or b"") for record in records]
    return [event for event in events if isinstance(event, HitlTimeoutOccurredEvent)]


async def _wait_for_timeouts(settings: AgentfluxSettings, count: int, seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while len(await _timeouts(settings)) < count:
            await asyncio.sleep(0.2)  # poll the topic: the job's commits are not announced


async def _caught_up(settings: AgentfluxSettings, groups: list[str]) -> bool:
    """Each group committed every hitl partition to its end, transaction markers included."""
    topic = settings.topic_prefix + EventCategory.HITL.topic
    rows = [row for row in await group_lag(settings, groups) if row.topic == topic]
    return len(rows) == 3 * len(groups) and all(row.lag == 0 for row in rows)


def _one_each(
    timeouts: list[HitlTimeoutOccurredEvent], requests: list[HitlApprovalRequestedEvent]
) -> None:
    """Exactly the ``requests`` timed out, each once, with the id derived from the request."""
    assert Counter(t.approval_id for t in timeouts) == Counter(r.approval_id for r in requests)
    ids = {r.approval_id: timeout_event_id(r.event_id) for r in requests}
    assert all(t.event_id == ids[t.approval_id] for t in timeouts)


@pytest.mark.broker
async def test_the_job_publishes_each_timeout_once_in_transactions(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Undecided approvals time out once each (read_committed), across a restart; the views agree."""
    settings = await prefixed_topics(cluster)
    group_id = f"timeouts-{uuid.uuid4().hex[:6]}"
    first = _requests(60, [300], "first")
    await _publish(settings, first)
    await _publish(settings, [_decision(r) for r in first[::3]])  # decided in time
    # The job's clock runs 10 minutes ahead: every 300 s timeout is due at once, no waiting.
    ahead = lambda: time.time() + 600  # noqa: E731  # the injected clock
    topic = settings.topic_prefix + EventCategory.HITL.topic
    undecided = [r for i, r in enumerate(first) if i % 3]
    async with HitlTimeoutJob(group_id, topic, settings=settings, clock=ahead) as job:
        await _wait_for_timeouts(settings, len(undecided), 60)
        read_back = len(first) + len(first[::3]) + len(undecided)  # its own timeouts too
        async with asyncio.timeout(60):
            while job.handled < read_back:
                assert not job.finished
                await asyncio.sleep(0.05)  # poll the job's count of records read
        late = _decision(undecided[0])  # after its timeout: late, the approval stays timed out
        await _publish(settings, [late])
        late_decisions = ("agentflux_hitl_late_decisions_total", {"group": group_id})
        async with asyncio.timeout(60):
            while job.metrics.registry.get_sample_value(*late_decisions) != 1:
                await asyncio.sleep(0.05)  # poll the job's metric until the late decision is read
    _one_each(await _timeouts(settings), undecided)

    # Restarted, on more approvals: the earlier ones are not timed out again.
    second = _requests(30, [300], "second")
    await _publish(settings, second)
    port = free_ports(1)[0]
    restarted = HitlTimeoutJob(group_id, topic, settings=settings, clock=ahead)
    server = await serve_http(port, health_routes("hitl-timeouts", restarted, None))
    try:
        async with restarted:
            await _wait_for_timeouts(settings, len(undecided) + len(second), 60)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                health = (await client.get("/health")).json()
                text = (await client.get("/metrics")).text
    finally:
        server.close()
        await server.wait_closed()
    assert health["group"] == group_id
    assert health["assigned"] is True
    assert f'agentflux_hitl_timeouts_emitted_total{{group="{group_id}"}} 30.0' in text
    committed = await _timeouts(settings)
    _one_each(committed, undecided + second)
    assert len(await _timeouts(settings, isolation_level="read_uncommitted")) == len(committed)

    # The context and metrics groups read the transactional topic, and their lag reaches 0.
    approvals, statuses = await _views(settings, tmp_path, group_id)
    assert approvals["timed_out"] == len(undecided) + len(second)
    assert approvals["approved"] == len(first[::3])
    assert approvals["late"] == 1
    assert statuses[late.approval_id] == "timed_out"  # not reopened by the late decision
    assert set(statuses.values()) == {"approved", "timed_out"}  # none pending


async def _views(
    settings: AgentfluxSettings, tmp_path: Path, group_id: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The metrics view's approvals and the context view's status of each approval, caught up."""
    async with SqliteStore(tmp_path / "views.db") as store:
        context_group, metrics_group = (f"{name}-{group_id}" for name in ("context", "metrics"))
        async with (
            shipped_runner("context", store, settings, group_id=context_group),
            shipped_runner("metrics", store, settings, group_id=metrics_group),
        ):
            async with asyncio.timeout(60):
                while not await _caught_up(settings, [context_group, metrics_group]):
                    await asyncio.sleep(0.2)  # poll the committed lag
        approvals = (await get_metrics(store))["approvals"]
        rows = await store.rows("SELECT approval_id, status FROM ctx_approvals")
    return approvals, {row["approval_id"]: row["status"] for row in rows}


@pytest.mark.broker
@pytest.mark.slow
async def test_members_joining_and_leaving_publish_each_timeout_once(cluster: Cluster) -> None:
    """Partitions move between two members while timeouts fall due: still one per approval."""
    settings = await prefixed_topics(cluster)
    group_id = f"timeouts-{uuid.uuid4().hex[:6]}"
    topic = settings.topic_prefix + EventCategory.HITL.topic
    requests = _requests(300, list(range(2, 21)), "moved")  # due over 2 to 20 s
    await _publish(settings, requests)
    first = HitlTimeoutJob(group_id, topic, settings=settings)
    second = HitlTimeoutJob(group_id, topic, settings=settings)
    async with first:
        await _wait_for_timeouts(settings, 1, 60)
        async with second:  # joins: every partition is revoked, then shared out
            async with asyncio.timeout(60):
                while second.emitted == 0:
                    assert not second.finished
                    await asyncio.sleep(0.1)  # poll until the second member published some
        # The second leaves: its partitions go back to the first.
        await _wait_for_timeouts(settings, len(requests), 60)
    _one_each(await _timeouts(settings), requests)
    assert first.emitted + second.emitted == len(requests)
    assert first.emitted > 0
    assert second.emitted > 0


@pytest.mark.cluster3
@pytest.mark.slow
async def test_a_killed_job_restarts_with_one_timeout_per_expired_approval(
    cluster3: Cluster, tmp_path: Path
) -> None:
    """SIGKILL the job with 1,000 approvals pending; restarted, each expired one times out once."""
    settings = await prefixed_topics(cluster3, replication=3, min_isr=2)
    group_id = f"timeouts-{uuid.uuid4().hex[:6]}"
    # Deadlines spread over 4 to 20 s: some pass before the job is up, most while it runs.
    requests = _requests(1000, list(range(4, 21, 2)), "kill")
    decided = requests[::4]
    undecided = [r for i, r in enumerate(requests) if i % 4]
    env = cli_env(settings)
    command = [
        sys.executable,
        "-c",
        "from agentflux.cli import main; main()",
        "consume",
        "hitl-timeouts",
        "--group-id",
        group_id,
    ]
    await _publish(settings, requests)
    await _publish(settings, [_decision(r) for r in decided])  # before the job starts: in time

    log = tmp_path / "job.log"
    with log.open("wb") as sink:
        first = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        await _wait_for_timeouts(settings, 1, 120)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        first.kill()
    killed_with = len(await _timeouts(settings))
    assert killed_with < len(undecided), "every timeout was out before the kill: nothing tested"

    with log.open("ab") as sink:
        second = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        await _wait_for_timeouts(settings, len(undecided), 120)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0  # a clean stop on SIGTERM
    finally:
        second.kill()
    _one_each(await _timeouts(settings), undecided)
    assert b"rebuilding pending approvals" in log.read_bytes()
