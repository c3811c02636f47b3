"""The context view is order-true: any interleaving of a session's topics gives the same context."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from conftest import fresh_postgres_database
from hypothesis import given, settings
from hypothesis import strategies as st

from agentflux._rebuild import compare_views
from agentflux.consumers import ContextView, Position, PostgresStore, SqliteStore, get_context
from agentflux.consumers._ports import apply_events
from agentflux.consumers._runner import apply_fetched
from agentflux.producers import InMemoryTransport, Simulator
from agentflux.schemas import AgentSwitchedEvent, SessionCreatedEvent

if TYPE_CHECKING:
    from agentflux.consumers import Store, Transaction
    from agentflux.schemas import BaseEvent

_VIEW = ContextView()
_TOPICS = ("agent.events", "session.events", "tool.events", "hitl.events")
_MOMENT = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
_UNNUMBERED = "sim-00000"  # this session's events are envelope v1: no producer id, no sequence


async def _stamped(events: list[BaseEvent]) -> list[BaseEvent]:
    """The events as consumers read them: numbered by a publisher."""
    transport = InMemoryTransport(producer_id="runtime-1")
    for event in events:
        await transport.publish(event)
    return [
        r.event.model_copy(update={"producer_id": r.producer_id, "sequence": r.sequence})
        for r in transport.records
    ]


def _tied(event: BaseEvent) -> BaseEvent:
    """Every hand-over at one moment (only the order can tell them apart); v1 for one session."""
    update: dict[str, object] = {}
    if isinstance(event, AgentSwitchedEvent):
        update["occurred_at"] = _MOMENT
    if event.session_id == _UNNUMBERED:
        update |= {"producer_id": None, "sequence": None}
    return event.model_copy(update=update) if update else event


def _by_topic(events: list[BaseEvent]) -> dict[str, list[tuple[BaseEvent, Position]]]:
    """Each topic's events in publish order, at offsets 0, 1, 2, ... of one partition."""
    logs: dict[str, list[tuple[BaseEvent, Position]]] = {topic: [] for topic in _TOPICS}
    for event in events:
        if event.topic in logs:
            log = logs[event.topic]
            log.append((event, Position(event.topic, 0, len(log))))
    return logs


async def _effects(tx: Transaction, fresh: list[tuple[BaseEvent, Position]]) -> None:
    await apply_events(_VIEW, tx, fresh)


async def _consume(
    store: SqliteStore, logs: dict[str, list[tuple[BaseEvent, Position]]], draw: st.DataObject
) -> None:
    """Fetch the topics in a drawn order, in drawn sizes, rewinding now and then (redelivery)."""
    await store.migrate(_VIEW.ddl)
    read = dict.fromkeys(logs, 0)
    while any(read[t] < len(logs[t]) for t in logs):
        topic = draw.draw(st.sampled_from([t for t in logs if read[t] < len(logs[t])]))
        start = max(0, read[topic] - draw.draw(st.integers(0, 2)))  # a rewind redelivers
        end = min(len(logs[topic]), read[topic] + draw.draw(st.integers(1, 6)))
        fetched = logs[topic][start:end]
        async with store.transaction() as tx:
            await apply_fetched(tx, "context", fetched, [fetched[-1][1]], _effects)
        read[topic] = end


async def _redrive(store: Store, event: BaseEvent) -> None:
    """Apply ``event`` again as ``GroupRunner.redrive`` does: guarded by its id, past any offset."""
    async with store.transaction() as tx:
        if await tx.mark_redriven("context", str(event.event_id)):
            await apply_events(_VIEW, tx, [(event, Position(event.topic, 0, 10**9))])


@settings(max_examples=30, deadline=None)
@given(draw=st.data())
async def test_any_interleaving_of_the_topics_gives_the_same_context(
    tmp_path_factory: pytest.TempPathFactory, draw: st.DataObject
) -> None:
    """Any topic interleaving, redeliveries and a re-driven old tied hand-over: one context."""
    events = [_tied(e) for e in await _stamped(list(Simulator(sessions=3, seed=11).events()))]
    logs = _by_topic(events)
    earlier = [  # numbered hand-overs that a later one of the same moment has superseded
        event
        for event, _ in logs["agent.events"][:-1]
        if isinstance(event, AgentSwitchedEvent)
        and event.sequence is not None
        and any(
            isinstance(e, AgentSwitchedEvent)
            and e.session_id == event.session_id
            and e.sequence is not None
            and e.sequence > event.sequence
            for e, _ in logs["agent.events"]
        )
    ]
    assert earlier  # the re-drive below has something to take the session back with
    folder = tmp_path_factory.mktemp("context")
    async with (
        SqliteStore(folder / "ordered.db") as ordered,
        SqliteStore(folder / "drawn.db") as drawn,
    ):
        await ordered.migrate(_VIEW.ddl)
        async with ordered.transaction() as tx:
            await apply_events(
                _VIEW, tx, [(e, Position(e.topic, 0, 0)) for e in events if e.topic in logs]
            )
        await _consume(drawn, logs, draw)
        await _redrive(drawn, draw.draw(st.sampled_from(earlier)))
        for session in sorted({e.session_id for e in events}):
            assert await get_context(drawn, session) == await get_context(ordered, session)
        # Every column of every table, the order columns included, as `agentflux rebuild` compares.
        assert await compare_views(_VIEW, drawn, ordered) == []


async def test_a_redriven_tied_hand_over_of_v1_events_wins_as_applied_last(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Unnumbered hand-overs of one moment follow offset order: a re-driven one counts as last."""
    first, second = (
        AgentSwitchedEvent(session_id="s-1", from_agent=a, to_agent=b, occurred_at=_MOMENT)
        for a, b in (("orchestrator", "coder"), ("coder", "reviewer"))
    )
    async with SqliteStore(tmp_path_factory.mktemp("v1") / "v.db") as store:
        await store.migrate(_VIEW.ddl)
        async with store.transaction() as tx:
            await apply_events(
                _VIEW,
                tx,
                [(first, Position("agent.events", 0, 0)), (second, Position("agent.events", 0, 1))],
            )
        context = await get_context(store, "s-1")
        assert context is not None
        assert context["current_agent"] == "reviewer"
        await _redrive(store, first)
        context = await get_context(store, "s-1")
        assert context is not None
        assert context["current_agent"] == "coder"


async def test_two_hand_overs_in_the_same_millisecond_end_with_the_later_published(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Equal event times: the hand-over published last is the current agent, batch split or not."""
    events = await _stamped(
        [
            SessionCreatedEvent(
                session_id="s-1", initial_agent="orchestrator", occurred_at=_MOMENT
            ),
            AgentSwitchedEvent(
                session_id="s-1", from_agent="orchestrator", to_agent="coder", occurred_at=_MOMENT
            ),
            AgentSwitchedEvent(
                session_id="s-1", from_agent="coder", to_agent="reviewer", occurred_at=_MOMENT
            ),
        ]
    )
    logs = _by_topic(events)
    agent = logs["agent.events"]
    # One fetch; one hand-over per fetch; the later one first (a replay of the topic's end).
    for parts in ([agent], [agent[:1], agent[1:]], [agent[1:], agent[:1]]):
        async with SqliteStore(tmp_path_factory.mktemp("ties") / "v.db") as store:
            await store.migrate(_VIEW.ddl)
            for fetched in (logs["session.events"], *parts):
                async with store.transaction() as tx:
                    await apply_fetched(tx, "context", fetched, [fetched[-1][1]], _effects)
            context = await get_context(store, "s-1")
            assert context is not None
            assert context["current_agent"] == "reviewer"


def test_a_later_sequence_wins_over_an_earlier_clock() -> None:
    """One producer's numbers beat its clock; between producers, the event time decides."""
    from agentflux.consumers._context import _supersedes  # noqa: PLC0415  # the rule itself

    assert _supersedes((1_000, "p-1", 5), (2_000, "p-1", 4))
    assert not _supersedes((2_000, "p-1", 4), (1_000, "p-1", 5))
    assert _supersedes((2_000, "p-2", 0), (1_000, "p-1", 9))
    assert not _supersedes((1_000, "p-2", 9), (2_000, "p-1", 0))
    assert _supersedes((1_000, None, None), (1_000, None, None))  # a full tie: applied later


_OLD_HANDOVERS = (  # ctx_handovers as views before the order columns made it
    "CREATE TABLE ctx_handovers (session_id TEXT NOT NULL, event_id TEXT NOT NULL, "
    "at_ms BIGINT NOT NULL, from_agent TEXT NOT NULL, to_agent TEXT NOT NULL, reason TEXT NOT NULL, "
    "PRIMARY KEY (session_id, event_id))"
)


async def _migrates_an_old_store(store: Store) -> None:
    """An old store keeps its rows, gains the order columns, and takes numbered hand-overs."""
    await store.migrate([_OLD_HANDOVERS])
    async with store.transaction() as tx:
        await tx.execute(
            "INSERT INTO ctx_handovers VALUES ('s-1', 'old', 1, 'orchestrator', 'coder', 'x')"
        )
    await store.migrate(_VIEW.ddl)
    await store.migrate(_VIEW.ddl)  # a second start finds everything in place
    numbered = await _stamped(
        [
            SessionCreatedEvent(
                session_id="s-1", initial_agent="orchestrator", occurred_at=_MOMENT
            ),
            AgentSwitchedEvent(
                session_id="s-1", from_agent="coder", to_agent="reviewer", occurred_at=_MOMENT
            ),
        ]
    )
    async with store.transaction() as tx:
        await apply_events(_VIEW, tx, [(e, Position(e.topic, 0, 0)) for e in numbered])
    rows = await store.rows(
        "SELECT event_id, producer_id, sequence FROM ctx_handovers ORDER BY at_ms"
    )
    assert [(r["producer_id"], r["sequence"]) for r in rows] == [(None, None), ("runtime-1", 1)]
    context = await get_context(store, "s-1")
    assert context is not None
    assert context["current_agent"] == "reviewer"


async def test_an_old_sqlite_store_migrates(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A SQLite context store made before the order columns gains them and keeps its rows."""
    async with SqliteStore(tmp_path_factory.mktemp("old") / "v.db") as store:
        await _migrates_an_old_store(store)


@pytest.mark.postgres
async def test_an_old_postgres_store_migrates(postgres_url: str) -> None:
    """A PostgreSQL context store made before the order columns gains them and keeps its rows."""
    async with PostgresStore(await fresh_postgres_database(postgres_url)) as store:
        await _migrates_an_old_store(store)


async def test_the_rebuild_comparison_sees_the_order_columns(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Two context stores that differ only in a hand-over's sequence compare as different."""
    events = await _stamped(
        [AgentSwitchedEvent(session_id="s-1", from_agent="a", to_agent="b", occurred_at=_MOMENT)]
    )
    folder = tmp_path_factory.mktemp("compare")
    async with (
        SqliteStore(folder / "live.db") as live,
        SqliteStore(folder / "rebuilt.db") as rebuilt,
    ):
        for store in (live, rebuilt):
            await store.migrate(_VIEW.ddl)
            async with store.transaction() as tx:
                await apply_events(_VIEW, tx, [(e, Position(e.topic, 0, 0)) for e in events])
        assert await compare_views(_VIEW, live, rebuilt) == []
        async with rebuilt.transaction() as tx:
            await tx.execute("UPDATE ctx_handovers SET sequence = sequence + 1")
        differences = await compare_views(_VIEW, live, rebuilt)
        assert differences[0].startswith("ctx_handovers: 1 row(s) only in the live view")
