"""Which Kafka cluster and registry the broker tests use, and the Docker way of starting one.

``AGENTFLUX_TEST_CLUSTER`` names it: ``local`` (the default: the project's own launcher starts
real Kafka and Apicurio processes), ``docker`` (testcontainers, only when asked) or ``external``
(the servers named by ``AGENTFLUX_BOOTSTRAP_SERVERS`` and ``AGENTFLUX_REGISTRY_URL``). A Docker
engine on the machine, or those two variables left in a shell for the command line, change
nothing unless asked: a developer's laptop and a CI runner run the same tests the same way.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Literal, get_args

import pytest
import yaml
from pydantic import SecretStr

from agentflux._local import LocalCluster
from agentflux._local._config import (
    NodePorts,
    new_cluster_id,
    registry_environment,
    render_server,
)
from agentflux._local._ports import free_ports

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from agentflux.kafka import AgentfluxSettings

__all__ = [
    "CLUSTER_ENV",
    "TEST_TEAMS",
    "ClusterChoice",
    "choose_cluster",
    "describe_choice",
    "docker_answers",
    "docker_cluster",
    "docker_images",
    "kafka_container_env",
    "registry_container_env",
    "secured_cluster",
    "security_env",
    "settings_as",
    "teams_declaration",
    "testcontainers_api",
]

CLUSTER_ENV = "AGENTFLUX_TEST_CLUSTER"
_BOOTSTRAP_ENV = "AGENTFLUX_BOOTSTRAP_SERVERS"
_REGISTRY_ENV = "AGENTFLUX_REGISTRY_URL"
ClusterChoice = Literal["local", "docker", "external"]
_CHOICES: tuple[ClusterChoice, ...] = get_args(ClusterChoice)
_DESCRIPTIONS: dict[ClusterChoice, str] = {
    "local": "the project's launcher starts Kafka and the registry as processes",
    "docker": "testcontainers starts Kafka and the registry in containers",
    "external": f"the servers named by {_BOOTSTRAP_ENV} and {_REGISTRY_ENV}",
}
# The one file that holds the platform's Kafka and Apicurio versions (the launcher reads it too).
_POM = Path(__file__).resolve().parents[1] / "agentflux" / "_local" / "pom.xml"
# Inside the containers' network: the broker's name and its listener for the registry.
_KAFKA_ALIAS = "kafka"
_INTERNAL_PORT = 19092
_CLIENT_PORT = 9092  # mapped to a free host port; advertised once that port is known
_CONTROLLER_PORT = 9093
_REGISTRY_PORT = 8080
_REGISTRY_MANAGEMENT_PORT = 9000


def choose_cluster(environ: Mapping[str, str]) -> ClusterChoice:
    """The cluster ``environ`` asks for; ``local`` when ``AGENTFLUX_TEST_CLUSTER`` is unset or empty.

    Raises ``pytest.UsageError`` (the session stops before any test, with this message) for an
    unknown value, and for ``external`` without both servers named.
    """
    asked = environ.get(CLUSTER_ENV, "") or "local"
    choice = next((known for known in _CHOICES if known == asked), None)
    if choice is None:
        options = "; ".join(f"{name}: {text}" for name, text in _DESCRIPTIONS.items())
        raise pytest.UsageError(
            f"{CLUSTER_ENV}={asked!r} is not a cluster the tests know. Choose one of "
            f"{', '.join(_CHOICES)} ({options}); unset means local."
        )
    missing = [name for name in (_BOOTSTRAP_ENV, _REGISTRY_ENV) if not environ.get(name)]
    if choice == "external" and missing:
        raise pytest.UsageError(
            f"{CLUSTER_ENV}=external needs {' and '.join(missing)} set to the servers to test against."
        )
    return choice


def describe_choice(choice: ClusterChoice, environ: Mapping[str, str]) -> str:
    """One line for pytest's header: the cluster chosen, how, and what is set but not used."""
    how = f"{CLUSTER_ENV}={environ[CLUSTER_ENV]}" if environ.get(CLUSTER_ENV) else "the default"
    line = f"{choice} ({_DESCRIPTIONS[choice]}; {how})"
    ignored = [name for name in (_BOOTSTRAP_ENV, _REGISTRY_ENV) if environ.get(name)]
    if ignored and choice != "external":
        line += (
            f"; {' and '.join(ignored)} set but not used (only {CLUSTER_ENV}=external reads them)"
        )
    return line


def docker_answers(environ: Mapping[str, str]) -> bool:
    """Whether a Docker engine answers on the socket ``DOCKER_HOST`` names (or the default one)."""
    host = environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return True  # a remote engine was named on purpose; testcontainers reports if it is down
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        try:
            sock.connect(host.removeprefix("unix://"))
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b"OK" in sock.recv(1024)
        except OSError:
            return False


def docker_images(pom: Path = _POM) -> tuple[str, str]:
    """The project's Kafka and registry images (``make images``) at the launcher's versions.

    Tagged with the versions of ``agentflux/_local/pom.xml``, as ``docker/build.sh`` tags them.
    """
    text = pom.read_text()

    def version(name: str) -> str:
        found = re.search(rf"<{name}\.version>\s*([^<\s]+)\s*</{name}\.version>", text)
        if found is None:
            raise ValueError(f"{pom} names no {name}.version")
        return found.group(1)

    return f"agentflux/kafka:{version('kafka')}", f"agentflux/registry:{version('apicurio')}"


def kafka_container_env(host_port: int) -> dict[str, str]:
    """The broker container's environment: the launcher's node settings, container listeners.

    The same ``server.properties`` the launcher writes (auto topic creation off, no initial
    rebalance delay, ...), so a test sees the same broker either way; only the listeners differ:
    one inside the containers' network (the registry's) and one the tests reach through
    ``127.0.0.1:host_port``, which the container's client port is bound to.
    """
    node = NodePorts(node_id=1, broker=_INTERNAL_PORT, controller=_CONTROLLER_PORT)
    rendered = render_server(node, [node], Path("/var/lib/kafka/data"))
    properties = dict(line.split("=", 1) for line in rendered.splitlines() if line)
    properties |= {
        "listeners": (
            f"PLAINTEXT://:{_INTERNAL_PORT},CONTROLLER://:{_CONTROLLER_PORT},"
            f"EXTERNAL://:{_CLIENT_PORT}"
        ),
        "advertised.listeners": (
            f"PLAINTEXT://{_KAFKA_ALIAS}:{_INTERNAL_PORT},EXTERNAL://127.0.0.1:{host_port}"
        ),
        "listener.security.protocol.map": (
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,EXTERNAL:PLAINTEXT"
        ),
        "controller.quorum.voters": f"1@localhost:{_CONTROLLER_PORT}",
    }
    # The image (docker/kafka/run.sh) turns KAFKA_A_B into the property a.b.
    env = {"KAFKA_" + key.upper().replace(".", "_"): value for key, value in properties.items()}
    return {**env, "CLUSTER_ID": new_cluster_id()}


def registry_container_env() -> dict[str, str]:
    """The registry container's environment: the launcher's, reachable from outside the container.

    Its Kafka is the broker's address inside the containers' network: the host-mapped one is not
    reachable from another container.
    """
    env = registry_environment(
        f"{_KAFKA_ALIAS}:{_INTERNAL_PORT}", _REGISTRY_PORT, _REGISTRY_MANAGEMENT_PORT
    )
    return env | {"QUARKUS_HTTP_HOST": "0.0.0.0"}  # noqa: S104  # the container's port is mapped


def testcontainers_api() -> SimpleNamespace:
    """The few testcontainers classes the Docker branch uses, imported only when it runs.

    Only from ``testcontainers.core``: ``testcontainers.kafka`` warns that it is deprecated
    (an error under ``filterwarnings = error``), and its ``KafkaContainer`` wraps Confluent's
    image, not the project's.
    """
    from testcontainers.core.config import (  # noqa: PLC0415  # only when asked
        ConnectionMode,
        testcontainers_config,
    )
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415
    from testcontainers.core.network import Network  # noqa: PLC0415
    from testcontainers.core.wait_strategies import (  # noqa: PLC0415
        ExecWaitStrategy,
        HttpWaitStrategy,
    )

    return SimpleNamespace(
        config=testcontainers_config,
        ConnectionMode=ConnectionMode,
        DockerContainer=DockerContainer,
        Network=Network,
        ExecWaitStrategy=ExecWaitStrategy,
        HttpWaitStrategy=HttpWaitStrategy,
    )


@contextlib.contextmanager
def docker_cluster() -> Iterator[tuple[str, str]]:
    """Kafka and Apicurio Registry in containers on a network of their own; (bootstrap, registry URL).

    The images are the project's own (``make images``, run ``docker/build.sh``). Their client
    ports are bound to 127.0.0.1 only, on ports picked free beforehand, so the broker can
    advertise its address from the start. Readiness is asked of the servers: the broker's own
    health check (an ApiVersions request) and the registry's API. Ryuk, testcontainers' reaper
    of containers a killed session leaves, is off unless ``TESTCONTAINERS_RYUK_DISABLED`` says
    otherwise: its image comes from a registry; these ``with`` blocks stop what they start.
    The engine must publish ports on this machine's loopback: a local engine does; a remote
    one, or the host's engine seen from a dev container, does not.
    """
    if not docker_answers(os.environ):
        pytest.fail(
            f"{CLUSTER_ENV}=docker, but no Docker engine answers "
            f"(DOCKER_HOST={os.environ.get('DOCKER_HOST', 'unix:///var/run/docker.sock')})"
        )
    api = testcontainers_api()
    if "TESTCONTAINERS_RYUK_DISABLED" not in os.environ:
        api.config.ryuk_disabled = True
    if "TESTCONTAINERS_CONNECTION_MODE" not in os.environ:
        # The ports are bound to this machine's loopback, so testcontainers asks them there,
        # even where it guesses otherwise (running inside a container, it would ask a gateway).
        api.config.connection_mode_override = api.ConnectionMode.docker_host
    kafka_image, registry_image = docker_images()
    kafka_port, registry_port = free_ports(2)
    with api.Network() as network:
        kafka = (
            api.DockerContainer(kafka_image)
            .with_network(network)
            .with_network_aliases(_KAFKA_ALIAS)
            .with_envs(**kafka_container_env(kafka_port))
            .waiting_for(
                api.ExecWaitStrategy(["/opt/kafka/healthcheck.sh"]).with_startup_timeout(180)
            )
        )
        # testcontainers binds a port on every interface; docker-py takes (address, port).
        kafka.ports[f"{_CLIENT_PORT}/tcp"] = ("127.0.0.1", kafka_port)
        with kafka:
            registry = (
                api.DockerContainer(registry_image)
                .with_network(network)
                .with_envs(**registry_container_env())
                .waiting_for(
                    api.HttpWaitStrategy(_REGISTRY_PORT, "/apis/ccompat/v7/subjects")
                    .for_status_code(200)
                    .with_startup_timeout(300)
                )
            )
            registry.ports[f"{_REGISTRY_PORT}/tcp"] = ("127.0.0.1", registry_port)
            with registry:
                yield (
                    f"127.0.0.1:{kafka_port}",
                    f"http://127.0.0.1:{registry_port}/apis/ccompat/v7",
                )


# The teams the security tests declare on top of the shipped ones: two that read shared topics.
TEST_TEAMS = (
    {
        "name": "billing",
        "principal": "User:billing",
        "reads": ["agent.events", "tool.events"],
        "group_prefix": "billing.",
    },
    {
        "name": "safety",
        "principal": "User:safety",
        "reads": ["tool.events", "hitl.events"],
        "group_prefix": "safety.",
    },
)


def teams_declaration(folder: Path) -> Path:
    """The shipped ``topics.yaml`` with the test teams added, written into ``folder``."""
    shipped = Path(__file__).resolve().parents[1] / "schemas" / "topics.yaml"
    declared = yaml.safe_load(shipped.read_text())
    declared["teams"] = [*declared.get("teams", []), *TEST_TEAMS]
    path = folder / "topics.yaml"
    path.write_text(yaml.safe_dump(declared, sort_keys=False))
    return path


@contextlib.contextmanager
def secured_cluster(nodes: int) -> Iterator[LocalCluster]:
    """A secured local cluster (``agentflux up --secure``) of its own, removed afterwards."""
    state_dir = Path(tempfile.mkdtemp(prefix=f"agentflux-test-secure-{nodes}n-"))
    local = LocalCluster(state_dir)
    try:
        local.up(nodes, secure=True)
        yield local
    finally:
        local.down()
        shutil.rmtree(state_dir, ignore_errors=True)


def settings_as(
    settings: AgentfluxSettings, user: str, password: str | None = None
) -> AgentfluxSettings:
    """``settings`` logging in as ``user`` (with a random, hence wrong, password by default)."""
    secret = SecretStr(password if password is not None else secrets.token_urlsafe(12))
    return settings.model_copy(update={"sasl_username": user, "sasl_password": secret})


def security_env(settings: AgentfluxSettings) -> dict[str, str]:
    """The ``AGENTFLUX_*`` security variables of ``settings``, for a child process."""
    password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
    return {
        "AGENTFLUX_SECURITY_PROTOCOL": settings.security_protocol,
        "AGENTFLUX_SASL_MECHANISM": settings.sasl_mechanism or "",
        "AGENTFLUX_SASL_USERNAME": settings.sasl_username or "",
        "AGENTFLUX_SASL_PASSWORD": password,
        "AGENTFLUX_SSL_CAFILE": str(settings.ssl_cafile or ""),
    }
