"""The extension point of the write side: a transport that publishes events."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from schemas import BaseEvent

__all__ = ["PublishResult", "Transport"]


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
    """Publishes events somewhere: Kafka (:class:`EventPublisher`) or memory (tests)."""

    async def start(self) -> None:
        """Connect; called once before the first publish."""

    async def publish(self, event: BaseEvent) -> PublishResult:
        """Validate, encode and store ``event``; return once it is durably stored."""

    async def close(self) -> None:
        """Flush what was accepted and release connections."""
