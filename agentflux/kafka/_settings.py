"""The one settings model of the platform, read from ``AGENTFLUX_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["AgentfluxSettings", "EventLoop", "PublishMode"]

PublishMode = Literal["kafka", "local", "both"]
EventLoop = Literal["auto", "asyncio", "uvloop"]


class AgentfluxSettings(BaseSettings):
    """Where the cluster and registry are, how to reach them, and how the platform behaves.

    Every field can be set from the environment with the ``AGENTFLUX_`` prefix, e.g.
    ``AGENTFLUX_BOOTSTRAP_SERVERS=broker-1:9092,broker-2:9092``.
    """

    model_config = SettingsConfigDict(env_prefix="AGENTFLUX_", env_file=".env", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    registry_url: str = "http://127.0.0.1:8081/apis/ccompat/v7"
    client_id: str = "agentflux"

    # Security: PLAINTEXT for the local cluster, SASL_SSL or SSL in production.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    registry_username: str | None = None
    registry_password: SecretStr | None = None
    registry_timeout_s: float = Field(default=5.0, gt=0)
    registry_retries: int = Field(default=3, ge=0)
    # Publishers only look schemas up: `agentflux schemas register` (CI, after the gate) puts
    # them in the registry. True lets a publisher register its own, for development clusters.
    auto_register_schemas: bool = False

    # Prepended to every category topic, e.g. "staging." -> "staging.agent.events".
    topic_prefix: str = ""

    # Migration switches of the old bus: publish to Kafka, dispatch in-process, or both.
    publish_mode: PublishMode = "both"

    # How consumer groups read: read_committed (the default) never sees the records of an
    # aborted transaction (the HITL timeout job publishes in transactions); read_uncommitted does.
    isolation_level: Literal["read_committed", "read_uncommitted"] = "read_committed"

    # The event loop of the platform's own processes (run_event_loop): uvloop when installed.
    event_loop: EventLoop = "auto"

    # Where the local launcher keeps its state, and the store URL of the shipped groups.
    state_dir: Path = Path(".agentflux")
    store_url: str = "sqlite:///.agentflux/views.db"

    # How long the audit group holds an event whose predecessor (by sequence) has not arrived
    # before it records the missing number as a gap.
    audit_grace_s: float = Field(default=30.0, gt=0)
