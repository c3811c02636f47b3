"""The old in-process bus's API, backed by Kafka: runtime code moves over by changing imports.

::

    from agentflux.producers import event_bus, EventType, AgentSwitchedEvent

    @event_bus.subscribe(event_type=EventType.AGENT_SWITCHED, priority=10)
    async def on_switch(event): ...

    await event_bus.publish(AgentSwitchedEvent(session_id=..., from_agent=..., to_agent=...))

``await event_bus.enqueue(event)`` is the high-throughput path (no wait per event; the broker's
refusals raised by ``await event_bus.flush()``, as by ``close()``).

``publish_mode`` (setting ``AGENTFLUX_PUBLISH_MODE``) migrates gradually: ``kafka`` publishes
only to Kafka, ``local`` only dispatches to this process's subscribers (the old behaviour),
``both`` does both (the default, so existing subscribers keep working during the move).
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from agentflux.kafka import AgentfluxSettings, PublishMode
from agentflux.producers._errors import PublishError
from agentflux.producers._protocols import QueueingTransport
from agentflux.schemas import BaseEvent, EventType

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from agentflux.producers._protocols import PublishResult, Transport

__all__ = ["EventBus", "Handler"]

Handler = Callable[[BaseEvent], "Awaitable[None] | None"]
_log = structlog.get_logger("agentflux.bus")


@dataclass(frozen=True, slots=True)
class _Subscription:
    handler: Callable[[BaseEvent], Any]
    event_type: EventType | None
    priority: int
    order: int


class EventBus:
    """Publish events to Kafka and/or to in-process subscribers run in priority order."""

    def __init__(
        self,
        settings: AgentfluxSettings | None = None,
        *,
        transport: Transport | None = None,
        mode: PublishMode | None = None,
    ) -> None:
        """Configure from settings; the Kafka transport is built and started on first use."""
        self._settings = settings
        self._transport = transport
        self._mode = mode
        self._subscriptions: list[_Subscription] = []
        self._started = False
        # The transport's queue, found once at start: a runtime-checkable isinstance costs
        # more than the publisher's whole enqueue() does.
        self._queueing: QueueingTransport | None = None
        self._start_lock = asyncio.Lock()
        self._published: Counter[str] = Counter()
        self._dispatched = 0
        self._failed = 0
        self._handler_errors: Counter[str] = Counter()

    @property
    def settings(self) -> AgentfluxSettings:
        """The settings in use (read from the environment on first access)."""
        if self._settings is None:
            self._settings = AgentfluxSettings()
        return self._settings

    @property
    def mode(self) -> PublishMode:
        """Where events go: kafka, local or both."""
        return self._mode or self.settings.publish_mode

    @property
    def transport(self) -> Transport:
        """The transport events are published through (Kafka by default)."""
        if self._transport is None:
            from agentflux.producers._publisher import EventPublisher  # noqa: PLC0415  # only when Kafka is used

            self._transport = EventPublisher(self.settings)
        return self._transport

    async def start(self) -> None:
        """Connect the transport and prepare every event type (publish also does this first).

        Preparing (``prepare``) registers each type's schema and learns its
        topic's partitions now, so no type's first event waits for the registry. A registry or
        broker that cannot answer yet does not fail the start: it is logged, and each type's
        first event then asks again and raises its own typed error, as without preparing.
        """
        async with self._start_lock:
            if not self._started and self.mode != "local":
                transport = self.transport
                await transport.start()
                self._queueing = transport if isinstance(transport, QueueingTransport) else None
                await self._prepare()
            self._started = True

    async def _prepare(self) -> None:
        if self._queueing is None:
            return  # a plain transport has nothing to learn ahead
        try:
            await self._queueing.prepare()
        except PublishError as exc:
            _log.warning(
                "event types not prepared at start: each type's first event will ask again",
                error=repr(exc),
            )

    async def close(self) -> None:
        """Flush and disconnect the transport (what it could not store raised, as by flush)."""
        try:
            if self._started and self._transport is not None:
                await self._transport.close()
        except PublishError:
            self._failed += 1
            raise
        finally:
            self._started = False

    # -- publishing ----------------------------------------------------------------------------

    async def publish(self, event: BaseEvent) -> PublishResult | None:
        """Publish ``event`` per the mode; return where Kafka stored it (None in local mode).

        A failing subscriber is logged and counted; it never stops other subscribers or the
        publish. A Kafka failure raises a typed ``PublishError``.
        """
        return await self._publish(event, queued=False)

    async def enqueue(self, event: BaseEvent) -> None:
        """Publish ``event`` per the mode without waiting for Kafka: the high-throughput path.

        Invalid events raise here, before anything is queued; what the broker then refuses
        is raised by the next ``flush`` (or ``close``) with how many failed, so nothing
        fails unseen. Subscribers run as with ``publish``. A transport with no queue
        (not a ``QueueingTransport``) publishes and waits instead.
        """
        await self._publish(event, queued=True)

    async def _publish(self, event: BaseEvent, *, queued: bool) -> PublishResult | None:
        if not self._started:
            await self.start()
        result: PublishResult | None = None
        if self.mode in {"kafka", "both"}:
            try:
                if queued and self._queueing is not None:
                    await self._queueing.enqueue(event)
                else:
                    result = await self.transport.publish(event)
            except PublishError:
                self._failed += 1
                raise
        self._published[event.EVENT_TYPE.value] += 1
        if self.mode in {"local", "both"}:
            await self._dispatch(event)
        return result

    async def flush(self) -> None:
        """Wait until every event queued by ``enqueue`` is stored, or raise what was not.

        Raises ``PublishError`` (counted in ``publish_failures``) when the broker refused
        any of them; local mode has nothing to wait for.
        """
        if not self._started or self._queueing is None:
            return  # local mode, or a plain transport whose publish already waited
        try:
            await self._queueing.flush()
        except PublishError:
            self._failed += 1
            raise

    async def _dispatch(self, event: BaseEvent) -> None:
        matching = sorted(
            (s for s in self._subscriptions if s.event_type in {None, event.EVENT_TYPE}),
            key=lambda s: (-s.priority, s.order),
        )
        for subscription in matching:
            try:
                outcome = subscription.handler(event)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception as exc:  # noqa: BLE001  # a subscriber's bug must not stop the others
                self._handler_errors[getattr(subscription.handler, "__qualname__", "handler")] += 1
                _log.exception(
                    "subscriber failed",
                    handler=getattr(
                        subscription.handler, "__qualname__", repr(subscription.handler)
                    ),
                    event_type=event.EVENT_TYPE.value,
                    event_id=str(event.event_id),
                    error=repr(exc),
                )
        self._dispatched += 1

    # -- subscribing ---------------------------------------------------------------------------

    def subscribe(
        self,
        event_type: EventType | None = None,
        priority: int = 0,
    ) -> Callable[[Callable[[BaseEvent], Any]], Callable[[BaseEvent], Any]]:
        """Decorator: run the function for events of ``event_type`` (all if None); higher first."""

        def register(handler: Callable[[BaseEvent], Any]) -> Callable[[BaseEvent], Any]:
            self.subscribe_handler(handler, event_type=event_type, priority=priority)
            return handler

        return register

    def subscribe_handler(
        self,
        handler: Callable[[BaseEvent], Any],
        event_type: EventType | None = None,
        priority: int = 0,
    ) -> None:
        """Register ``handler`` (sync or async) for ``event_type`` (all types if None)."""
        self._subscriptions.append(
            _Subscription(handler, event_type, priority, len(self._subscriptions))
        )

    def unsubscribe(
        self, handler: Callable[[BaseEvent], Any], event_type: EventType | None = None
    ) -> None:
        """Remove ``handler`` (for one type, or for every type it was registered for)."""
        self._subscriptions = [
            s
            for s in self._subscriptions
            if not (s.handler == handler and (event_type is None or s.event_type == event_type))
        ]

    def get_stats(self) -> dict[str, Any]:
        """Counts as the old bus reported them, plus Kafka failures and handler errors."""
        return {
            "mode": self.mode,
            "total_published": sum(self._published.values()),
            "events_by_type": dict(self._published),
            "dispatched": self._dispatched,
            "publish_failures": self._failed,
            "handler_errors": sum(self._handler_errors.values()),
            "handler_errors_by_handler": dict(self._handler_errors),
            "subscribers": len(self._subscriptions),
        }
