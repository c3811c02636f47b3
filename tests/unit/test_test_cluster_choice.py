"""Which cluster the broker tests use: only what AGENTFLUX_TEST_CLUSTER asks for, no Docker needed."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _clusters import (
    choose_cluster,
    describe_choice,
    docker_answers,
    docker_images,
    kafka_container_env,
    registry_container_env,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

_TESTS = Path(__file__).resolve().parents[1]
_SERVERS = {
    "AGENTFLUX_BOOTSTRAP_SERVERS": "broker.example:9092",
    "AGENTFLUX_REGISTRY_URL": "http://registry.example:8080/apis/ccompat/v7",
}


@pytest.fixture
def fake_docker_socket() -> Iterator[str]:
    """A unix socket answering Docker's ``/_ping`` as an engine does, for as long as the test runs."""
    # A short folder of its own: a unix socket's path is limited to ~107 bytes.
    with tempfile.TemporaryDirectory(prefix="afx-") as folder:
        path = Path(folder) / "docker.sock"
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen()

        def answer() -> None:
            with contextlib.suppress(OSError):  # the socket closed: the test is over
                while True:
                    conn, _ = server.accept()
                    with conn:
                        conn.recv(1024)
                        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nOK")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        try:
            yield f"unix://{path}"
        finally:
            server.shutdown(socket.SHUT_RDWR)
            server.close()
            thread.join(5)


def test_an_answering_docker_engine_does_not_change_the_default(fake_docker_socket: str) -> None:
    """With a Docker engine answering and nothing asked, the tests use the local launcher."""
    environ = {"DOCKER_HOST": fake_docker_socket}
    assert docker_answers(environ)  # the fake engine is seen as a real one would be
    assert choose_cluster(environ) == "local"


def test_servers_left_in_the_environment_do_not_redirect_the_tests() -> None:
    """AGENTFLUX_BOOTSTRAP_SERVERS/REGISTRY_URL alone (a shell set up for the CLI) keep the launcher."""
    assert choose_cluster(_SERVERS) == "local"
    assert "set but not used" in describe_choice("local", _SERVERS)


def test_an_empty_value_means_the_default() -> None:
    """AGENTFLUX_TEST_CLUSTER set to nothing is the same as unset: the local launcher."""
    assert choose_cluster({"AGENTFLUX_TEST_CLUSTER": ""}) == "local"


@pytest.mark.parametrize("choice", ["local", "docker"])
def test_each_choice_is_taken_as_asked(choice: str) -> None:
    """Local and docker are used when named, whatever else the environment holds."""
    assert choose_cluster({"AGENTFLUX_TEST_CLUSTER": choice, **_SERVERS}) == choice


def test_external_uses_the_servers_named() -> None:
    """External is accepted when both servers are named."""
    assert choose_cluster({"AGENTFLUX_TEST_CLUSTER": "external", **_SERVERS}) == "external"


def test_external_without_its_servers_is_refused() -> None:
    """External without the registry URL stops the session, naming the missing variable."""
    environ = {
        "AGENTFLUX_TEST_CLUSTER": "external",
        "AGENTFLUX_BOOTSTRAP_SERVERS": "broker.example:9092",
    }
    with pytest.raises(pytest.UsageError, match="needs AGENTFLUX_REGISTRY_URL"):
        choose_cluster(environ)


@pytest.mark.parametrize("value", ["Docker", "testcontainers", "compose", " local"])
def test_an_unknown_value_is_refused(value: str) -> None:
    """A value that is not local, docker or external stops the session and lists the choices."""
    with pytest.raises(pytest.UsageError, match="local, docker, external") as refused:
        choose_cluster({"AGENTFLUX_TEST_CLUSTER": value})
    assert repr(value) in str(refused.value)


def test_an_unknown_value_stops_the_session_before_any_test() -> None:
    """Pytest itself exits with a usage error and the message before collecting any test."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/unit/test_settings.py"],
        env={**os.environ, "AGENTFLUX_TEST_CLUSTER": "kubernetes"},
        cwd=_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "AGENTFLUX_TEST_CLUSTER='kubernetes' is not a cluster the tests know" in result.stderr
    assert "test_settings.py::" not in result.stdout


def test_choosing_imports_nothing_of_testcontainers_and_its_imports_do_not_warn() -> None:
    """The default path never imports testcontainers; the docker path's imports raise no warning."""
    script = (
        "import sys\n"
        "import _clusters\n"
        "assert _clusters.choose_cluster({}) == 'local'\n"
        "assert not [m for m in sys.modules if m.startswith('testcontainers')]\n"
        "_clusters.testcontainers_api()\n"
        "assert 'testcontainers.kafka' not in sys.modules\n"
    )
    subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        cwd=_TESTS,
        check=True,
        timeout=60,
    )


def test_the_docker_images_are_the_launchers_versions(tmp_path: Path) -> None:
    """The containers run the Kafka and Apicurio versions of agentflux/_local/pom.xml, the launcher's file."""
    pom = tmp_path / "pom.xml"
    pom.write_text(
        "<project><properties><kafka.version>9.8.7</kafka.version>"
        "<apicurio.version>6.5.4</apicurio.version></properties></project>"
    )
    assert docker_images(pom) == ("agentflux/kafka:9.8.7", "agentflux/registry:6.5.4")
    kafka, registry = docker_images()  # the real pom
    assert kafka.startswith("agentflux/kafka:4.")
    assert registry.startswith("agentflux/registry:3.")


def test_the_broker_container_has_the_launchers_settings_and_container_listeners() -> None:
    """The container broker gets the launcher's tuning, a listener per side, the host's on 127.0.0.1."""
    env = kafka_container_env(40123)
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_LISTENERS"] == "PLAINTEXT://:19092,CONTROLLER://:9093,EXTERNAL://:9092"
    assert "EXTERNAL:PLAINTEXT" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert env["KAFKA_ADVERTISED_LISTENERS"] == (
        "PLAINTEXT://kafka:19092,EXTERNAL://127.0.0.1:40123"
    )
    assert env["CLUSTER_ID"]


def test_the_registry_container_reaches_the_broker_inside_the_network() -> None:
    """The registry uses the broker's network alias, not a host-mapped address, and listens outside."""
    env = registry_container_env()
    assert env["APICURIO_KAFKASQL_BOOTSTRAP_SERVERS"] == "kafka:19092"
    assert env["QUARKUS_HTTP_HOST"] == "0.0.0.0"  # noqa: S104
    assert env["QUARKUS_HTTP_PORT"] == "8080"


def test_servers_in_the_shell_do_not_reach_the_tests() -> None:
    """Unless external is asked for, the session runs without AGENTFLUX_BOOTSTRAP_SERVERS/REGISTRY_URL."""
    if os.environ.get("AGENTFLUX_TEST_CLUSTER") != "external":
        assert not {"AGENTFLUX_BOOTSTRAP_SERVERS", "AGENTFLUX_REGISTRY_URL"} & os.environ.keys()


def test_a_session_with_servers_in_the_shell_removes_them() -> None:
    """A pytest run started with both servers set but nothing asked runs its tests without them."""
    this_test = f"{Path(__file__).relative_to(_TESTS.parent)}::test_servers_in_the_shell_do_not_reach_the_tests"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", this_test],
        env={**os.environ, **_SERVERS, "AGENTFLUX_TEST_CLUSTER": ""},
        cwd=_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
