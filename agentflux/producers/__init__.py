"""The write side of agentflux: the event publisher and the old bus's API on Kafka.

Runtime code written for the old in-process bus moves over by changing imports::

    from agentflux.producers import AgentSwitchedEvent, EventType, event_bus
"""

from agentflux.producers._bus import EventBus, Handler
from agentflux.producers._errors import (
    BrokerUnavailableError,
    InvalidEventError,
    PublishError,
    PublishTimeoutError,
    SchemaNotRegisteredError,
    SchemaRegistrationError,
    UnacknowledgedRecordsError,
)
from agentflux.producers._memory import InMemoryTransport, PublishedRecord
from agentflux.producers._protocols import PublishResult, QueueingTransport, Transport
from agentflux.producers._publisher import PUBLISHER_BATCH_SIZE, EventPublisher
from agentflux.producers._simulator import RateLimiter, Simulator
from agentflux.schemas import (
    AgentErrorOccurredEvent,
    AgentProcessingCompletedEvent,
    AgentProcessingStartedEvent,
    AgentSwitchedEvent,
    BaseEvent,
    EventCategory,
    EventType,
    HitlApprovalRequestedEvent,
    HitlDecisionMadeEvent,
    HitlTimeoutOccurredEvent,
    MetricsCollectedEvent,
    MetricsPerformanceMeasuredEvent,
    SessionCreatedEvent,
    SessionDeletedEvent,
    SessionMessageAddedEvent,
    SessionUpdatedEvent,
    SystemBackgroundTaskCompletedEvent,
    SystemBackgroundTaskStartedEvent,
    SystemShutdownEvent,
    SystemStartupEvent,
    ToolApprovalRequiredEvent,
    ToolExecutionCompletedEvent,
    ToolExecutionFailedEvent,
    ToolExecutionRequestedEvent,
    ToolExecutionStartedEvent,
)

#: The process-wide bus, configured from ``AGENTFLUX_*`` settings and connected on first publish.
event_bus = EventBus()

__all__ = [
    "PUBLISHER_BATCH_SIZE",
    "AgentErrorOccurredEvent",
    "AgentProcessingCompletedEvent",
    "AgentProcessingStartedEvent",
    "AgentSwitchedEvent",
    "BaseEvent",
    "BrokerUnavailableError",
    "EventBus",
    "EventCategory",
    "EventPublisher",
    "EventType",
    "Handler",
    "HitlApprovalRequestedEvent",
    "HitlDecisionMadeEvent",
    "HitlTimeoutOccurredEvent",
    "InMemoryTransport",
    "InvalidEventError",
    "MetricsCollectedEvent",
    "MetricsPerformanceMeasuredEvent",
    "PublishError",
    "PublishResult",
    "PublishTimeoutError",
    "PublishedRecord",
    "QueueingTransport",
    "RateLimiter",
    "SchemaNotRegisteredError",
    "SchemaRegistrationError",
    "SessionCreatedEvent",
    "SessionDeletedEvent",
    "SessionMessageAddedEvent",
    "SessionUpdatedEvent",
    "Simulator",
    "SystemBackgroundTaskCompletedEvent",
    "SystemBackgroundTaskStartedEvent",
    "SystemShutdownEvent",
    "SystemStartupEvent",
    "ToolApprovalRequiredEvent",
    "ToolExecutionCompletedEvent",
    "ToolExecutionFailedEvent",
    "ToolExecutionRequestedEvent",
    "ToolExecutionStartedEvent",
    "Transport",
    "UnacknowledgedRecordsError",
    "event_bus",
]
