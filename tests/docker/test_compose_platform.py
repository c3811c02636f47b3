"""compose/docker-compose.yml runs the platform end to end on the project's images."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _clusters import CLUSTER_ENV

from agentflux._local._ports import free_ports
from agentflux._offsets import admin_client, group_lag, partitions_of, probe_consumer
from agentflux.consumers._groups import SHIPPED_GROUPS, VIEW_GROUPS
from agentflux.kafka import AgentfluxSettings

if TYPE_CHECKING:
    from collections.abc import Iterator

# Only when asked: a machine without a Docker engine and the images runs everything else.
pytestmark = [
    pytest.mark.docker,
    pytest.mark.slow,
    pytest.mark.timeout(1200),
    pytest.mark.skipif(
        os.environ.get(CLUSTER_ENV) != "docker", reason=f"only with {CLUSTER_ENV}=docker"
    ),
]

_COMPOSE_FILE = Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml"
_SESSIONS = 12
_SERVICES = ("context", "metrics", "audit", "hitl-timeouts")


class Platform:
    """One compose project of the platform, on ports of its own, and the CLI pointed at it."""

    def __init__(self, env_file: Path | None = None) -> None:
        """A project name and host ports no other run uses; ``env_file`` as ``--env-file``."""
        kafka, kafka_2, kafka_3, registry, postgres = free_ports(5)
        self.files = ["-f", str(_COMPOSE_FILE)]
        if env_file is not None:
            self.files += ["--env-file", str(env_file)]
        self.env = {
            **os.environ,
            "COMPOSE_PROJECT_NAME": f"agentflux-test-{uuid.uuid4().hex[:8]}",
            "AGENTFLUX_KAFKA_PORT": str(kafka),
            "AGENTFLUX_KAFKA_PORT_2": str(kafka_2),
            "AGENTFLUX_KAFKA_PORT_3": str(kafka_3),
            "AGENTFLUX_REGISTRY_PORT": str(registry),
            "AGENTFLUX_POSTGRES_PORT": str(postgres),
            "AGENTFLUX_SIMULATED_SESSIONS": str(_SESSIONS),
        }
        self.settings = AgentfluxSettings(
            bootstrap_servers=f"127.0.0.1:{kafka}",
            registry_url=f"http://127.0.0.1:{registry}/apis/ccompat/v7",
            store_url=f"postgresql://agentflux:agentflux@127.0.0.1:{postgres}/agentflux",
        )
        # Docker Compose v2 (`docker compose`) where installed, Debian's 1.29 otherwise.
        plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        self.compose_command = (
            ["docker", "compose"]
            if plugin.returncode == 0
            else [shutil.which("docker-compose") or "docker-compose"]
        )

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a compose command on this project; its output is in the failure message."""
        done = subprocess.run(
            [*self.compose_command, *self.files, *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"compose {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done

    def agentflux(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The CLI on this machine, pointed at the containers through their host ports."""
        return subprocess.run(
            [sys.executable, "-m", "agentflux", *args],
            env={
                **os.environ,
                "AGENTFLUX_BOOTSTRAP_SERVERS": self.settings.bootstrap_servers,
                "AGENTFLUX_REGISTRY_URL": self.settings.registry_url,
                "AGENTFLUX_STORE_URL": self.settings.store_url,
            },
            capture_output=True,
            text=True,
            check=False,
        )

    def health(self, service: str) -> str:
        """The Docker health status of one service's container."""
        return self.state(service, "{{.State.Health.Status}}")

    def state(self, service: str, template: str) -> str:
        """One field of the state of a service's container (a ``docker inspect`` template)."""
        container = self.compose("ps", "-q", service).stdout.strip()
        inspected = subprocess.run(
            ["docker", "inspect", "-f", template, container],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return inspected.stdout.strip()

    def logs(self) -> str:
        """Every service's log, for a failure's report."""
        return subprocess.run(
            [*self.compose_command, *self.files, "logs", "--no-color", "--tail", "60"],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        ).stdout


@contextlib.contextmanager
def _project(env_file: Path | None = None) -> Iterator[Platform]:
    """A compose project, removed with its volumes at the end whatever happened."""
    missing = [
        image
        for image in subprocess.run(
            [_COMPOSE_FILE.parents[1] / "docker" / "build.sh", "--tags"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        if subprocess.run(
            ["docker", "image", "inspect", image], capture_output=True, check=False
        ).returncode
    ]
    if missing:
        pytest.fail(f"images missing: {', '.join(missing)}; build them with `make images`")
    started = Platform(env_file)
    try:
        yield started
    finally:
        # pytest shows a teardown's output only when something failed: the services' logs then.
        print(started.logs())  # noqa: T201
        subprocess.run(
            [*started.compose_command, *started.files, "down", "-v", "--remove-orphans"],
            env={**started.env, "COMPOSE_PROFILES": "simulator,three-nodes"},
            capture_output=True,
            check=False,
        )


@pytest.fixture
def platform() -> Iterator[Platform]:
    """The one-node platform."""
    with _project() as started:
        yield started


@pytest.fixture
def three_nodes() -> Iterator[Platform]:
    """The platform as compose/three-nodes.env sets it up."""
    with _project(_COMPOSE_FILE.parent / "three-nodes.env") as started:
        yield started


async def _caught_up(settings: AgentfluxSettings) -> bool:
    """Every view group has committed the end offset of every partition it reads that has data."""
    async with probe_consumer(settings) as consumer:
        for name in VIEW_GROUPS:
            spec = SHIPPED_GROUPS[name]
            ends = await consumer.end_offsets(
                await partitions_of(settings, consumer, spec.topics(settings))
            )
            committed = {
                (row.topic, row.partition): row.committed
                for row in await group_lag(settings, [spec.group_id])
            }
            if any(
                end and committed.get((tp.topic, tp.partition)) != end for tp, end in ends.items()
            ):
                return False
    return True


def _wait_until(what: str, check: object, timeout_s: float = 300) -> None:
    """Ask ``check`` again until it is true; fail after ``timeout_s`` (a hang guard, not a measure)."""
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.0f} s"
        time.sleep(1)  # poll interval between two questions to the servers


def test_the_platform_runs_end_to_end_and_keeps_its_data(platform: Platform) -> None:
    """Compose up applies topics and schemas; simulated traffic reaches every view; data survive down/up."""
    platform.compose("up", "-d")  # returns once set-up finished and the groups started
    for service in _SERVICES:
        _wait_until(f"{service} healthy", lambda s=service: platform.health(s) == "healthy")
    platform.compose("--profile", "simulator", "run", "--rm", "-T", "simulator")
    _wait_until("groups caught up", lambda: asyncio.run(_caught_up(platform.settings)))

    listed = platform.agentflux("audit", "--limit", "1")
    assert listed.returncode == 0, listed.stderr
    session = json.loads(listed.stdout.splitlines()[0])["session_id"]
    context = platform.agentflux("context", session)
    assert context.returncode == 0, context.stderr
    assert json.loads(context.stdout)["session_id"] == session
    verified = platform.agentflux("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    simulated = [line for line in verified.stdout.splitlines() if line.startswith("sim-")]
    assert len(simulated) == _SESSIONS
    assert all(": intact (" in line for line in simulated), simulated

    platform.compose("stop")
    # SIGTERM stopped each service cleanly: no service was killed at the end of its grace period.
    assert {s: platform.state(s, "{{.State.ExitCode}}") for s in _SERVICES} == dict.fromkeys(
        _SERVICES, "0"
    )
    platform.compose("down")  # containers gone, named volumes kept
    platform.compose("up", "-d")
    again = platform.agentflux("context", session)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == json.loads(context.stdout)
    for service in _SERVICES:
        _wait_until(f"{service} healthy again", lambda s=service: platform.health(s) == "healthy")
    _wait_until("groups caught up again", lambda: asyncio.run(_caught_up(platform.settings)))
    assert platform.agentflux("audit", "verify").stdout == verified.stdout


async def _brokers(settings: AgentfluxSettings) -> int:
    """How many brokers the cluster says it has."""
    async with admin_client(settings) as admin:
        return len((await admin.describe_cluster())["brokers"])


def test_the_three_node_profile_forms_one_cluster(three_nodes: Platform) -> None:
    """compose/three-nodes.env starts three healthy Kafka nodes that form one cluster."""
    nodes = ("kafka", "kafka-2", "kafka-3")
    three_nodes.compose("up", "-d", *nodes)
    for node in nodes:
        _wait_until(f"{node} healthy", lambda n=node: three_nodes.health(n) == "healthy")
    assert asyncio.run(_brokers(three_nodes.settings)) == len(nodes)
