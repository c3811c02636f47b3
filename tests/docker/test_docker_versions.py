"""The images, compose and the launcher run the same versions and settings (no Docker needed)."""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import yaml
from _clusters import docker_images

from agentflux._local._config import (
    NodePorts,
    kafka_jvm_options,
    registry_environment,
    render_server,
)

_ROOT = Path(__file__).resolve().parents[2]
_DOCKER = _ROOT / "docker"
_COMPOSE = _ROOT / "compose"
# Where a container's node differs from a launcher's by nature: addresses, ids and paths.
_TOPOLOGY = {
    "process.roles",
    "node.id",
    "controller.quorum.voters",
    "listeners",
    "advertised.listeners",
    "controller.listener.names",
    "inter.broker.listener.name",
    "listener.security.protocol.map",
    "log.dirs",
}
_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


def _dockerfile_env(name: str) -> dict[str, str]:
    """The ENV settings of the final stage of ``docker/<name>.Dockerfile``."""
    text = (_DOCKER / f"{name}.Dockerfile").read_text().replace("\\\n", " ")
    final = text.rsplit("\nFROM ", 1)[-1]
    env: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            env |= dict(word.split("=", 1) for word in shlex.split(line.removeprefix("ENV ")))
    return env


def _launcher_settings(nodes: int) -> dict[str, str]:
    """The settings ``agentflux up --nodes <nodes>`` writes, topology left out."""
    ports = [NodePorts(i, 9000 + i, 9100 + i) for i in range(1, nodes + 1)]
    rendered = render_server(ports[0], ports, Path("/data"))
    settings = dict(line.split("=", 1) for line in rendered.splitlines())
    return {key: value for key, value in settings.items() if key not in _TOPOLOGY}


def _as_properties(env: dict[str, str]) -> dict[str, str]:
    """KAFKA_A_B=value as the property a.b, as docker/kafka/run.sh writes it."""
    jvm = {"KAFKA_HEAP_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_OPTS"}
    return {
        name.removeprefix("KAFKA_").lower().replace("_", "."): value
        for name, value in env.items()
        if name.startswith("KAFKA_") and name not in jvm
    }


def _compose(variables: dict[str, str] | None = None) -> dict[str, dict[str, object]]:
    """The compose file's services, each ${NAME:-default} resolved from ``variables``."""
    text = (_COMPOSE / "docker-compose.yml").read_text()
    given = variables or {}
    resolved = _DEFAULTED.sub(lambda m: given.get(m.group(1), m.group(2)), text)
    services: dict[str, dict[str, object]] = yaml.safe_load(resolved)["services"]
    return services


def _env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_build_script_compose_and_launcher_name_the_same_images() -> None:
    """docker/build.sh tags, compose's images and the testcontainers images follow the pom."""
    built = subprocess.run(
        [_DOCKER / "build.sh", "--tags"], capture_output=True, text=True, check=True
    ).stdout.split()
    project = tomllib.loads((_ROOT / "pyproject.toml").read_text())["project"]["version"]
    kafka, registry = docker_images()
    assert built == [kafka, registry, "agentflux/postgres:15", f"agentflux/services:{project}"]
    used = {name: service["image"] for name, service in _compose().items()}
    assert {used["kafka"], used["kafka-2"], used["kafka-3"]} == {kafka}
    assert used["registry"] == registry
    assert used["postgres"] == "agentflux/postgres:15"
    services = {
        image
        for name, image in used.items()
        if name not in {"kafka", "kafka-2", "kafka-3", "registry", "postgres"}
    }
    assert services == {f"agentflux/services:{project}"}
    assert "postgresql-15 " in (_DOCKER / "postgres.Dockerfile").read_text()


def test_the_kafka_image_defaults_are_the_launchers_settings() -> None:
    """The image's KAFKA_* defaults are the one-node launcher's broker settings and JVM options."""
    env = _dockerfile_env("kafka")
    image = _as_properties(env)
    assert image.pop("log.dirs") == "/var/lib/kafka/data"  # the image's volume
    assert image == _launcher_settings(1)
    heap_and_collector = shlex.split(env["KAFKA_HEAP_OPTS"]) + shlex.split(
        env["KAFKA_JVM_PERFORMANCE_OPTS"]
    )
    assert heap_and_collector == kafka_jvm_options({})


def test_compose_brokers_replicate_as_the_launcher_does() -> None:
    """Compose's one-node and three-node settings match `agentflux up` with 1 and 3 nodes."""
    for nodes, variables in ((1, {}), (3, _env_file(_COMPOSE / "three-nodes.env"))):
        image = _as_properties(_dockerfile_env("kafka"))
        for name in ("kafka", "kafka-2", "kafka-3")[:nodes]:
            environment = _compose(variables)[name]["environment"]
            assert isinstance(environment, dict)
            settings = image | _as_properties({k: str(v) for k, v in environment.items()})
            assert {k: v for k, v in settings.items() if k not in _TOPOLOGY} == (
                _launcher_settings(nodes)
            ), name


def test_the_registry_image_has_the_launchers_environment() -> None:
    """The registry image runs with the launcher's environment, listening beyond loopback."""
    env = _dockerfile_env("registry")
    launcher = registry_environment("kafka:19092", 8080, 9000)
    assert {k: env[k] for k in launcher} == launcher | {"QUARKUS_HTTP_HOST": "0.0.0.0"}  # noqa: S104


def test_compose_publishes_on_loopback_and_starts_in_order() -> None:
    """Every port is on 127.0.0.1; a service waits for its dependencies' health or completion."""
    services = _compose()
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    waits = {
        name: {dependency: wait["condition"] for dependency, wait in service["depends_on"].items()}
        for name, service in services.items()
        if "depends_on" in service
    }
    healthy, done = "service_healthy", "service_completed_successfully"
    assert waits["registry"] == {"kafka": healthy}
    assert waits["setup"] == {"kafka": healthy, "registry": healthy}
    for group in ("context", "metrics", "audit", "hitl-timeouts"):
        assert waits[group] == {"setup": done, "postgres": healthy}
        assert services[group]["command"][:2] == ["consume", group]
    assert waits["simulator"] == {"setup": done}
    # The one-shot services run no server to ask; the others keep their image's health check.
    assert {n for n, s in services.items() if s.get("healthcheck", {}).get("disable")} == {
        "setup",
        "simulator",
    }


def test_services_serve_health_beyond_loopback_and_check_liveness() -> None:
    """Image and compose listen on 0.0.0.0 and check /livez on the port the services serve."""
    env = _dockerfile_env("services")
    assert env["AGENTFLUX_HEALTH_HOST"] == "0.0.0.0"  # noqa: S104  # the setting under test
    check = (_DOCKER / "services" / "healthcheck.py").read_text()
    assert "/livez" in check
    assert "AGENTFLUX_HEALTH_PORT" in check
    services = _compose()
    for group in ("context", "metrics", "audit", "hitl-timeouts"):
        service = services[group]
        environment = service["environment"]
        assert isinstance(environment, dict)
        assert environment["AGENTFLUX_HEALTH_HOST"] == env["AGENTFLUX_HEALTH_HOST"], group
        assert service["healthcheck"]["test"] == [  # type: ignore[index]  # parsed YAML
            "CMD",
            "python3",
            "/opt/agentflux/healthcheck.py",
        ], group
        command = service["command"]
        assert isinstance(command, list)
        assert command[command.index("--port") + 1] == env["AGENTFLUX_HEALTH_PORT"], group
