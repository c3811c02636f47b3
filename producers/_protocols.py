"""The extension point of the write side: a transport that publishes events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from schemas import BaseEvent

__all__ = ["PublishResult", "Transport"]


@dataclass(frozen=True, slots=True)
class PublishResult:
    """Where the broker (or the in-memory transport) stored an event."""

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
