"""Typed errors of the write side."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "BrokerUnavailableError",
    "InvalidEventError",
    "PublishError",
    "PublishTimeoutError",
    "SchemaRegistrationError",
    "UnacknowledgedRecordsError",
]


class PublishError(Exception):
    """An event could not be published."""


class InvalidEventError(PublishError, ValueError):
    """The event is invalid; nothing was sent."""


class SchemaRegistrationError(PublishError):
    """The event's schema could not be registered or found; nothing was sent."""


class BrokerUnavailableError(PublishError):
    """The cluster could not be reached or refused the write after bounded retries."""


class PublishTimeoutError(BrokerUnavailableError):
    """The broker did not acknowledge within the publish deadline; the outcome is unknown."""


class UnacknowledgedRecordsError(BrokerUnavailableError):
    """Records queued with ``enqueue()`` that the broker did not take (raised by flush/close).

    ``failures`` maps each (topic, partition) to how many of its records failed and the last
    error for it; ``count`` is their sum. Records without a future of their own fail here, all
    together, so this says where and why.
    """

    def __init__(self, failures: Mapping[tuple[str, int], tuple[int, BaseException]]) -> None:
        """Summarise ``failures`` (topic, partition -> count, last error) in the message."""
        self.failures = dict(failures)
        self.count = sum(count for count, _ in self.failures.values())
        where = "; ".join(
            f"{topic}[{partition}]: {count} ({error!r})"
            for (topic, partition), (count, error) in sorted(self.failures.items())
        )
        super().__init__(
            f"{self.count} records queued with enqueue() were not acknowledged: {where}"
        )
