"""The envelope's producer id and per-session sequence, as the publishers stamp them."""

from __future__ import annotations

import pytest

from agentflux.producers import InMemoryTransport
from agentflux.producers._sequences import SessionSequences, new_producer_id
from agentflux.schemas import (
    AgentSwitchedEvent,
    SessionCreatedEvent,
    SessionDeletedEvent,
    ToolExecutionStartedEvent,
)


def _switched(session: str, **envelope: object) -> AgentSwitchedEvent:
    return AgentSwitchedEvent(session_id=session, from_agent="a", to_agent="b", **envelope)


async def test_a_sessions_events_are_numbered_in_publish_order_across_topics() -> None:
    """Each session counts 0, 1, 2, ... over all its events, whatever their topic."""
    transport = InMemoryTransport(producer_id="runtime-1")
    events = [
        SessionCreatedEvent(session_id="s-1", initial_agent="orchestrator"),
        _switched("s-1"),
        _switched("s-2"),
        ToolExecutionStartedEvent(session_id="s-1", call_id="c-1", tool_name="grep"),
        SessionDeletedEvent(session_id="s-1"),
    ]
    for event in events:
        await transport.publish(event)
    stamped = [(r.event.session_id, r.sequence) for r in transport.records]
    assert stamped == [("s-1", 0), ("s-1", 1), ("s-2", 0), ("s-1", 2), ("s-1", 3)]
    assert {r.producer_id for r in transport.records} == {"runtime-1"}
    assert transport.events == events  # the objects published, unchanged


def test_a_deleted_sessions_counter_is_dropped() -> None:
    """The counter of a session lives until its session_deleted event; memory stays bounded."""
    sequences = SessionSequences("p")
    sequences.stamped(_switched("s-1").__dict__)
    sequences.stamped(_switched("s-2").__dict__)
    assert sequences.open_sessions() == 2
    last = sequences.stamped(SessionDeletedEvent(session_id="s-1").__dict__)
    assert last["sequence"] == 1
    assert sequences.open_sessions() == 1


def test_an_event_that_carries_a_sequence_keeps_it() -> None:
    """A relayed or re-driven event keeps its original producer id and number."""
    sequences = SessionSequences("p")
    relayed = _switched("s-1", producer_id="other", sequence=41).__dict__
    assert sequences.stamped(relayed) is relayed
    assert sequences.stamped(_switched("s-1").__dict__)["sequence"] == 0


def test_a_number_given_back_is_given_again() -> None:
    """A number stamped on an event refused before it was queued goes to the next event."""
    sequences = SessionSequences("p")
    original = _switched("s-1").__dict__
    sequences.rewind(sequences.stamped(original), original)
    assert sequences.stamped(_switched("s-1").__dict__)["sequence"] == 0


def test_producer_ids_are_unique_per_process_and_readable() -> None:
    """host:pid:random, within the identifier limit, different for each publisher made."""
    first, second = new_producer_id(), new_producer_id()
    assert first != second
    assert first.count(":") >= 2
    assert len(first) <= 128


def test_sequence_is_never_negative() -> None:
    """A negative sequence is refused when the event is built."""
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        _switched("s-1", sequence=-1)


def test_a_session_id_used_again_after_its_deletion_goes_on_numbering() -> None:
    """No number is given twice by one producer to one session id, even across its deletion."""
    sequences = SessionSequences("p")
    sequences.stamped(_switched("s-1").__dict__)
    sequences.stamped(SessionDeletedEvent(session_id="s-1").__dict__)
    assert sequences.open_sessions() == 0
    assert sequences.stamped(_switched("s-1").__dict__)["sequence"] == 2
