"""The event contract of agentflux: event types, Avro schemas, models, codec and registry.

This package depends on nothing else in the project; ``producers`` and ``consumers`` build on it.
"""

from schemas._kafka import connection_kwargs
from schemas._settings import AgentfluxSettings, PublishMode
from schemas._types import EventCategory, EventType

__all__ = [
    "AgentfluxSettings",
    "EventCategory",
    "EventType",
    "PublishMode",
    "connection_kwargs",
]
