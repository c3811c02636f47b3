"""Typed errors of the write side."""

from __future__ import annotations

__all__ = [
    "BrokerUnavailableError",
    "InvalidEventError",
    "PublishError",
    "PublishTimeoutError",
    "SchemaRegistrationError",
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
