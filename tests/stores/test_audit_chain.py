"""The audit chain: publish order whatever the arrival order, gaps and late events as evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from conftest import fresh_postgres_database
from hypothesis import given, settings
from hypothesis import strategies as st

from agentflux.consumers import (
    AuditView,
    Position,
    PostgresStore,
    SqliteStore,
    audit_report,
    get_audit_log,
    verify_audit,
)
from agentflux.schemas import (
    AgentSwitchedEvent,
    BaseEvent,
    HitlApprovalRequestedEvent,
    SessionCreatedEvent,
    SessionMessageAddedEvent,
    ToolExecutionStartedEvent,
)

if TYPE_CHECKING:
    import random
    from pathlib import Path

    from agentflux.consumers import Store


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _session(session: str = "s-1", producer: str = "host:1:ab", count: int = 8) -> list[BaseEvent]:
    """One session's events over four topics, numbered as a publisher numbers them."""
    makers = [
        lambda: SessionCreatedEvent(session_id=session, initial_agent="orchestrator"),
        lambda: AgentSwitchedEvent(session_id=session, from_agent="orchestrator", to_agent="coder"),
        lambda: ToolExecutionStartedEvent(session_id=session, call_id="c-1", tool_name="grep"),
        lambda: HitlApprovalRequestedEvent(session_id=session, approval_id="a-1", subject="ok?"),
        lambda: SessionMessageAddedEvent(
            session_id=session, message_id="m-1", role="USER", content="hi"
        ),
    ]
    return [
        makers[i % len(makers)]().model_copy(update={"producer_id": producer, "sequence": i})
        for i in range(count)
    ]


def _position(event: BaseEvent, offset: int) -> Position:
    return Position(event.topic, 0, offset)


async def _apply(store: Store, view: AuditView, arrivals: list[BaseEvent]) -> None:
    await store.migrate(view.ddl)
    for offset, event in enumerate(arrivals):
        async with store.transaction() as tx:
            await view.apply(tx, event, _position(event, offset))


async def _chains(store: Store) -> list[tuple[Any, ...]]:
    rows = await get_audit_log(store, limit=1_000_000)
    return [
        (r["session_id"], r["chain"], r["seq"], r["kind"], r["event_id"], r["hash"]) for r in rows
    ]


@settings(max_examples=25, deadline=None)
@given(order=st.randoms(use_true_random=False), redeliveries=st.integers(0, 4))
async def test_any_arrival_order_gives_the_same_chain_and_hashes(
    tmp_path_factory: pytest.TempPathFactory, order: random.Random, redeliveries: int
) -> None:
    """Two sessions, two producers, shuffled across topics and redelivered: identical chains."""
    events = _session("s-1", "p-1") + _session("s-2", "p-2", 5) + _session("s-1", "p-3", 3)
    arrivals = events + [order.choice(events) for _ in range(redeliveries)]
    order.shuffle(arrivals)
    folder = tmp_path_factory.mktemp("audit")
    async with (
        SqliteStore(folder / "ordered.db") as ordered,
        SqliteStore(folder / "shuffled.db") as shuffled,
    ):
        await _apply(ordered, AuditView(clock=_Clock()), events)
        await _apply(shuffled, AuditView(clock=_Clock()), arrivals)
        assert await _chains(shuffled) == await _chains(ordered)
        assert await verify_audit(shuffled) == []
        chain = await get_audit_log(shuffled, session_id="s-2")
        assert [r["payload"]["sequence"] for r in chain] == [0, 1, 2, 3, 4]
        assert [r["seq"] for r in chain] == [1, 2, 3, 4, 5]


async def _gap_then_late(store: Store) -> None:
    """Held past the grace period, a hole is recorded as a gap; the event later comes as late."""
    clock = _Clock()
    view = AuditView(grace_s=30, clock=clock)
    events = _session(count=5)
    await _apply(store, view, [events[0], events[1], events[3], events[4]])
    assert (await audit_report(store))["s-1"].pending == 2
    clock.now += 31
    async with store.transaction() as tx:
        assert await view.sweep(tx) == 1
    await _apply(store, view, [events[2], events[3]])  # the late one, and a redelivery
    rows = await get_audit_log(store, session_id="s-1")
    assert [(r["kind"], r["sequence"]) for r in rows] == [
        ("event", 0),
        ("event", 1),
        ("gap", 2),
        ("event", 3),
        ("event", 4),
        ("late", 2),
    ]
    report = (await audit_report(store))["s-1"]
    assert (report.gaps, report.late, report.pending, report.status) == (1, 1, 0, "gaps")
    assert await verify_audit(store) == [
        "session s-1: 1 event(s) never arrived (gaps)",
        "session s-1: 1 event(s) arrived late",
    ]


async def test_a_missing_event_becomes_a_gap_and_its_late_arrival_is_recorded(
    tmp_path: Path,
) -> None:
    """On SQLite: a gap after the grace period, the late event appended, a duplicate ignored."""
    async with SqliteStore(tmp_path / "audit.db") as store:
        await _gap_then_late(store)


@pytest.mark.postgres
async def test_gaps_and_late_events_on_postgresql(postgres_url: str) -> None:
    """On PostgreSQL: the same gap, late event and duplicate, the same chain."""
    async with PostgresStore(await fresh_postgres_database(postgres_url)) as store:
        await _gap_then_late(store)


async def test_an_event_within_the_grace_period_is_spliced_in_order(tmp_path: Path) -> None:
    """A predecessor that arrives before the grace period ends leaves no trace of the wait."""
    clock = _Clock()
    view = AuditView(grace_s=30, clock=clock)
    events = _session(count=3)
    async with SqliteStore(tmp_path / "audit.db") as store:
        await _apply(store, view, [events[0], events[2]])
        clock.now += 29
        await _apply(store, view, [events[1]])
        rows = await get_audit_log(store, session_id="s-1")
        assert [(r["kind"], r["sequence"]) for r in rows] == [
            ("event", 0),
            ("event", 1),
            ("event", 2),
        ]
        assert (await audit_report(store))["s-1"].status == "intact"


async def test_an_edited_record_is_reported_as_tampered(tmp_path: Path) -> None:
    """A payload changed in the store after it was recorded breaks its hash."""
    async with SqliteStore(tmp_path / "audit.db") as store:
        await _apply(store, AuditView(clock=_Clock()), _session(count=4))
        async with store.transaction() as tx:
            await tx.execute(
                "UPDATE audit_chain SET payload = replace(payload, 'coder', 'mallory') WHERE seq = 2"
            )
        report = (await audit_report(store))["s-1"]
        assert report.status == "tampered"
        assert report.tampered == [
            "chain host:1:ab record 2: content changed after it was recorded"
        ]


async def test_version_1_events_are_chained_per_topic_in_arrival_order(tmp_path: Path) -> None:
    """Without a sequence, a session's events of one topic chain in that topic's order."""
    events = [
        e.model_copy(update={"producer_id": None, "sequence": None}) for e in _session(count=6)
    ]
    async with SqliteStore(tmp_path / "audit.db") as store:
        await _apply(store, AuditView(clock=_Clock()), events)
        rows = await get_audit_log(store, session_id="s-1")
        chains = {r["chain"] for r in rows}
        assert chains == {
            "topic:session.events",
            "topic:agent.events",
            "topic:tool.events",
            "topic:hitl.events",
        }
        session_chain = [r["event_id"] for r in rows if r["chain"] == "topic:session.events"]
        assert session_chain == [str(e.event_id) for e in events if e.topic == "session.events"]
        assert await verify_audit(store) == []


async def test_a_number_taken_by_another_event_is_recorded_as_late(tmp_path: Path) -> None:
    """Two events with one producer's same number: the second is evidence, never a crash."""
    events = _session(count=4)
    other = _session(count=4)[2]  # a different event with number 2
    async with SqliteStore(tmp_path / "audit.db") as store:
        await _apply(
            store, AuditView(clock=_Clock()), [events[0], events[2], other, events[1], events[3]]
        )
        rows = await get_audit_log(store, session_id="s-1")
        assert [(r["kind"], r["sequence"]) for r in rows] == [
            ("event", 0),
            ("late", 2),
            ("event", 1),
            ("event", 2),
            ("event", 3),
        ]
