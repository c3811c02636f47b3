"""The extension points of the write side: transports that publish events."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Iterable

    from agentflux.schemas import BaseEvent

__all__ = ["PublishResult", "QueueingTransport", "Transport"]


class PublishResult(NamedTuple):
    """Where the broker (or the in-memory transport) stored an event.

    A named tuple (immutable, and built once per published event: half the cost of a frozen
    dataclass on the publish hot path).
    """

    topic: str
    partition: int
    offset: int


@runtime_checkable
class Transport(Protocol):
    """Publishes events somewhere: Kafka (``EventPublisher``) or memory (tests)."""

    async def start(self) -> None:
        """Connect; called once before the first publish."""

    async def publish(self, event: BaseEvent) -> PublishResult:
        """Validate, encode and store ``event``; return once it is durably stored."""

    async def close(self) -> None:
        """Flush what was accepted and release connections."""


@runtime_checkable
class QueueingTransport(Transport, Protocol):
    """A transport that also queues events without waiting for each (the high-throughput path).

    ``EventPublisher`` and ``InMemoryTransport`` both are one: code that publishes
    through these methods is unit-tested on the in-memory transport unchanged
    (``tests/transports`` holds the contract both pass).
    """

    async def prepare(self, models: Iterable[type[BaseEvent]] | None = None) -> int:
        """Learn what the first event of each type (default: every type) needs; return how many.

        Called at start-up, so that no event waits for a schema registry or for metadata.
        """

    async def send(self, event: BaseEvent) -> asyncio.Future[PublishResult]:
        """Queue ``event`` (invalid events raise here); the future resolves once it is stored."""

    async def enqueue(self, event: BaseEvent) -> None:
        """Queue ``event`` with no result of its own; failures surface at ``flush``."""

    async def publish_many(self, events: Iterable[BaseEvent]) -> list[PublishResult]:
        """Queue every event, then wait until all are stored."""

    async def flush(self) -> None:
        """Wait until everything queued is stored (or raise what was not)."""
