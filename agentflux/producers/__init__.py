"""The write side of agentflux: the event publisher and the old bus's API on Kafka.

Runtime code written for the old in-process bus moves over by changing imports::

    from agentflux.producers import AgentSwitchedEvent, EventType, event_bus
"""

from agentflux.producers._bus import EventBus, Handler
from agentflux.producers._errors import (
    BrokerUnavailableError,
    InvalidEventError,
    PublishDeniedError,
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
from agentflux.schemas import BaseEvent, EventCategory, EventType, _events
from agentflux.schemas._events import *  # noqa: F403  # the generated models, listed in _events.__all__

#: The process-wide bus, configured from ``AGENTFLUX_*`` settings and connected on first publish.
event_bus = EventBus()

__all__ = [
    "PUBLISHER_BATCH_SIZE",
    "BaseEvent",
    "BrokerUnavailableError",
    "EventBus",
    "EventCategory",
    "EventPublisher",
    "EventType",
    "Handler",
    "InMemoryTransport",
    "InvalidEventError",
    "PublishDeniedError",
    "PublishError",
    "PublishResult",
    "PublishTimeoutError",
    "PublishedRecord",
    "QueueingTransport",
    "RateLimiter",
    "SchemaNotRegisteredError",
    "SchemaRegistrationError",
    "Simulator",
    "Transport",
    "UnacknowledgedRecordsError",
    "event_bus",
]
__all__ += _events.__all__
