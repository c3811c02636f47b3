"""How the platform's processes reach Kafka: settings, clients, event loop, accelerations.

``agentflux.producers`` and ``agentflux.consumers`` build their aiokafka clients here, so that
there is one settings model and one place that turns it into client arguments. The adapters over
aiokafka's private API, which make publishing and consuming cheaper, are all behind one gate
(``agentflux.kafka._gate``), checked against the aiokafka versions they were tested with;
``agentflux doctor`` reports which are active and why the others are not.
"""

from agentflux.kafka._access import (
    AuthenticationError,
    AuthorizationError,
    KafkaAccessError,
    TlsVerificationError,
    access_refused,
    authorization_error,
    principal_of,
    refusals_explained,
)
from agentflux.kafka._clients import connection_kwargs, stop_consumer, topic_partitions
from agentflux.kafka._loop import EventLoopUnavailableError, run_event_loop
from agentflux.kafka._settings import AgentfluxSettings, EventLoop, PublishMode

__all__ = [
    "AgentfluxSettings",
    "AuthenticationError",
    "AuthorizationError",
    "EventLoop",
    "EventLoopUnavailableError",
    "KafkaAccessError",
    "PublishMode",
    "TlsVerificationError",
    "access_refused",
    "authorization_error",
    "connection_kwargs",
    "principal_of",
    "refusals_explained",
    "run_event_loop",
    "stop_consumer",
    "topic_partitions",
]
