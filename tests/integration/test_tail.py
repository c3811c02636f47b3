"""`agentflux tail` on the real cluster: filters, a start time, JSON lines, poison records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from _cli import run_cli
from _traffic import publish_before_and_after, publish_traffic
from aiokafka import AIOKafkaProducer

from agentflux.kafka import connection_kwargs
from agentflux.producers import EventPublisher, Simulator

if TYPE_CHECKING:
    from conftest import Cluster

    from agentflux.kafka import AgentfluxSettings
    from agentflux.schemas import BaseEvent

pytestmark = pytest.mark.broker


async def test_tail_from_a_time_filters_session_and_type_as_json(cluster: Cluster) -> None:
    """--from T --session S --type X --json prints exactly S's X events published after T, in order."""
    settings, _early, since, late = await publish_before_and_after(cluster, sessions=6, seed=61)
    session = next(e.session_id for e in late if e.EVENT_TYPE.value == "session_created")
    wanted = [
        e
        for e in late
        if e.session_id == session
        and e.EVENT_TYPE.value in {"tool_execution_requested", "session_created"}
    ]
    assert wanted
    tailed = await run_cli(
        settings,
        "tail",
        "--from",
        since.isoformat(),
        "--session",
        session,
        "--type",
        "tool_execution_requested",
        "--type",
        "session_created",
        "--json",
        "--idle-timeout",
        "3",
    )
    assert tailed.code == 0, tailed.stderr
    lines = [json.loads(line) for line in tailed.stdout.splitlines()]
    assert [line["event_id"] for line in lines] == [str(e.event_id) for e in wanted]
    assert all(line["session_id"] == session for line in lines)

    readable = await run_cli(
        settings, "tail", "--topic", "session", "--from", since.isoformat(), "--limit", "2"
    )
    assert readable.code == 0, readable.stderr
    assert len(readable.stdout.splitlines()) == 2
    assert "session.events[" in readable.stdout


async def test_tail_warns_about_undecodable_records_and_goes_on(cluster: Cluster) -> None:
    """Random bytes on a topic give a warning on stderr; the events after them still print."""
    settings, _events = await publish_traffic(cluster, sessions=1, seed=63)
    since = datetime.now(UTC)
    producer = AIOKafkaProducer(**connection_kwargs(settings))
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic_prefix + "agent.events", b"\xde\xad not avro", key=b"poison"
        )
    finally:
        await producer.stop()
    stderr, printed, later = await _publish_then_tail(settings, since, seed=64)
    assert "skipped undecodable record" in stderr
    assert printed == {str(e.event_id) for e in later}


async def test_tail_does_not_show_an_aborted_transaction(cluster: Cluster) -> None:
    """Records of an aborted transaction never print (tail reads committed, as the groups do)."""
    settings, _events = await publish_traffic(cluster, sessions=1, seed=65)
    since = datetime.now(UTC)
    producer = AIOKafkaProducer(
        **connection_kwargs(settings), transactional_id=f"tail-test-{since.timestamp()}"
    )
    await producer.start()
    try:
        await producer.begin_transaction()
        await producer.send_and_wait(
            settings.topic_prefix + "agent.events", b"\xde\xad aborted", key=b"aborted"
        )
        await producer.abort_transaction()
    finally:
        await producer.stop()
    stderr, printed, later = await _publish_then_tail(settings, since, seed=66)
    assert "undecodable" not in stderr
    assert printed == {str(e.event_id) for e in later}


async def _publish_then_tail(
    settings: AgentfluxSettings, since: datetime, *, seed: int
) -> tuple[str, set[str], list[BaseEvent]]:
    """Publish one simulated session, then tail from ``since``: stderr, ids printed, events sent."""
    later = list(Simulator(sessions=1, seed=seed, session_prefix=f"after{seed}").events())
    async with EventPublisher(settings) as publisher:
        for event in later:
            await publisher.send(event)
    tailed = await run_cli(
        settings, "tail", "--from", since.isoformat(), "--json", "--idle-timeout", "3"
    )
    assert tailed.code == 0, tailed.stderr
    printed = {json.loads(line)["event_id"] for line in tailed.stdout.splitlines()}
    return tailed.stderr, printed, later
