"""The local platform: a 1- or 3-node KRaft cluster and Apicurio Registry, as processes.

Everything lives in one state directory (``cluster.json``, node data, logs), so ``up`` after
``down`` keeps the data and ``down`` stops exactly what this directory's ``up`` started.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from agentflux._local._artifacts import Artifacts, fetch_artifacts
from agentflux._local._config import (
    NodePorts,
    kafka_jvm_options,
    new_cluster_id,
    registry_environment,
    render_log4j,
    render_server,
)
from agentflux._local._gclog import GC_LOG_NAME, gc_log_options
from agentflux._local._java import find_java
from agentflux._local._ports import free_ports, port_is_open
from agentflux._local._process import is_running, spawn, stop
from agentflux._local._secure import LocalSecurity
from agentflux._local._tls import write_private
from agentflux.kafka import AgentfluxSettings, connection_kwargs

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from pathlib import Path

__all__ = ["ClusterError", "ClusterState", "LocalCluster", "NodeState"]

_KAFKA_JAVA = 17
_REGISTRY_JAVA = 21
_STATE_FILE = "cluster.json"
_CCOMPAT = "/apis/ccompat/v7"


class ClusterError(RuntimeError):
    """The local cluster could not be started, reached or stopped."""


@dataclass
class NodeState:
    """One KRaft node: its ports and, while it runs, its pid."""

    node_id: int
    broker_port: int
    controller_port: int
    pid: int | None = None

    @property
    def ports(self) -> NodePorts:
        """The listener ports as the config renderer wants them."""
        return NodePorts(self.node_id, self.broker_port, self.controller_port)


@dataclass
class ClusterState:
    """What ``cluster.json`` records."""

    cluster_id: str
    nodes: list[NodeState]
    registry_port: int
    registry_management_port: int
    registry_pid: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # SASL_SSL listeners, SCRAM, TLS and ACLs (`agentflux up --secure`); fixed at creation.
    secure: bool = False

    @property
    def bootstrap_servers(self) -> str:
        """The broker listeners, comma-separated."""
        return ",".join(f"127.0.0.1:{node.broker_port}" for node in self.nodes)

    @property
    def registry_url(self) -> str:
        """The registry's Confluent-compatible API."""
        return f"http://127.0.0.1:{self.registry_port}{_CCOMPAT}"


class LocalCluster:
    """Start, inspect and stop the local platform kept in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        """Manage the platform whose state is (or will be) in ``state_dir``."""
        self.state_dir = state_dir.resolve()
        self._artifacts: Artifacts | None = None

    # -- state ---------------------------------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self.state_dir / _STATE_FILE

    def load(self) -> ClusterState | None:
        """The recorded state, or None if this directory never held a cluster."""
        if not self._state_path.exists():
            return None
        raw = json.loads(self._state_path.read_text())
        raw["nodes"] = [NodeState(**node) for node in raw["nodes"]]
        return ClusterState(**raw)

    def _save(self, state: ClusterState) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._state_path.write_text(json.dumps(asdict(state), indent=2))

    def _marker(self) -> str:
        # Every process we start names the state dir on its command line; pids are checked by it.
        return str(self.state_dir)

    def _node_dir(self, node_id: int) -> Path:
        return self.state_dir / f"node-{node_id}"

    @property
    def security(self) -> LocalSecurity:
        """The CA, certificates and admin password of a secured cluster (``up --secure``)."""
        return LocalSecurity(self.state_dir / "security")

    def settings(self, state: ClusterState | None = None) -> AgentfluxSettings:
        """Settings that reach this cluster: as the platform admin when it is secured."""
        state = state or self._require_state()
        if state.secure:
            return self.security.admin_settings(state.bootstrap_servers, state.registry_url)
        return AgentfluxSettings(
            bootstrap_servers=state.bootstrap_servers, registry_url=state.registry_url
        )

    def gc_log(self, node_id: int) -> Path:
        """Node ``node_id``'s garbage-collection log (see ``read_gc_pauses``)."""
        return self._node_dir(node_id) / GC_LOG_NAME

    # -- lifecycle -----------------------------------------------------------------------------

    def _artifacts_resolved(self) -> Artifacts:
        if self._artifacts is None:
            self._artifacts = fetch_artifacts()
        return self._artifacts

    def _initial_state(self, nodes: int, *, secure: bool) -> ClusterState:
        ports = free_ports(2 * nodes + 2)
        node_states = [
            NodeState(node_id=i + 1, broker_port=ports[2 * i], controller_port=ports[2 * i + 1])
            for i in range(nodes)
        ]
        return ClusterState(
            cluster_id=new_cluster_id(),
            nodes=node_states,
            registry_port=ports[-2],
            registry_management_port=ports[-1],
            secure=secure,
        )

    def up(self, nodes: int = 1, *, secure: bool = False, timeout_s: float = 180.0) -> ClusterState:
        """Start whatever is not running yet and wait until broker and registry answer.

        ``secure`` makes a new cluster a secured one (see ``agentflux._local._secure``); an
        existing cluster keeps what it was created as.

        A brand-new cluster whose start fails is retried once on fresh ports: a port picked
        free can be taken by another process before the JVM binds it.
        """
        fresh = self.load() is None
        try:
            return self._up(nodes, timeout_s, secure=secure)
        except ClusterError as first:
            if not fresh:
                raise
            self.down()
            failed = self.state_dir.with_name(f"{self.state_dir.name}.failed-start")
            shutil.rmtree(failed, ignore_errors=True)
            self.state_dir.rename(failed)  # kept for diagnosis, out of the way of the retry
            (failed / "error.txt").write_text(f"{first}\n")  # why, next to the logs
            try:
                return self._up(nodes, timeout_s, secure=secure)
            except ClusterError as second:
                raise second from first

    def _up(self, nodes: int, timeout_s: float, *, secure: bool) -> ClusterState:
        state = self.load()
        if state is None:
            state = self._initial_state(nodes, secure=secure)
        elif state.secure != secure:
            kind = "a secured" if state.secure else "an unsecured"
            raise ClusterError(
                f"{self.state_dir} holds {kind} cluster; run `agentflux down` and use another "
                f"--state-dir for {'a secured' if secure else 'an unsecured'} one",
            )
        elif len(state.nodes) != nodes:
            raise ClusterError(
                f"{self.state_dir} holds a {len(state.nodes)}-node cluster; run `agentflux down` "
                f"and use another --state-dir for a {nodes}-node one",
            )
        self._save(state)
        if state.secure:
            self.security.prepare()
        for node in state.nodes:
            self._start_node(state, node)
        self._save(state)
        self._wait_for_brokers(state, len(state.nodes), timeout_s)
        self._start_registry(state)
        self._save(state)
        self._wait_for_registry(state, timeout_s)
        return state

    def _start_node(self, state: ClusterState, node: NodeState) -> None:
        if is_running(node.pid, self._marker()):
            return
        artifacts = self._artifacts_resolved()
        java = str(find_java(_KAFKA_JAVA))
        node_dir = self._node_dir(node.node_id)
        data_dir = node_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        config = node_dir / "server.properties"
        overrides = self.security.server_properties(node.ports) if state.secure else None
        # The node's file names the admin password when secured: its owner's eyes only.
        write_private(
            config,
            render_server(node.ports, [n.ports for n in state.nodes], data_dir, overrides).encode(),
        )
        log4j = node_dir / "log4j2.properties"
        log4j.write_text(render_log4j(node_dir / "server.log"))
        base = [java, "-cp", artifacts.kafka_classpath, f"-Dlog4j2.configurationFile={log4j}"]
        if not (data_dir / "meta.properties").exists():
            formatted = subprocess.run(  # noqa: S603  # java with arguments we built
                [
                    *base,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    state.cluster_id,
                    "-c",
                    str(config),
                    *(self.security.format_arguments() if state.secure else []),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if formatted.returncode != 0:
                raise ClusterError(
                    f"formatting node {node.node_id} failed: {formatted.stdout}{formatted.stderr}"
                )
        node.pid = spawn(
            [
                *base[:1],
                *kafka_jvm_options(os.environ),
                *gc_log_options(self.gc_log(node.node_id)),
                f"-Dagentflux.state={self._marker()}",
                *base[1:],
                "kafka.Kafka",
                str(config),
            ],
            log_file=node_dir / "stdout.log",
            cwd=node_dir,
        )

    def _start_registry(self, state: ClusterState) -> None:
        if is_running(state.registry_pid, self._marker()):
            return
        artifacts = self._artifacts_resolved()
        registry_dir = self.state_dir / "registry"
        registry_dir.mkdir(parents=True, exist_ok=True)
        if state.secure:
            # Quarkus reads ./config/application.properties from its working directory.
            write_private(
                registry_dir / "config" / "application.properties",
                self.security.registry_properties().encode(),
            )
        state.registry_pid = spawn(
            [
                str(find_java(_REGISTRY_JAVA)),
                "-Xms128m",
                "-Xmx512m",
                f"-Dagentflux.state={self._marker()}",
                "-jar",
                str(artifacts.apicurio_jar),
            ],
            log_file=registry_dir / "registry.log",
            env=registry_environment(
                state.bootstrap_servers, state.registry_port, state.registry_management_port
            ),
            cwd=registry_dir,
        )

    def down(self) -> None:
        """Stop the registry, then every node; the data stays for the next ``up``."""
        state = self.load()
        if state is None:
            return
        stop(state.registry_pid, self._marker())
        state.registry_pid = None
        for node in state.nodes:
            stop(node.pid, self._marker())
            node.pid = None
        self._save(state)

    def stop_node(self, node_id: int, *, kill: bool = False) -> None:
        """Stop one node (SIGTERM, or SIGKILL with ``kill``), leaving the others running."""
        state = self._require_state()
        node = self._node(state, node_id)
        stop(node.pid, self._marker(), kill=kill)
        node.pid = None
        self._save(state)

    def start_node(self, node_id: int, *, timeout_s: float = 120.0) -> None:
        """Start one stopped node again and wait until it serves metadata itself."""
        state = self._require_state()
        node = self._node(state, node_id)
        self._start_node(state, node)
        self._save(state)
        # Ask the restarted node, not the others: they may still list it from before it stopped.
        own = ClusterState(
            state.cluster_id,
            [node],
            state.registry_port,
            state.registry_management_port,
            secure=state.secure,
        )
        self._wait_for_brokers(own, self.running_nodes(), timeout_s)

    def stop_registry(self, *, kill: bool = False) -> None:
        """Stop the registry (SIGTERM, or SIGKILL with ``kill``); the brokers keep running."""
        state = self._require_state()
        stop(state.registry_pid, self._marker(), kill=kill)
        state.registry_pid = None
        self._save(state)

    def start_registry(self, *, timeout_s: float = 180.0) -> None:
        """Start the registry again and wait until it answers (it reloads schemas from Kafka)."""
        state = self._require_state()
        self._start_registry(state)
        self._save(state)
        self._wait_for_registry(state, timeout_s)

    def running_nodes(self) -> int:
        """How many of this cluster's nodes run."""
        state = self.load()
        return 0 if state is None else sum(is_running(n.pid, self._marker()) for n in state.nodes)

    def status(self) -> dict[str, Any]:
        """What runs, with ports and pids, for ``agentflux status``."""
        state = self.load()
        if state is None:
            return {"state_dir": str(self.state_dir), "running": False}
        marker = self._marker()
        return {
            "state_dir": str(self.state_dir),
            "bootstrap_servers": state.bootstrap_servers,
            "registry_url": state.registry_url,
            "secure": state.secure,
            "nodes": [
                {
                    "node_id": n.node_id,
                    "port": n.broker_port,
                    "pid": n.pid,
                    "running": is_running(n.pid, marker),
                }
                for n in state.nodes
            ],
            "registry": {
                "pid": state.registry_pid,
                "running": is_running(state.registry_pid, marker),
            },
        }

    def pids(self) -> list[int]:
        """Every pid this cluster recorded (running or not), for leak checks."""
        state = self.load()
        if state is None:
            return []
        recorded = [n.pid for n in state.nodes] + [state.registry_pid]
        return [pid for pid in recorded if pid is not None]

    def _require_state(self) -> ClusterState:
        state = self.load()
        if state is None:
            raise ClusterError(f"no cluster in {self.state_dir}; run `agentflux up` first")
        return state

    @staticmethod
    def _node(state: ClusterState, node_id: int) -> NodeState:
        for node in state.nodes:
            if node.node_id == node_id:
                return node
        raise ClusterError(f"no node {node_id}; nodes are {[n.node_id for n in state.nodes]}")

    # -- readiness: ask the servers, never sleep for a fixed time ------------------------------

    def _check_alive(self, state: ClusterState) -> None:
        dead = [
            n.node_id
            for n in state.nodes
            if n.pid is not None and not is_running(n.pid, self._marker())
        ]
        if dead:
            node_dir = self._node_dir(dead[0])
            tails = "".join(
                f"\n--- end of {log}:\n{log.read_text()[-1500:]}"
                for log in (node_dir / "stdout.log", node_dir / "server.log")
                if log.exists()
            )
            raise ClusterError(f"node(s) {dead} exited during start{tails}")

    def _wait_for_brokers(self, state: ClusterState, expected: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            self._check_alive(state)
            if _run_blocking(_broker_count, self.settings(state)) >= expected:
                return
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"the cluster did not show {expected} broker(s) in {timeout_s:.0f} s"
                )
            time.sleep(0.2)  # poll interval between two metadata requests, not a readiness guess

    def _wait_for_registry(self, state: ClusterState, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while True:
                if not is_running(state.registry_pid, self._marker()):
                    log = self.state_dir / "registry" / "registry.log"
                    tail = log.read_text()[-2000:] if log.exists() else ""
                    raise ClusterError(f"the registry exited during start; end of {log}:\n{tail}")
                try:
                    if client.get(f"{state.registry_url}/subjects").status_code == httpx.codes.OK:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise ClusterError(f"the registry did not answer in {timeout_s:.0f} s")
                time.sleep(0.2)  # poll interval between two HTTP requests


def _run_blocking(
    function: Callable[[AgentfluxSettings], Coroutine[Any, Any, int]], argument: AgentfluxSettings
) -> int:
    """Run an async probe to completion from sync code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(function(argument))
    # The launcher is sync by design (CLI, fixtures); inside a loop, probe on a worker thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, function(argument)).result()


async def _broker_count(settings: AgentfluxSettings) -> int:
    # A closed port means "not yet"; asking aiokafka then would only log connection errors.
    first_port = int(settings.bootstrap_servers.split(",", maxsplit=1)[0].rsplit(":", 1)[1])
    if not port_is_open(first_port):
        return 0
    admin = AIOKafkaAdminClient(**connection_kwargs(settings), request_timeout_ms=3000)
    try:
        await admin.start()
        description = await admin.describe_cluster()
        return len(description["brokers"])
    except (KafkaError, OSError):
        return 0
    finally:
        await admin.close()
