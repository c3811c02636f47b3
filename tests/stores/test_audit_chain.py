"""The audit chain: publish order whatever the arrival order, gaps and late events as evidence."""

from __future__ import annotations

import asyncio
import itertools
import zlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from _postgres_stats import database_counters
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
from agentflux.consumers._audit import _HeldCache
from agentflux.consumers._audit_clock import StreamClock
from agentflux.producers import Simulator
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


_START = datetime(2026, 12, 1, tzinfo=UTC)


def _two_topics(count: int = 12, *, step: timedelta = timedelta(minutes=10)) -> list[BaseEvent]:
    """One session's events, even numbers on agent.events, odd on session.events, ``step`` apart."""
    events: list[BaseEvent] = []
    for i in range(count):
        event: BaseEvent = (
            AgentSwitchedEvent(session_id="s-1", from_agent=f"a{i}", to_agent=f"a{i + 1}")
            if i % 2 == 0
            else SessionMessageAddedEvent(
                session_id="s-1", message_id=f"m-{i}", role="USER", content="hi"
            )
        )
        events.append(
            event.model_copy(
                update={"producer_id": "p-1", "sequence": i, "occurred_at": _START + i * step}
            )
        )
    return events


def _position(event: BaseEvent, offset: int) -> Position:
    return Position(event.topic, 0, offset)


async def _apply(store: Store, view: AuditView, arrivals: list[BaseEvent]) -> None:
    """Each event in its own transaction, as a batch of one."""
    await _apply_batches(store, view, [[event] for event in arrivals])


async def _apply_batches(store: Store, view: AuditView, batches: list[list[BaseEvent]]) -> None:
    """Each batch in one transaction, as the runner applies a fetch."""
    await store.migrate(view.ddl)
    offsets: dict[str, int] = {}
    for batch in batches:
        async with store.transaction() as tx:
            events = []
            for event in batch:
                offsets[event.topic] = offsets.get(event.topic, -1) + 1
                events.append((event, _position(event, offsets[event.topic])))
            await view.apply_batch(tx, events)


async def _chains(store: Store) -> list[tuple[Any, ...]]:
    rows = await get_audit_log(store, limit=1_000_000)
    return [
        (r["session_id"], r["chain"], r["seq"], r["kind"], r["event_id"], r["hash"]) for r in rows
    ]


def _batches(arrivals: list[BaseEvent], cuts: list[int]) -> list[list[BaseEvent]]:
    """``arrivals`` cut at the given positions."""
    edges = sorted({0, len(arrivals), *(c % (len(arrivals) + 1) for c in cuts)})
    return [arrivals[a:b] for a, b in itertools.pairwise(edges)]


@settings(max_examples=25, deadline=None)
@given(
    order=st.randoms(use_true_random=False),
    redeliveries=st.integers(0, 4),
    cuts=st.lists(st.integers(0, 40), max_size=6),
)
async def test_any_arrival_order_and_batching_give_the_same_chain_and_hashes(
    tmp_path_factory: pytest.TempPathFactory,
    order: random.Random,
    redeliveries: int,
    cuts: list[int],
) -> None:
    """Two sessions, three producers, shuffled, redelivered, in batches of any size: identical chains."""
    events = _session("s-1", "p-1") + _session("s-2", "p-2", 5) + _session("s-1", "p-3", 3)
    arrivals = events + [order.choice(events) for _ in range(redeliveries)]
    order.shuffle(arrivals)
    folder = tmp_path_factory.mktemp("audit")
    async with (
        SqliteStore(folder / "ordered.db") as ordered,
        SqliteStore(folder / "shuffled.db") as shuffled,
    ):
        await _apply(ordered, AuditView(clock=_Clock()), events)
        await _apply_batches(shuffled, AuditView(clock=_Clock()), _batches(arrivals, cuts))
        assert await _chains(shuffled) == await _chains(ordered)
        assert await verify_audit(shuffled) == []
        assert (await audit_report(shuffled))["s-1"].status == "intact"
        chain = await get_audit_log(shuffled, session_id="s-2")
        assert [r["payload"]["sequence"] for r in chain] == [0, 1, 2, 3, 4]
        assert [r["seq"] for r in chain] == [1, 2, 3, 4, 5]


async def _gap_then_late(store: Store) -> None:
    """Idle past the grace period, a hole is recorded as a gap; the event later comes as late."""
    clock = _Clock()
    view = AuditView(grace_s=30, clock=clock)
    events = _session(count=5)
    await _apply(store, view, [events[0], events[1], events[3], events[4]])
    assert (await audit_report(store))["s-1"].pending == 2
    clock.now += 29
    async with store.transaction() as tx:
        assert await view.sweep(tx) == 0  # not idle long enough yet
    clock.now += 2
    async with store.transaction() as tx:
        assert await view.sweep(tx) == 1  # nothing delivered for the grace period: the idle rule
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


async def test_an_idle_group_records_the_gap_once_the_grace_period_passes(tmp_path: Path) -> None:
    """On SQLite: no delivery for the grace period (injected clock) → a gap; late event, duplicate ignored."""
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


def _following(clock: _Clock) -> AuditView:
    """A view as the audit runner sets it up: a member reading partition 0 of two topics."""
    view = AuditView(grace_s=30, clock=clock)
    view.follow(["agent.events", "session.events"], lambda: {0})
    return view


def _lagging(events: list[BaseEvent]) -> list[list[BaseEvent]]:
    """A rebuild that reads agent.events to its end first and session.events one event a batch."""
    agent = [e for e in events if e.topic == "agent.events"]
    session = [e for e in events if e.topic == "session.events"]
    return [[agent[0], session[0]], agent[1:], *([e] for e in session[1:])]


async def _lagging_equals_live(live: Store, rebuilt: Store) -> None:
    """Lagging two hours of event time on one topic: no false gap, the live chain hash for hash."""
    events = _two_topics()
    await _apply(live, _following(_Clock()), events)
    clock = _Clock()
    view = _following(clock)
    await store_batches_over_time(rebuilt, view, _lagging(events), clock, seconds_apart=20)
    assert await _chains(rebuilt) == await _chains(live)
    report = (await audit_report(rebuilt))["s-1"]
    assert (report.records, report.status) == (12, "intact")


async def store_batches_over_time(
    store: Store, view: AuditView, batches: list[list[BaseEvent]], clock: _Clock, seconds_apart: int
) -> None:
    """Each batch applied ``seconds_apart`` of wall clock after the one before."""
    for index in range(len(batches)):
        await _apply_batches(store, view, batches[index : index + 1])
        clock.now += seconds_apart


async def test_a_rebuild_lagging_on_one_topic_records_no_false_gap(tmp_path: Path) -> None:
    """SQLite: agent.events read hours of event time ahead of session.events: no gap, the same hashes."""
    async with (
        SqliteStore(tmp_path / "live.db") as live,
        SqliteStore(tmp_path / "rebuilt.db") as rebuilt,
    ):
        await _lagging_equals_live(live, rebuilt)


@pytest.mark.postgres
async def test_a_lagging_rebuild_on_postgresql_equals_the_live_chain(postgres_url: str) -> None:
    """PostgreSQL: the same lagging rebuild, the same chain and hashes as the live view."""
    async with (
        PostgresStore(await fresh_postgres_database(postgres_url)) as live,
        PostgresStore(await fresh_postgres_database(postgres_url)) as rebuilt,
    ):
        await _lagging_equals_live(live, rebuilt)


async def test_a_real_hole_is_one_gap_by_event_time_live_and_lagging(tmp_path: Path) -> None:
    """Number 5 never published: live and lagging builds both record exactly one gap, same hashes."""
    events = [e for e in _two_topics() if e.sequence != 5]
    async with (
        SqliteStore(tmp_path / "live.db") as live,
        SqliteStore(tmp_path / "rebuilt.db") as rebuilt,
    ):
        live_clock = _Clock()
        await _apply(live, _following(live_clock), events)  # the wall clock never moves: event time
        clock = _Clock()
        await store_batches_over_time(
            rebuilt, _following(clock), _lagging(events), clock, seconds_apart=20
        )
        for store in (live, rebuilt):
            rows = await get_audit_log(store, session_id="s-1")
            assert [(r["kind"], r["sequence"]) for r in rows] == [
                *(("event", i) for i in range(5)),
                ("gap", 5),
                *(("event", i) for i in range(6, 12)),
            ]
            report = (await audit_report(store))["s-1"]
            assert (report.gaps, report.late, report.pending) == (1, 0, 0)
        assert await _chains(rebuilt) == await _chains(live)


async def test_a_held_event_waits_for_a_topic_that_is_still_behind(tmp_path: Path) -> None:
    """A topic whose stream time is behind the held event holds the gap back, however far the other runs."""
    events = _two_topics()
    async with SqliteStore(tmp_path / "audit.db") as store:
        view = _following(_Clock())
        # session.events delivered its first event (10 min); agent.events runs to 100 min.
        await _apply_batches(store, view, [[events[0], events[1]], events[2::2]])
        report = (await audit_report(store))["s-1"]
        assert (report.records, report.gaps, report.pending) == (3, 0, 4)
        async with store.transaction() as tx:  # what a rebuild does at its end: 3, 5, 7, 9
            assert await view.sweep(tx, everything=True) == 4
        report = (await audit_report(store))["s-1"]
        assert (report.records, report.gaps, report.pending) == (11, 4, 0)


def test_a_partition_assigned_later_is_waited_for_a_grace_period() -> None:
    """After a rebalance, a newly assigned partition is not idle at once: no gap before it delivers."""
    clock = _Clock()
    stream = StreamClock(30, clock)
    assigned = {0}
    stream.follow(["agent.events", "session.events"], lambda: assigned)
    stream.observe("agent.events", 0, 1_000, clock.now)
    stream.observe("session.events", 0, 2_000, clock.now)
    assert stream.cutoffs(clock.now) == {0: 1_000 - 30_000}
    clock.now += 100
    assigned.add(1)  # partition 1 arrives long after the view started
    assert stream.cutoffs(clock.now) == {0: float("inf")}  # 0 idle; 1 waited for
    clock.now += 31
    assert stream.cutoffs(clock.now) == {0: float("inf"), 1: float("inf")}


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
        await _apply_batches(store, AuditView(clock=_Clock()), [events[:4], events[4:]])
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
        await _apply_batches(
            store,
            AuditView(clock=_Clock()),
            [[events[0], events[2], other], [events[1], events[3]]],
        )
        rows = await get_audit_log(store, session_id="s-1")
        assert [(r["kind"], r["sequence"]) for r in rows] == [
            ("event", 0),
            ("late", 2),
            ("event", 1),
            ("event", 2),
            ("event", 3),
        ]


async def test_held_events_past_the_memory_limit_are_read_from_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No room in memory for held events: each batch reads them from the store, same chains."""
    monkeypatch.setattr(_HeldCache, "MOST_EVENTS", 0)
    events = _session("s-1", "p-1") + _session("s-2", "p-2", 5)
    arrivals = list(reversed(events))  # every event waits for the ones before it
    async with (
        SqliteStore(tmp_path / "ordered.db") as ordered,
        SqliteStore(tmp_path / "reversed.db") as reversed_,
    ):
        await _apply(ordered, AuditView(clock=_Clock()), events)
        await _apply_batches(reversed_, AuditView(clock=_Clock()), _batches(arrivals, [2, 5, 9]))
        assert await _chains(reversed_) == await _chains(ordered)
        assert (await audit_report(reversed_))["s-1"].status == "intact"


async def _s1_records(store: Store) -> list[tuple[str, int]]:
    """Session s-1's records as (kind, sequence), in chain order."""
    rows = await get_audit_log(store, session_id="s-1")
    return [(r["kind"], r["sequence"]) for r in rows]


_OLD_CURSOR_TABLE = (
    "CREATE TABLE audit_cursor (session_id TEXT NOT NULL, chain TEXT NOT NULL, "
    "next_sequence BIGINT NOT NULL, last_seq BIGINT NOT NULL, "
    "last_hash TEXT NOT NULL, PRIMARY KEY (session_id, chain))"
)


async def test_a_store_from_before_the_held_token_reads_its_held_events(tmp_path: Path) -> None:
    """A cursor table made before ``held_token`` gains it; a row without a token is read again."""
    events = _session(count=3)
    async with SqliteStore(tmp_path / "audit.db") as store:
        await store.migrate([_OLD_CURSOR_TABLE])
        await _apply_batches(store, AuditView(clock=_Clock()), [[events[0], events[2]]])
        async with store.transaction() as tx:  # as a version before the token left it
            await tx.execute("UPDATE audit_cursor SET held_token = NULL")
        await _apply_batches(store, AuditView(clock=_Clock()), [[events[1]]])
        assert await _s1_records(store) == [("event", n) for n in range(3)]


class _RolledBackError(Exception):
    """Raised inside a transaction to roll it back."""


async def _hold_then_roll_back(store: Store, view: AuditView, event: BaseEvent) -> None:
    async with store.transaction() as tx:
        await view.apply_batch(tx, [(event, _position(event, 0))])
        raise _RolledBackError


async def _swept(store: Store, view: AuditView) -> tuple[int, list[tuple[str, int]]]:
    """Sweep as a rebuild ends: the numbers found missing, and s-1's (kind, sequence) records."""
    async with store.transaction() as tx:
        missing = await view.sweep(tx, everything=True)
    return missing, await _s1_records(store)


async def test_a_rolled_back_batch_leaves_no_held_event_in_memory(tmp_path: Path) -> None:
    """A batch that held an event and rolled back: the event is neither chained nor held after."""
    events = _session(count=4)
    view = AuditView(clock=_Clock())
    async with SqliteStore(tmp_path / "audit.db") as store:
        await _apply_batches(store, view, [[events[0]]])
        with pytest.raises(_RolledBackError):
            await _hold_then_roll_back(store, view, events[2])
        await _apply_batches(store, view, [[events[1]], [events[3]]])
        assert await _swept(store, view) == (
            1,
            [("event", 0), ("event", 1), ("gap", 2), ("event", 3)],
        )


async def test_held_events_another_view_chained_are_read_again(tmp_path: Path) -> None:
    """Two views on one store (a rebalance): what one held and the other chained is not used again."""
    events = _session(count=6)
    first, second = AuditView(clock=_Clock()), AuditView(clock=_Clock())
    async with SqliteStore(tmp_path / "audit.db") as store:
        await _apply_batches(store, first, [[events[0], events[3]]])  # 3 held by the first
        await _apply_batches(store, second, [[events[1], events[2]]])  # 1, 2 and the held 3
        await _apply_batches(store, first, [[events[5]]])  # held, waiting for 4
        kinds = [("event", n) for n in range(4)] + [("gap", 4), ("event", 5)]
        assert await _swept(store, first) == (1, kinds)


def _numbered_traffic() -> list[BaseEvent]:
    """Simulated sessions numbered per session as one publisher numbers them."""
    numbers: dict[str, int] = {}
    events = []
    for event in Simulator(sessions=40, seed=11).events():
        sequence = numbers[event.session_id] = numbers.get(event.session_id, -1) + 1
        events.append(event.model_copy(update={"producer_id": "p-1", "sequence": sequence}))
    return events


def _by_partition(events: list[BaseEvent]) -> list[list[tuple[BaseEvent, Position]]]:
    """The events as six co-partitioned topics hold them: a session's chain fed from several."""
    batches: dict[tuple[str, int], list[tuple[BaseEvent, Position]]] = {}
    for event in events:
        key = (event.topic, zlib.crc32(event.session_id.encode()) % 6)
        batch = batches.setdefault(key, [])
        batch.append((event, Position(*key, len(batch))))
    return list(batches.values())


@pytest.mark.postgres
async def test_concurrent_batches_on_the_same_chains_neither_deadlock_nor_collide(
    postgres_url: str,
) -> None:
    """Every partition's batch at once (chains fed from several topics), redelivered twice: zero deadlocks and rollbacks, the ordered chains."""
    events = _numbered_traffic()
    reference_url = await fresh_postgres_database(postgres_url)
    concurrent_url = await fresh_postgres_database(postgres_url)
    async with PostgresStore(reference_url) as reference:
        await _apply_batches(reference, AuditView(clock=_Clock()), [events])
        expected = await _chains(reference)
    async with PostgresStore(concurrent_url) as setup:
        await setup.migrate(AuditView.ddl)
    before = await database_counters(concurrent_url)
    view = AuditView(clock=_Clock())
    async with PostgresStore(concurrent_url, pool_size=8) as store:

        async def write(batch: list[tuple[BaseEvent, Position]]) -> None:
            async with store.transaction() as tx:
                await view.apply_batch(tx, batch)

        for _ in range(3):
            await asyncio.gather(*(write(batch) for batch in _by_partition(events)))
        built = await _chains(store)
        assert await verify_audit(store) == []
    after = await database_counters(concurrent_url)
    assert after == before  # no deadlock, and no transaction rolled back (a unique violation would)
    assert built == expected
    assert len(built) == len(events)


_OLD_TIME_INDEXES = (
    "CREATE INDEX audit_by_type_time ON audit_chain (event_type, occurred_ms)",
    "CREATE INDEX audit_by_time ON audit_chain (occurred_ms)",
)


async def _filters_without_time_indexes(store: Store, indexes_sql: str) -> None:
    """A store with the old time indexes loses them on migration; type and time filters still work."""
    view = AuditView(clock=_Clock())
    await store.migrate(view.ddl)
    await store.migrate(_OLD_TIME_INDEXES)  # as a store made by an earlier version has them
    await _apply(store, view, _two_topics(6))
    assert {row["name"] for row in await store.rows(indexes_sql)} & {
        "audit_by_type_time",
        "audit_by_time",
    } == set()
    switched = await get_audit_log(
        store,
        event_type="agent_switched",
        since=_START + timedelta(minutes=15),
        until=_START + timedelta(minutes=45),
    )
    assert [r["sequence"] for r in switched] == [2, 4]


async def test_time_indexes_are_dropped_and_filters_still_work_on_sqlite(tmp_path: Path) -> None:
    """On SQLite: migrating drops the old time indexes; event type and time filters still select."""
    async with SqliteStore(tmp_path / "audit.db") as store:
        await _filters_without_time_indexes(
            store, "SELECT name FROM sqlite_master WHERE type = 'index'"
        )


@pytest.mark.postgres
async def test_time_indexes_are_dropped_and_filters_still_work_on_postgresql(
    postgres_url: str,
) -> None:
    """On PostgreSQL: migrating drops the old time indexes; event type and time filters still select."""
    async with PostgresStore(await fresh_postgres_database(postgres_url)) as store:
        await _filters_without_time_indexes(
            store, "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'audit_chain'"
        )


def _shared_ids() -> list[BaseEvent]:
    """Two sessions whose events carry the same ids: s-2's are s-1's with the session changed."""
    first = _session("s-1", "p-1", 4)
    return first + [event.model_copy(update={"session_id": "s-2"}) for event in first]


async def _chained_per_session(store: Store) -> None:
    """Ids shared across sessions are chained (and held) in each; a repeat within one, once."""
    events = _shared_ids()
    held_first = [events[i] for i in (0, 2, 3, 4, 6, 7)]  # 2 and 3 wait in both sessions
    await _apply_batches(
        store,
        AuditView(clock=_Clock()),
        [held_first, [events[1], events[5], events[1]], events, [events[2]]],
    )
    for session in ("s-1", "s-2"):
        rows = await get_audit_log(store, session_id=session)
        assert [(r["kind"], r["sequence"], r["event_id"]) for r in rows] == [
            ("event", n, str(events[n].event_id)) for n in range(4)
        ]
    assert await verify_audit(store) == []


async def test_an_event_id_is_chained_in_each_session_that_has_it_on_sqlite(
    tmp_path: Path,
) -> None:
    """On SQLite: the same event id in two sessions is chained in both; a repeat in one, once."""
    async with SqliteStore(tmp_path / "audit.db") as store:
        await _chained_per_session(store)


@pytest.mark.postgres
async def test_an_event_id_is_chained_in_each_session_that_has_it_on_postgresql(
    postgres_url: str,
) -> None:
    """On PostgreSQL: the same event id in two sessions is chained in both; a repeat in one, once."""
    async with PostgresStore(await fresh_postgres_database(postgres_url)) as store:
        await _chained_per_session(store)


# The two tables as versions before per-session event ids made them: event_id UNIQUE alone.
_GLOBAL_ID_TABLES = (
    (
        "CREATE TABLE audit_chain (session_id TEXT NOT NULL, chain TEXT NOT NULL, "
        "seq BIGINT NOT NULL, kind TEXT NOT NULL, event_id TEXT UNIQUE, event_type TEXT NOT NULL, "
        "occurred_ms BIGINT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, "
        "off BIGINT NOT NULL, producer_id TEXT, sequence BIGINT, payload TEXT NOT NULL, "
        "prev_hash TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (session_id, chain, seq))"
    ),
    (
        "CREATE TABLE audit_pending (session_id TEXT NOT NULL, chain TEXT NOT NULL, "
        "sequence BIGINT NOT NULL, event_id TEXT NOT NULL UNIQUE, event_type TEXT NOT NULL, "
        "occurred_ms BIGINT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, "
        "off BIGINT NOT NULL, producer_id TEXT, payload TEXT NOT NULL, held_ms BIGINT NOT NULL, "
        "PRIMARY KEY (session_id, chain, sequence))"
    ),
)


async def test_a_store_with_global_event_ids_still_chains_on_sqlite(tmp_path: Path) -> None:
    """On SQLite: tables with UNIQUE (event_id) keep it, gain the per-session index, still chain."""
    async with SqliteStore(tmp_path / "audit.db") as store:
        await store.migrate(_GLOBAL_ID_TABLES)
        events = _session(count=4)  # then a redelivery of all, then of the last
        await _apply_batches(
            store, AuditView(clock=_Clock()), [[events[0], events[2]], events, [events[3]]]
        )
        assert await _s1_records(store) == [("event", n) for n in range(4)]
        indexes = await store.rows(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_chain'"
        )
        names = {row["name"] for row in indexes}
        assert "audit_chain_event" in names
        assert any(name.startswith("sqlite_autoindex_audit_chain") for name in names)


@pytest.mark.postgres
async def test_a_store_with_global_event_ids_is_migrated_on_postgresql(postgres_url: str) -> None:
    """On PostgreSQL: UNIQUE (event_id) constraints are dropped (twice is harmless); ids per session."""
    async with PostgresStore(await fresh_postgres_database(postgres_url)) as store:
        await store.migrate(_GLOBAL_ID_TABLES)
        await store.migrate(AuditView.ddl)
        await store.migrate(AuditView.ddl)
        constraints = await store.rows(
            "SELECT conname FROM pg_constraint WHERE contype = 'u' "
            "AND conrelid IN ('audit_chain'::regclass, 'audit_pending'::regclass)"
        )
        assert constraints == []
        indexes = await store.rows(
            "SELECT indexname FROM pg_indexes WHERE indexname IN "
            "('audit_chain_event', 'audit_pending_event') ORDER BY indexname"
        )
        assert [row["indexname"] for row in indexes] == ["audit_chain_event", "audit_pending_event"]
        await _chained_per_session(store)
