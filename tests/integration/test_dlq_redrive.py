"""Dead letters of a shipped group: listed, shown, and re-driven once the cause is fixed."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING

import pytest
from _cli import run_cli
from _traffic import apply_directly, events_of, publish_traffic, snapshot
from aiokafka import AIOKafkaProducer

from agentflux.consumers import AuditView, GroupRunner, SqliteStore, verify_audit
from agentflux.consumers._groups import SHIPPED_GROUPS
from agentflux.consumers._redrive import read_dead_letters
from agentflux.kafka import connection_kwargs
from agentflux.schemas import dead_letter_topic

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Cluster

    from agentflux.kafka import AgentfluxSettings
    from agentflux.schemas import BaseEvent

_BREAK = (
    "CREATE TRIGGER refuse_session BEFORE INSERT ON audit_chain WHEN NEW.session_id = '{sid}' "
    "BEGIN SELECT RAISE(ABORT, 'audit store refuses session {sid}'); END"
)


async def _pending(settings: AgentfluxSettings, group_id: str, expected: int) -> int:
    async with asyncio.timeout(60):
        while True:
            letters = await read_dead_letters(settings, dead_letter_topic(group_id), group_id)
            if len(letters) >= expected:
                return len(letters)
            await asyncio.sleep(0.2)  # the runner is still retrying the last failures


def _audit_runner(settings: AgentfluxSettings, store: SqliteStore, group_id: str) -> GroupRunner:
    return GroupRunner(
        group_id,
        SHIPPED_GROUPS["audit"].topics(settings),
        settings=settings,
        views=[AuditView()],
        store=store,
        max_attempts=2,
        backoff_s=0.001,
    )


async def _dead_letter_one_session(
    cluster: Cluster, store: SqliteStore, group_id: str, *, sessions: int, seed: int
) -> tuple[AgentfluxSettings, list[BaseEvent], str, int]:
    """Publish traffic; the audit store refuses one session, whose events are dead-lettered."""
    settings, events = await publish_traffic(cluster, sessions=sessions, seed=seed)
    audited = events_of("audit", events)
    victim = audited[0].session_id
    broken = sum(1 for e in audited if e.session_id == victim)
    await store.migrate(AuditView.ddl)
    async with store.transaction() as tx:
        await tx.execute(_BREAK.format(sid=victim))
    async with _audit_runner(settings, store, group_id) as runner:
        async with asyncio.timeout(60):
            await runner.wait_handled(len(audited) - broken)
        assert await _pending(settings, group_id, broken) == broken
    return settings, events, victim, broken


@pytest.mark.broker
async def test_redrive_after_fix_clears_the_dlq_without_duplicates(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A store failure dead-letters one session; after the fix, redrive completes the view once."""
    store_path = tmp_path / "audit.db"
    store_url = f"sqlite:///{store_path}"
    group_id = f"audit-{uuid.uuid4().hex[:6]}"
    async with SqliteStore(store_path) as store:
        settings, events, victim, broken = await _dead_letter_one_session(
            cluster, store, group_id, sessions=12, seed=31
        )
    cli = ("--group", "audit", "--group-id", group_id)

    listed = await run_cli(settings, "dlq", "list", *cli, "--json")
    assert listed.code == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == broken
    assert {r["session_id"] for r in rows} == {victim}
    assert all("refuses session" in r["error"] and r["status"] == "pending" for r in rows)
    first = rows[0]
    shown = await run_cli(
        settings,
        "dlq",
        "show",
        *cli,
        "--partition",
        str(first["partition"]),
        "--offset",
        str(first["offset"]),
    )
    assert shown.code == 0, shown.stderr
    assert json.loads(shown.stdout)["event"]["event_id"] == first["event_id"]

    not_fixed = await run_cli(settings, "dlq", "redrive", *cli, "--store", store_url)
    assert not_fixed.code == 1  # the cause is still there: reported, nothing cleared
    assert "still failing" in not_fixed.stderr
    assert len(await read_dead_letters(settings, dead_letter_topic(group_id), group_id)) == broken

    async with SqliteStore(store_path) as store, store.transaction() as tx:
        await tx.execute("DROP TRIGGER refuse_session")  # the fix
    fixed = await run_cli(settings, "dlq", "redrive", *cli, "--store", store_url)
    assert fixed.code == 0, fixed.stderr
    assert f"redriven: {broken}" in fixed.stdout
    assert await read_dead_letters(settings, dead_letter_topic(group_id), group_id) == []
    again = await run_cli(settings, "dlq", "redrive", *cli, "--store", store_url)
    assert "redriven: 0" in again.stdout  # nothing pending: a second run changes nothing
    everything = await run_cli(settings, "dlq", "list", *cli, "--all", "--json")
    assert {json.loads(line)["status"] for line in everything.stdout.splitlines()} == {"redriven"}

    async with SqliteStore(store_path) as live, SqliteStore(tmp_path / "ref.db") as reference:
        await apply_directly("audit", reference, events)
        assert await snapshot("audit", live, events) == await snapshot("audit", reference, events)
        assert await verify_audit(live) == []


@pytest.mark.broker
async def test_redrive_is_once_per_event_even_if_offsets_are_lost(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Re-driving records whose redrive offsets were never committed applies nothing twice."""
    group_id = f"audit-{uuid.uuid4().hex[:6]}"
    async with SqliteStore(tmp_path / "audit.db") as store:
        settings, _events, victim, broken = await _dead_letter_one_session(
            cluster, store, group_id, sessions=4, seed=32
        )
        async with store.transaction() as tx:
            await tx.execute("DROP TRIGGER refuse_session")
        letters = await read_dead_letters(settings, dead_letter_topic(group_id), group_id)
        redriver = _audit_runner(settings, store, group_id)  # as `agentflux dlq redrive` makes
        outcomes = [
            await redriver.redrive(letter.value or b"", letter.origin, letter.timestamp)
            for letter in letters + letters  # as if a crash lost the redrive group's commit
        ]
        await redriver.close_codec()
        assert outcomes == ["redriven"] * broken + ["already redriven"] * broken
        rows = await store.rows(
            "SELECT count(*) AS n FROM audit_chain WHERE session_id = $1", victim
        )
        assert rows == [{"n": broken}]


@pytest.mark.broker
async def test_undecodable_dead_letter_is_discarded_on_request(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Bytes no schema decodes fail every re-drive until discarded; then nothing is pending."""
    store_path = tmp_path / "audit.db"
    group_id = f"audit-{uuid.uuid4().hex[:6]}"
    settings, events = await publish_traffic(cluster, sessions=3, seed=33)
    audit_topic = SHIPPED_GROUPS["audit"].topics(settings)[0]
    async with AIOKafkaProducer(**connection_kwargs(settings), acks="all") as producer:
        await producer.send_and_wait(audit_topic, b"\x00\x00\x00\x00\x01not avro", key=b"s")
    async with SqliteStore(store_path) as store:
        await store.migrate(AuditView.ddl)
        async with _audit_runner(settings, store, group_id) as runner:
            async with asyncio.timeout(60):
                await runner.wait_handled(len(events_of("audit", events)))
            assert await _pending(settings, group_id, 1) == 1
    cli = ("--group", "audit", "--group-id", group_id, "--store", f"sqlite:///{store_path}")
    (letter,) = await read_dead_letters(settings, dead_letter_topic(group_id), group_id)

    refused = await run_cli(settings, "dlq", "redrive", *cli)
    assert refused.code == 1
    assert "still failing" in refused.stderr
    assert len(await read_dead_letters(settings, dead_letter_topic(group_id), group_id)) == 1

    discarded = await run_cli(
        settings, "dlq", "redrive", *cli, "--discard", f"{letter.partition}:{letter.offset}"
    )
    assert discarded.code == 0, discarded.stderr
    assert "discarded: 1" in discarded.stdout
    assert await read_dead_letters(settings, dead_letter_topic(group_id), group_id) == []
    async with SqliteStore(store_path) as live, SqliteStore(tmp_path / "ref.db") as reference:
        await apply_directly("audit", reference, events)
        assert await snapshot("audit", live, events) == await snapshot("audit", reference, events)
