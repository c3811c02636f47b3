"""The old bus's API on the in-memory transport: priorities, isolation, stats, migration modes."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import pytest
import structlog.testing

from agentflux.producers import (
    AgentSwitchedEvent,
    BaseEvent,
    BrokerUnavailableError,
    EventBus,
    EventType,
    InMemoryTransport,
    InvalidEventError,
    PublishResult,
    SchemaRegistrationError,
    SessionCreatedEvent,
    Simulator,
)
from agentflux.schemas import EVENT_MODELS

if TYPE_CHECKING:
    from collections.abc import Iterable


def _switch(session: str = "s1") -> AgentSwitchedEvent:
    return AgentSwitchedEvent(
        session_id=session, from_agent="orchestrator", to_agent="coder", reason="code"
    )


async def test_subscribers_run_in_priority_order() -> None:
    """Higher priority runs first; equal priorities run in subscription order; sync and async mix."""
    bus = EventBus(transport=InMemoryTransport(), mode="both")
    calls: list[str] = []

    @bus.subscribe(event_type=EventType.AGENT_SWITCHED, priority=1)
    async def low(event: BaseEvent) -> None:
        calls.append("low")

    @bus.subscribe(event_type=EventType.AGENT_SWITCHED, priority=10)
    def high(event: BaseEvent) -> None:
        calls.append("high")

    @bus.subscribe(priority=5)  # every type
    async def middle(event: BaseEvent) -> None:
        calls.append("middle")

    @bus.subscribe(event_type=EventType.SESSION_CREATED, priority=99)
    async def other_type(event: BaseEvent) -> None:
        calls.append("other")

    await bus.publish(_switch())
    assert calls == ["high", "middle", "low"]


async def test_failing_subscriber_does_not_stop_others_or_publish() -> None:
    """A subscriber that raises is logged and counted; the rest run and the event is published."""
    transport = InMemoryTransport()
    bus = EventBus(transport=transport, mode="both")
    seen: list[str] = []

    @bus.subscribe(event_type=EventType.AGENT_SWITCHED, priority=10)
    async def broken(event: BaseEvent) -> None:
        raise RuntimeError("bug in a subscriber")

    @bus.subscribe(event_type=EventType.AGENT_SWITCHED, priority=1)
    async def fine(event: BaseEvent) -> None:
        seen.append(str(event.event_id))

    event = _switch()
    result = await bus.publish(event)
    assert result is not None
    assert seen == [str(event.event_id)]
    assert transport.events == [event]
    stats = bus.get_stats()
    assert stats["handler_errors"] == 1
    assert stats["events_by_type"] == {"agent_switched": 1}


@pytest.mark.parametrize(
    ("mode", "to_transport", "to_subscribers"),
    [("kafka", True, False), ("local", False, True), ("both", True, True)],
)
async def test_publish_modes(mode: str, to_transport: bool, to_subscribers: bool) -> None:
    """Mode kafka only publishes, local only dispatches (the old bus), both does both."""
    transport = InMemoryTransport()
    bus = EventBus(transport=transport, mode=mode)  # type: ignore[arg-type]
    seen: list[BaseEvent] = []
    bus.subscribe_handler(seen.append)
    await bus.publish(_switch())
    assert bool(transport.events) is to_transport
    assert bool(seen) is to_subscribers


async def test_unsubscribe() -> None:
    """An unsubscribed handler is no longer called."""
    bus = EventBus(transport=InMemoryTransport(), mode="local")
    seen: list[BaseEvent] = []
    bus.subscribe_handler(seen.append, EventType.AGENT_SWITCHED)
    bus.unsubscribe(seen.append)
    await bus.publish(_switch())
    assert seen == []


class _PreparingTransport(InMemoryTransport):
    """The in-memory transport, counting prepare() calls and failing them when told to."""

    def __init__(self, *, refuse: bool = False) -> None:
        super().__init__()
        self.prepared: list[int] = []
        self._refuse = refuse

    async def prepare(self, models: Iterable[type[BaseEvent]] | None = None) -> int:
        if self._refuse:
            raise SchemaRegistrationError("registry unreachable")
        self.prepared.append(await super().prepare(models))
        return self.prepared[-1]


@pytest.mark.parametrize(("mode", "prepared"), [("kafka", [len(EVENT_MODELS)]), ("local", [])])
async def test_start_prepares_every_event_type_once(mode: str, prepared: list[int]) -> None:
    """Starting (or the first publish) prepares every type once; local mode prepares nothing."""
    transport = _PreparingTransport()
    bus = EventBus(transport=transport, mode=mode)  # type: ignore[arg-type]
    await bus.publish(_switch())
    await bus.start()
    await bus.publish(_switch())
    assert transport.prepared == prepared


async def test_start_goes_on_when_preparing_fails() -> None:
    """A refused prepare() is logged as a warning; the bus starts and publishes all the same."""
    transport = _PreparingTransport(refuse=True)
    bus = EventBus(transport=transport, mode="kafka")
    with structlog.testing.capture_logs() as logs:
        await bus.start()
    assert [log["log_level"] for log in logs if "not prepared" in log["event"]] == ["warning"]
    assert "registry unreachable" in logs[0]["error"]
    assert await bus.publish(_switch()) is not None
    assert len(transport.events) == 1


class _RefusingTransport(InMemoryTransport):
    """The in-memory transport whose flush() fails as a broker refusing queued records would."""

    async def flush(self) -> None:
        raise BrokerUnavailableError(f"{len(self.records)} records queued with enqueue() failed")

    async def close(self) -> None:
        await self.flush()  # as the publisher's close flushes


class _PlainTransport:
    """A transport with no queue: only start, publish and close."""

    def __init__(self) -> None:
        self.memory = InMemoryTransport()

    async def start(self) -> None:
        """Nothing to connect."""

    async def publish(self, event: BaseEvent) -> PublishResult:
        return await self.memory.publish(event)

    async def close(self) -> None:
        """Nothing to flush."""


@pytest.mark.parametrize(
    ("mode", "to_transport", "to_subscribers"),
    [("kafka", True, False), ("local", False, True), ("both", True, True)],
)
async def test_enqueue_follows_the_mode(
    mode: str, to_transport: bool, to_subscribers: bool
) -> None:
    """enqueue() queues to the transport and/or dispatches per the mode, as publish() does."""
    transport = InMemoryTransport()
    bus = EventBus(transport=transport, mode=mode)  # type: ignore[arg-type]
    seen: list[BaseEvent] = []
    bus.subscribe_handler(seen.append)
    await bus.enqueue(_switch())
    await bus.flush()
    assert bool(transport.events) is to_transport
    assert bool(seen) is to_subscribers
    assert bus.get_stats()["total_published"] == 1


async def test_enqueue_refuses_an_invalid_event_before_queueing() -> None:
    """An invalid event raises from enqueue(), is counted, and reaches neither Kafka nor subscribers."""
    transport = InMemoryTransport()
    bus = EventBus(transport=transport, mode="both")
    seen: list[BaseEvent] = []
    bus.subscribe_handler(seen.append)
    bad = AgentSwitchedEvent.model_construct(session_id="", from_agent="a", to_agent="b")
    with pytest.raises(InvalidEventError):
        await bus.enqueue(bad)
    assert (transport.events, seen) == ([], [])
    assert bus.get_stats()["publish_failures"] == 1


@pytest.mark.parametrize("ending", ["flush", "close"])
async def test_a_refused_flush_or_close_raises_and_counts_once(ending: str) -> None:
    """flush() or close() raises what the transport could not store and counts one failure."""
    bus = EventBus(transport=_RefusingTransport(), mode="kafka")
    await bus.enqueue(_switch())
    with pytest.raises(BrokerUnavailableError, match="1 records"):
        await getattr(bus, ending)()
    if ending == "close":
        await bus.close()  # the bus is stopped: a second close raises and counts nothing
    assert bus.get_stats()["publish_failures"] == 1


async def test_enqueue_on_a_plain_transport_publishes_and_waits() -> None:
    """A transport with no queue gets publish() from enqueue(); flush() has nothing to wait for."""
    transport = _PlainTransport()
    bus = EventBus(transport=transport, mode="kafka")
    event = _switch()
    await bus.enqueue(event)
    await bus.flush()
    assert transport.memory.events == [event]


async def test_in_memory_transport_refuses_unvalidated_events() -> None:
    """An event smuggled past validation (model_construct) is refused like on Kafka."""
    transport = InMemoryTransport()
    bad = AgentSwitchedEvent.model_construct(session_id="", from_agent="a", to_agent="b")
    with pytest.raises(InvalidEventError, match="session_id"):
        await transport.publish(bad)
    assert transport.events == []


async def test_in_memory_transport_keys_and_partitions_like_kafka() -> None:
    """A session's events share one partition with increasing offsets, and carry all headers."""
    transport = InMemoryTransport(partitions=6)
    for _ in range(3):
        await transport.publish(_switch("session-a"))
    await transport.publish(
        SessionCreatedEvent(session_id="session-a", initial_agent="orchestrator")
    )
    records = [r for r in transport.records if r.topic == "agent.events"]
    assert len({r.partition for r in records}) == 1
    assert [r.offset for r in records] == [0, 1, 2]
    assert all(r.key == b"session-a" for r in transport.records)
    assert {name for name, _ in records[0].headers} >= {
        "ce_id",
        "ce_type",
        "traceparent",
        "event_type",
    }
    assert transport.of_type(EventType.SESSION_CREATED)[0].topic == "session.events"


def test_simulator_is_reproducible_and_plausible() -> None:
    """The same seed gives the same traffic; each session opens first and closes last."""
    first = list(Simulator(sessions=30, seed=7).events())
    again = list(Simulator(sessions=30, seed=7).events())
    assert [e.event_id for e in first] == [e.event_id for e in again]
    assert len({e.EVENT_TYPE for e in first}) >= 15
    by_session: dict[str, list[BaseEvent]] = {}
    for event in first:
        by_session.setdefault(event.session_id, []).append(event)
    stories = {s: events for s, events in by_session.items() if s.startswith("sim-")}
    assert len(stories) == 30
    for events in stories.values():
        assert events[0].EVENT_TYPE is EventType.SESSION_CREATED
        assert EventType.SESSION_DELETED not in {e.EVENT_TYPE for e in events[:-1]}
        assert [e.occurred_at for e in events] == sorted(e.occurred_at for e in events)
        assert all(e.causation_id == str(p.event_id) for p, e in itertools.pairwise(events))
