"""Pydantic models of the 22 events, mirroring the ``.avsc`` files field for field.

The ``.avsc`` files are the contract; ``tests/unit/test_schemas_models.py`` fails when a model and
its schema disagree (names, types, nullability, defaults, logical types).

Limits, enforced at construction (a violation raises ``pydantic.ValidationError``):

* identifiers (session, call, approval, message, task, correlation ids): 1-128 characters;
* names (agents, tools, models, services, metrics): 1-256 characters;
* free text (reasons, comments, summaries, error messages): at most 8,192 characters;
* message content and tool arguments: at most 65,536 characters;
* timestamps must carry a time zone; they are kept to the millisecond, as Avro stores them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from agentflux.schemas._types import EventType

__all__ = [
    "EVENT_MODELS",
    "AgentErrorOccurredEvent",
    "AgentProcessingCompletedEvent",
    "AgentProcessingStartedEvent",
    "AgentSwitchedEvent",
    "BaseEvent",
    "HitlApprovalRequestedEvent",
    "HitlDecision",
    "HitlDecisionMadeEvent",
    "HitlTimeoutOccurredEvent",
    "MessageRole",
    "MetricsCollectedEvent",
    "MetricsPerformanceMeasuredEvent",
    "SessionCreatedEvent",
    "SessionDeletedEvent",
    "SessionMessageAddedEvent",
    "SessionUpdatedEvent",
    "SystemBackgroundTaskCompletedEvent",
    "SystemBackgroundTaskStartedEvent",
    "SystemShutdownEvent",
    "SystemStartupEvent",
    "ToolApprovalRequiredEvent",
    "ToolExecutionCompletedEvent",
    "ToolExecutionFailedEvent",
    "ToolExecutionRequestedEvent",
    "ToolExecutionStartedEvent",
    "event_model",
]

MAX_ID = 128
MAX_NAME = 256
MAX_TEXT = 8_192
MAX_CONTENT = 65_536

Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Content = Annotated[str, StringConstraints(max_length=MAX_CONTENT)]
Millis = Annotated[int, Field(ge=0)]
Count = Annotated[int, Field(ge=0)]
Tags = dict[str, str]


class MessageRole(StrEnum):
    """Who wrote a message of a session."""

    USER = "USER"
    ASSISTANT = "ASSISTANT"
    SYSTEM = "SYSTEM"
    TOOL = "TOOL"


class HitlDecision(StrEnum):
    """A human's answer to an approval request."""

    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


def _to_millis(value: datetime) -> datetime:
    # Avro's timestamp-millis keeps milliseconds; truncate now so a round trip is exact.
    if value.tzinfo is UTC and not value.microsecond % 1000:
        return value  # already normalized: every decoded timestamp, checked cheaply
    return value.astimezone(UTC).replace(microsecond=value.microsecond // 1000 * 1000)


def _now() -> datetime:
    return _to_millis(datetime.now(UTC))


class BaseEvent(BaseModel):
    """The envelope every event shares: identity, time, session, causality, origin, version."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    EVENT_TYPE: ClassVar[EventType]
    RECORD_NAME: ClassVar[str]
    TOPIC: ClassVar[str]

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_type: EventType
    occurred_at: AwareDatetime = Field(default_factory=_now)
    session_id: Id
    correlation_id: Id | None = None
    causation_id: Id | None = None
    source: Name = "agent-runtime"
    schema_version: int = Field(default=1, ge=1)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Derive the class constants from the subclass's fixed ``event_type`` default."""
        super().__init_subclass__(**kwargs)
        event_type = vars(cls).get("event_type")
        if not isinstance(event_type, EventType):
            return  # an abstract intermediate class without its own event type
        cls.EVENT_TYPE = event_type
        cls.TOPIC = event_type.category.topic
        words = cls.__name__.removesuffix("Event")
        cls.RECORD_NAME = f"agentflux.events.{event_type.category.value}.{words}"

    @field_validator("occurred_at")
    @classmethod
    def _occurred_at_in_millis(cls, value: datetime) -> datetime:
        return _to_millis(value)

    @property
    def topic(self) -> str:
        """The category topic this event is published to."""
        return self.TOPIC

    @property
    def category(self) -> str:
        """The event's category, as the old bus named it."""
        return self.EVENT_TYPE.category.value


# --- agent ----------------------------------------------------------------------------------


class AgentSwitchedEvent(BaseEvent):
    """The orchestrator handed the session over from one agent to another."""

    event_type: Literal[EventType.AGENT_SWITCHED] = EventType.AGENT_SWITCHED
    from_agent: Name
    to_agent: Name
    reason: Text = ""


class AgentProcessingStartedEvent(BaseEvent):
    """An agent started an LLM call for the session."""

    event_type: Literal[EventType.AGENT_PROCESSING_STARTED] = EventType.AGENT_PROCESSING_STARTED
    agent: Name
    model: Name | None = None
    request_id: Id | None = None


class AgentProcessingCompletedEvent(BaseEvent):
    """An agent's LLM call finished, with its duration and token counts."""

    event_type: Literal[EventType.AGENT_PROCESSING_COMPLETED] = EventType.AGENT_PROCESSING_COMPLETED
    agent: Name
    model: Name | None = None
    request_id: Id | None = None
    duration_ms: Millis
    input_tokens: Count = 0
    output_tokens: Count = 0
    finish_reason: Name | None = None


class AgentErrorOccurredEvent(BaseEvent):
    """An agent failed while working on the session."""

    event_type: Literal[EventType.AGENT_ERROR_OCCURRED] = EventType.AGENT_ERROR_OCCURRED
    agent: Name
    error_type: Name
    error_message: Text
    recoverable: bool = False


# --- session --------------------------------------------------------------------------------


class SessionCreatedEvent(BaseEvent):
    """A user opened a session."""

    event_type: Literal[EventType.SESSION_CREATED] = EventType.SESSION_CREATED
    user_id: Id | None = None
    initial_agent: Name
    title: Text | None = None
    metadata: Tags = Field(default_factory=dict)


class SessionUpdatedEvent(BaseEvent):
    """Session attributes changed (title, settings, ...)."""

    event_type: Literal[EventType.SESSION_UPDATED] = EventType.SESSION_UPDATED
    changes: Tags = Field(default_factory=dict)


class SessionDeletedEvent(BaseEvent):
    """The session was closed and deleted."""

    event_type: Literal[EventType.SESSION_DELETED] = EventType.SESSION_DELETED
    reason: Text | None = None


class SessionMessageAddedEvent(BaseEvent):
    """A message was added to the session's conversation."""

    event_type: Literal[EventType.SESSION_MESSAGE_ADDED] = EventType.SESSION_MESSAGE_ADDED
    message_id: Id
    role: MessageRole = Field(strict=False)
    content: Content
    agent: Name | None = None


# --- tool -----------------------------------------------------------------------------------


class ToolExecutionRequestedEvent(BaseEvent):
    """An agent asked to run a tool."""

    event_type: Literal[EventType.TOOL_EXECUTION_REQUESTED] = EventType.TOOL_EXECUTION_REQUESTED
    call_id: Id
    tool_name: Name
    agent: Name
    # Required, and JSON text: Apicurio 3.3 cannot classify a schema whose string default is "{}".
    arguments: Content
    requires_approval: bool = False


class ToolExecutionStartedEvent(BaseEvent):
    """A tool call started running."""

    event_type: Literal[EventType.TOOL_EXECUTION_STARTED] = EventType.TOOL_EXECUTION_STARTED
    call_id: Id
    tool_name: Name


class ToolExecutionCompletedEvent(BaseEvent):
    """A tool call finished successfully."""

    event_type: Literal[EventType.TOOL_EXECUTION_COMPLETED] = EventType.TOOL_EXECUTION_COMPLETED
    call_id: Id
    tool_name: Name
    duration_ms: Millis
    result_summary: Text = ""


class ToolExecutionFailedEvent(BaseEvent):
    """A tool call failed."""

    event_type: Literal[EventType.TOOL_EXECUTION_FAILED] = EventType.TOOL_EXECUTION_FAILED
    call_id: Id
    tool_name: Name
    duration_ms: Millis
    error_type: Name
    error_message: Text


class ToolApprovalRequiredEvent(BaseEvent):
    """A tool call waits for a human's approval before it may run."""

    event_type: Literal[EventType.TOOL_APPROVAL_REQUIRED] = EventType.TOOL_APPROVAL_REQUIRED
    call_id: Id
    tool_name: Name
    approval_id: Id
    reason: Text = ""


# --- hitl -----------------------------------------------------------------------------------


class HitlApprovalRequestedEvent(BaseEvent):
    """A human was asked to approve something."""

    event_type: Literal[EventType.HITL_APPROVAL_REQUESTED] = EventType.HITL_APPROVAL_REQUESTED
    approval_id: Id
    call_id: Id | None = None
    subject: Text
    timeout_s: Count = 300


class HitlDecisionMadeEvent(BaseEvent):
    """A human approved or rejected a request."""

    event_type: Literal[EventType.HITL_DECISION_MADE] = EventType.HITL_DECISION_MADE
    approval_id: Id
    approver: Name
    decision: HitlDecision = Field(strict=False)
    comment: Text | None = None


class HitlTimeoutOccurredEvent(BaseEvent):
    """Nobody answered an approval request in time."""

    event_type: Literal[EventType.HITL_TIMEOUT_OCCURRED] = EventType.HITL_TIMEOUT_OCCURRED
    approval_id: Id
    waited_s: Count


# --- system ---------------------------------------------------------------------------------


class SystemStartupEvent(BaseEvent):
    """A runtime instance started."""

    event_type: Literal[EventType.SYSTEM_STARTUP] = EventType.SYSTEM_STARTUP
    service: Name
    version: Name
    instance: Id


class SystemShutdownEvent(BaseEvent):
    """A runtime instance is stopping."""

    event_type: Literal[EventType.SYSTEM_SHUTDOWN] = EventType.SYSTEM_SHUTDOWN
    service: Name
    instance: Id
    reason: Text | None = None


class SystemBackgroundTaskStartedEvent(BaseEvent):
    """A background task started."""

    event_type: Literal[EventType.SYSTEM_BACKGROUND_TASK_STARTED] = (
        EventType.SYSTEM_BACKGROUND_TASK_STARTED
    )
    task_id: Id
    task_name: Name


class SystemBackgroundTaskCompletedEvent(BaseEvent):
    """A background task ended, successfully or not."""

    event_type: Literal[EventType.SYSTEM_BACKGROUND_TASK_COMPLETED] = (
        EventType.SYSTEM_BACKGROUND_TASK_COMPLETED
    )
    task_id: Id
    task_name: Name
    duration_ms: Millis
    success: bool = True
    error_message: Text | None = None


# --- metrics --------------------------------------------------------------------------------


class MetricsCollectedEvent(BaseEvent):
    """A metric sample reported by the runtime."""

    event_type: Literal[EventType.METRICS_COLLECTED] = EventType.METRICS_COLLECTED
    name: Name
    value: float
    unit: Name | None = None
    tags: Tags = Field(default_factory=dict)


class MetricsPerformanceMeasuredEvent(BaseEvent):
    """How long an operation of the runtime took."""

    event_type: Literal[EventType.METRICS_PERFORMANCE_MEASURED] = (
        EventType.METRICS_PERFORMANCE_MEASURED
    )
    operation: Name
    duration_ms: float = Field(ge=0)
    tags: Tags = Field(default_factory=dict)


EVENT_MODELS: dict[EventType, type[BaseEvent]] = {
    model.EVENT_TYPE: model
    for model in (
        AgentSwitchedEvent,
        AgentProcessingStartedEvent,
        AgentProcessingCompletedEvent,
        AgentErrorOccurredEvent,
        SessionCreatedEvent,
        SessionUpdatedEvent,
        SessionDeletedEvent,
        SessionMessageAddedEvent,
        ToolExecutionRequestedEvent,
        ToolExecutionStartedEvent,
        ToolExecutionCompletedEvent,
        ToolExecutionFailedEvent,
        ToolApprovalRequiredEvent,
        HitlApprovalRequestedEvent,
        HitlDecisionMadeEvent,
        HitlTimeoutOccurredEvent,
        SystemStartupEvent,
        SystemShutdownEvent,
        SystemBackgroundTaskStartedEvent,
        SystemBackgroundTaskCompletedEvent,
        MetricsCollectedEvent,
        MetricsPerformanceMeasuredEvent,
    )
}


def event_model(event_type: EventType | str) -> type[BaseEvent]:
    """The model class of an event type (by enum member or by its string value)."""
    return EVENT_MODELS[EventType(event_type)]
