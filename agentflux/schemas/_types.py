"""The 20 event types and 6 categories of the old in-process bus, kept as they were."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

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


class EventCategory(StrEnum):
    """A category of events; each has one Kafka topic, ``<category>.events``."""

    AGENT = "agent"
    SESSION = "session"
    TOOL = "tool"
    HITL = "hitl"
    SYSTEM = "system"
    METRICS = "metrics"

    @property
    def topic(self) -> str:
        """The Kafka topic that carries this category's events."""
        return f"{self.value}.events"


class EventType(StrEnum):
    """One of the 20 event types; the value is the old bus's ``event_type`` string."""

    AGENT_SWITCHED = "agent_switched"
    AGENT_PROCESSING_STARTED = "agent_processing_started"
    AGENT_PROCESSING_COMPLETED = "agent_processing_completed"
    AGENT_ERROR_OCCURRED = "agent_error_occurred"

    SESSION_CREATED = "session_created"
    SESSION_UPDATED = "session_updated"
    SESSION_DELETED = "session_deleted"
    SESSION_MESSAGE_ADDED = "session_message_added"

    TOOL_EXECUTION_REQUESTED = "tool_execution_requested"
    TOOL_EXECUTION_STARTED = "tool_execution_started"
    TOOL_EXECUTION_COMPLETED = "tool_execution_completed"
    TOOL_EXECUTION_FAILED = "tool_execution_failed"
    TOOL_APPROVAL_REQUIRED = "tool_approval_required"

    HITL_APPROVAL_REQUESTED = "hitl_approval_requested"
    HITL_DECISION_MADE = "hitl_decision_made"
    HITL_TIMEOUT_OCCURRED = "hitl_timeout_occurred"

    SYSTEM_STARTUP = "system_startup"
    SYSTEM_SHUTDOWN = "system_shutdown"
    SYSTEM_BACKGROUND_TASK_STARTED = "system_background_task_started"
    SYSTEM_BACKGROUND_TASK_COMPLETED = "system_background_task_completed"

    METRICS_COLLECTED = "metrics_collected"
    METRICS_PERFORMANCE_MEASURED = "metrics_performance_measured"

    @property
    def category(self) -> EventCategory:
        """The category this type belongs to, read from the value's prefix."""
        return _CATEGORY_OF[self]


# Computed once: category and topic are looked up for every published event.
_CATEGORY_OF = {t: EventCategory(t.value.split("_", 1)[0]) for t in EventType}
