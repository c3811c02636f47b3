"""Names the contract uses everywhere: compatibility levels, and the generated catalogue."""

from __future__ import annotations

from typing import Literal, get_args

from agentflux.schemas._catalogue import EventCategory, EventType

__all__ = ["COMPATIBILITY_LEVELS", "Compatibility", "EventCategory", "EventType"]

#: Schema compatibility levels, as the Confluent registry API names them.
Compatibility = Literal[
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
]
COMPATIBILITY_LEVELS: tuple[str, ...] = get_args(Compatibility)
