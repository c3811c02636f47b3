"""Rendering the configuration files of the local Kafka nodes and the registry environment."""

from __future__ import annotations

import base64
import shlex
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = [
    "NodePorts",
    "kafka_jvm_options",
    "new_cluster_id",
    "registry_environment",
    "render_log4j",
    "render_server",
]

# Kafka's start script gives a broker 1 GB and G1 at a 20 ms pause goal. On a small shared
# machine G1 collected the local broker's young generation every second or two under load, and
# its pauses made most of the slowest 1 % of events (bench.sweep's GC rows). A fixed young
# generation under the parallel collector pauses far less often: a lower p99 on both sides
# (docs/performance.md). KAFKA_HEAP_OPTS and KAFKA_JVM_PERFORMANCE_OPTS bring Kafka's own back.
_KAFKA_HEAP_OPTS = "-Xms1g -Xmx1g -Xmn640m"
_KAFKA_JVM_PERFORMANCE_OPTS = "-server -XX:+UseParallelGC -Djava.awt.headless=true"


@dataclass(frozen=True, slots=True)
class NodePorts:
    """The two listeners of one combined broker+controller node."""

    node_id: int
    broker: int
    controller: int


def new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID in URL-safe base64 without padding, as Kafka writes it."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def kafka_jvm_options(environ: Mapping[str, str]) -> list[str]:
    """A node's JVM options, overridable by the variables Kafka's start script reads.

    ``KAFKA_HEAP_OPTS`` replaces the heap options, ``KAFKA_JVM_PERFORMANCE_OPTS`` the collector
    and the rest, ``KAFKA_OPTS`` is added after both: what a Kafka operator already sets.
    """
    return [
        *shlex.split(environ.get("KAFKA_HEAP_OPTS") or _KAFKA_HEAP_OPTS),
        *shlex.split(environ.get("KAFKA_JVM_PERFORMANCE_OPTS") or _KAFKA_JVM_PERFORMANCE_OPTS),
        *shlex.split(environ.get("KAFKA_OPTS", "")),
    ]


def render_server(
    node: NodePorts,
    voters: list[NodePorts],
    log_dir: Path,
    overrides: Mapping[str, object] | None = None,
) -> str:
    """``server.properties`` of one KRaft node that is both broker and controller.

    ``overrides`` replace or add properties (the secured cluster's listeners, TLS and SASL).
    """
    replication = min(3, len(voters))
    min_isr = 2 if replication >= 3 else 1  # noqa: PLR2004  # 3 replicas tolerate one loss
    quorum = ",".join(f"{v.node_id}@127.0.0.1:{v.controller}" for v in voters)
    lines: dict[str, object] = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        "controller.quorum.voters": quorum,
        "listeners": f"PLAINTEXT://127.0.0.1:{node.broker},CONTROLLER://127.0.0.1:{node.controller}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.broker}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": log_dir,
        "num.partitions": 3,
        "default.replication.factor": replication,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replication,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        # Topics are declared as code (agentflux topics apply); a typo must not create one.
        "auto.create.topics.enable": "false",
        # Tests and the demo start groups right away; the default 3 s join delay only slows them.
        "group.initial.rebalance.delay.ms": 0,
        # Kafka 4's group coordinator lingers 5 ms to batch offset commits; on a local platform
        # that is most of a commit's latency, so it writes at once.
        "group.coordinator.append.linger.ms": 0,
        # Notice a dead broker in ~3 s instead of 9 s, so leadership moves fast in failure tests.
        "broker.session.timeout.ms": 3000,
        "broker.heartbeat.interval.ms": 500,
        # A restarted node takes its partitions back, as the failure tests expect.
        "auto.leader.rebalance.enable": "true",
        "leader.imbalance.check.interval.seconds": 5,
    }
    lines |= overrides or {}
    return "".join(f"{key}={value}\n" for key, value in lines.items())


def render_log4j(log_file: Path) -> str:
    """A log4j2 configuration that writes the broker's log to one file instead of the console."""
    return (
        "status = error\n"
        "appender.file.type = File\n"
        "appender.file.name = FILE\n"
        f"appender.file.fileName = {log_file}\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.file.ref = FILE\n"
        "logger.kafka.name = kafka\nlogger.kafka.level = INFO\n"
        "logger.controller.name = state.change.logger\nlogger.controller.level = WARN\n"
    )


def registry_environment(
    bootstrap_servers: str, http_port: int, management_port: int
) -> dict[str, str]:
    """Environment of Apicurio Registry 3.x with its storage in Kafka (kafkasql)."""
    return {
        "APICURIO_STORAGE_KIND": "kafkasql",
        "APICURIO_KAFKASQL_BOOTSTRAP_SERVERS": bootstrap_servers,
        # Its start polls the journal and snapshot topics until a poll comes back empty; each
        # empty poll waits this long (5 s by default: most of the registry's start).
        "APICURIO_KAFKASQL_CONSUMER_POLL_TIMEOUT": "500",
        "QUARKUS_HTTP_HOST": "127.0.0.1",
        "QUARKUS_HTTP_PORT": str(http_port),
        # Quarkus opens a management interface on 0.0.0.0:9000 by default; keep it private.
        "QUARKUS_MANAGEMENT_HOST": "127.0.0.1",
        "QUARKUS_MANAGEMENT_PORT": str(management_port),
        "QUARKUS_LOG_CONSOLE_JSON": "false",
    }
