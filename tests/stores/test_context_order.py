"""The context view is order-true: any interleaving of a session's topics gives the same context."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hypothesis import given, settings
from hypothesis import strategies as st

from agentflux.consumers import ContextView, Position, SqliteStore, get_context
from agentflux.consumers._ports import apply_events
from agentflux.consumers._runner import apply_fetched
from agentflux.producers import InMemoryTransport, Simulator
from agentflux.schemas import AgentSwitchedEvent, SessionCreatedEvent

if TYPE_CHECKING:
    import pytest

    from agentflux.consumers import Transaction
    from agentflux.schemas import BaseEvent

_VIEW = ContextView()
_TOPICS = ("agent.events", "session.events", "tool.events", "hitl.events")


async def _stamped(events: list[BaseEvent]) -> list[BaseEvent]:
    """The events as consumers read them: numbered by a publisher."""
    transport = InMemoryTransport(producer_id="runtime-1")
    for event in events:
        await transport.publish(event)
    return [
        r.event.model_copy(update={"producer_id": r.producer_id, "sequence": r.sequence})
        for r in transport.records
    ]


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


@settings(max_examples=30, deadline=None)
@given(draw=st.data())
async def test_any_interleaving_of_the_topics_gives_the_same_context(
    tmp_path_factory: pytest.TempPathFactory, draw: st.DataObject
) -> None:
    """Sessions read topic by topic in any order, with redeliveries: the context of each is one."""
    events = await _stamped(list(Simulator(sessions=3, seed=11).events()))
    logs = _by_topic(events)
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
        for session in sorted({e.session_id for e in events}):
            assert await get_context(drawn, session) == await get_context(ordered, session)


async def test_two_hand_overs_in_the_same_millisecond_end_with_the_later_published(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Equal event times: the hand-over published last is the current agent, batch split or not."""
    moment = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
    events = await _stamped(
        [
            SessionCreatedEvent(session_id="s-1", initial_agent="orchestrator", occurred_at=moment),
            AgentSwitchedEvent(
                session_id="s-1", from_agent="orchestrator", to_agent="coder", occurred_at=moment
            ),
            AgentSwitchedEvent(
                session_id="s-1", from_agent="coder", to_agent="reviewer", occurred_at=moment
            ),
        ]
    )
    logs = _by_topic(events)
    agent = logs["agent.events"]
    for parts in ([agent], [agent[:1], agent[1:]]):  # one fetch, or one hand-over per fetch
        async with SqliteStore(tmp_path_factory.mktemp("ties") / "v.db") as store:
            await store.migrate(_VIEW.ddl)
            for fetched in (logs["session.events"], *parts):
                async with store.transaction() as tx:
                    await apply_fetched(tx, "context", fetched, [fetched[-1][1]], _effects)
            context = await get_context(store, "s-1")
            assert context is not None
            assert context["current_agent"] == "reviewer"
