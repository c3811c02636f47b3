"""Typed errors of the write side."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentflux.kafka import AuthorizationError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "BrokerUnavailableError",
    "InvalidEventError",
    "PublishDeniedError",
    "PublishError",
    "PublishTimeoutError",
    "SchemaNotRegisteredError",
    "SchemaRegistrationError",
    "UnacknowledgedRecordsError",
]

_REGISTER_COMMAND = "agentflux schemas register"


class PublishError(Exception):
    """An event could not be published."""


class InvalidEventError(PublishError, ValueError):
    """The event is invalid; nothing was sent."""


class SchemaRegistrationError(PublishError):
    """The event's schema could not be registered or found; nothing was sent."""


class SchemaNotRegisteredError(SchemaRegistrationError):
    """The registry does not have this process's schema of an event type; nothing was sent.

    Publishers look schemas up and never register them (unless told to, on a development
    cluster): ``agentflux schemas register`` does, after the compatibility gate. ``versions``
    maps each subject to the versions the registry has of it: none, or only other schemas
    than this process's (its ``.avsc`` changed and the change was not registered).
    """

    def __init__(self, versions: Mapping[str, Sequence[int]]) -> None:
        """Name every subject, say what the registry has of it and what to run."""
        self.versions = {subject: tuple(found) for subject, found in versions.items()}
        self.subjects = tuple(sorted(self.versions))
        missing = [s for s in self.subjects if not self.versions[s]]
        differing = [s for s in self.subjects if self.versions[s]]
        parts = []
        if missing:
            parts.append(f"no schema is registered under {', '.join(missing)}")
        for subject in differing:
            found = ", ".join(f"v{v}" for v in self.versions[subject])
            parts.append(
                f"{subject} has other versions ({found}) but not this process's schema: its "
                "shipped .avsc changed since it was registered; run the gate (`agentflux "
                "schemas check`) and release the change"
            )
        super().__init__(
            "; ".join(parts) + f". Publishers only look schemas up: register them with "
            f"`{_REGISTER_COMMAND}` (CI runs it after the gate; a development cluster may opt "
            "in with AGENTFLUX_AUTO_REGISTER_SCHEMAS=true). Nothing was sent"
        )


class PublishDeniedError(PublishError, AuthorizationError):
    """An ACL denies this principal writing to the event's topic; nothing was written."""


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
