"""The publishing contract: every queueing transport must pass these (one subclass each).

faststream-style: the same tests run against the in-memory transport users test with and the
Kafka publisher on a real broker, so code tested on the first behaves the same on the second.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, NamedTuple

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from agentflux.producers import InvalidEventError
from agentflux.schemas import (
    EVENT_MODELS,
    AgentSwitchedEvent,
    BaseEvent,
    ToolExecutionCompletedEvent,
)

if TYPE_CHECKING:
    from agentflux.producers import QueueingTransport


class Stored(NamedTuple):
    """One stored record as a Kafka consumer would see it."""

    topic: str
    partition: int
    offset: int
    key: bytes
    headers: dict[str, bytes]


def session_events(sessions: int, per_session: int) -> list[BaseEvent]:
    """Events of ``sessions`` sessions, interleaved: session 0, 1, ..., 0, 1, ..."""
    return [
        AgentSwitchedEvent(session_id=f"s-{session}", from_agent=f"a{turn}", to_agent="b")
        for turn in range(per_session)
        for session in range(sessions)
    ]


def _misfit() -> BaseEvent:
    """An event no transport accepts: a duration that is not a number, built unvalidated."""
    return ToolExecutionCompletedEvent.model_construct(
        session_id="s", call_id="c", tool_name="t", duration_ms="slow", result_summary=""
    )


class TransportContract:
    """Behaviour every queueing transport guarantees; subclasses provide the two fixtures."""

    @pytest.fixture
    async def transport(self) -> QueueingTransport:
        """An open transport whose topics hold nothing yet (overridden per adapter)."""
        raise NotImplementedError

    async def stored(self, transport: QueueingTransport) -> list[Stored]:
        """Everything the transport stored so far, in offset order (overridden per adapter)."""
        raise NotImplementedError

    async def test_publish_says_where_the_event_is_stored(
        self, transport: QueueingTransport
    ) -> None:
        """publish() returns the topic, partition and offset the record is read back at."""
        event = session_events(1, 1)[0]
        result = await transport.publish(event)
        [record] = await self.stored(transport)
        assert (record.topic, record.partition, record.offset) == tuple(result)
        assert record.key == event.session_id.encode()
        assert record.headers["event_id"] == str(event.event_id).encode()

    async def test_every_method_stores_each_event_once_in_session_order(
        self, transport: QueueingTransport
    ) -> None:
        """publish, send, enqueue and publish_many mixed: once each, each session in order."""
        events = session_events(sessions=5, per_session=8)
        futures = []
        for at in range(0, len(events), 4):
            first, second, third, fourth = events[at : at + 4]
            await transport.publish(first)
            futures.append(await transport.send(second))
            await transport.enqueue(third)
            await transport.publish_many([fourth])
        await transport.flush()
        assert all(future.done() and future.exception() is None for future in futures)
        stored = await self.stored(transport)
        assert sorted(r.headers["event_id"] for r in stored) == sorted(
            str(e.event_id).encode() for e in events
        )
        by_session: dict[bytes, list[bytes]] = defaultdict(list)
        partitions: dict[bytes, set[int]] = defaultdict(set)
        for record in stored:
            by_session[record.key].append(record.headers["event_id"])
            partitions[record.key].add(record.partition)
        for session in {event.session_id for event in events}:
            published = [str(e.event_id).encode() for e in events if e.session_id == session]
            assert by_session[session.encode()] == published
            assert len(partitions[session.encode()]) == 1  # a session stays on one partition

    async def test_prepare_readies_each_type_once_and_publishing_goes_on(
        self, transport: QueueingTransport
    ) -> None:
        """prepare() counts every type by default, each named type once, and stores nothing."""
        assert await transport.prepare() == len(EVENT_MODELS)
        assert await transport.prepare([AgentSwitchedEvent, AgentSwitchedEvent]) == 1
        assert await self.stored(transport) == []
        event = session_events(1, 1)[0]
        await transport.publish(event)
        [record] = await self.stored(transport)
        assert record.headers["event_id"] == str(event.event_id).encode()

    async def test_a_sent_events_future_says_where_it_is_stored(
        self, transport: QueueingTransport
    ) -> None:
        """send()'s future resolves to the place the record is read back at."""
        future = await transport.send(session_events(1, 1)[0])
        await transport.flush()
        [record] = await self.stored(transport)
        assert (record.topic, record.partition, record.offset) == tuple(future.result())

    async def test_an_event_that_does_not_fit_is_refused_by_every_method(
        self, transport: QueueingTransport
    ) -> None:
        """Each method raises InvalidEventError for a misfit and stores nothing of it."""
        fitting = session_events(1, 1)[0]
        await transport.publish(fitting)
        with pytest.raises(InvalidEventError):
            await transport.publish(_misfit())
        with pytest.raises(InvalidEventError):
            await transport.send(_misfit())
        with pytest.raises(InvalidEventError):
            await transport.enqueue(_misfit())
        with pytest.raises(InvalidEventError):
            await transport.publish_many([_misfit()])
        await transport.flush()
        assert [r.headers["event_id"] for r in await self.stored(transport)] == [
            str(fitting.event_id).encode()
        ]

    async def test_every_method_carries_the_active_spans_trace_context(
        self, transport: QueueingTransport
    ) -> None:
        """Inside a span each record's traceparent names it; outside, each gets a trace of its own."""
        span = NonRecordingSpan(
            SpanContext(
                trace_id=0x0AF7651916CD43DD8448EB211C80319C,
                span_id=0xB7AD6B7169203331,
                is_remote=False,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            )
        )
        inside, outside = session_events(1, 4), session_events(1, 2)
        with trace.use_span(span):
            await transport.publish(inside[0])
            await transport.send(inside[1])
            await transport.enqueue(inside[2])
            await transport.publish_many([inside[3]])
        for event in outside:
            await transport.enqueue(event)
        await transport.flush()
        stored = {
            r.headers["event_id"]: r.headers["traceparent"] for r in await self.stored(transport)
        }
        expected = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        assert [stored[str(e.event_id).encode()] for e in inside] == [expected] * 4
        fresh = [stored[str(e.event_id).encode()] for e in outside]
        assert expected not in fresh
        assert len({value[3:35] for value in fresh}) == len(fresh)
