"""The launcher's pure parts: configuration, ports, state, Java discovery."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from agentflux._local import ClusterError, ClusterState, LocalCluster, NodeState, find_java
from agentflux._local import _artifacts as artifacts
from agentflux._local._artifacts import _extract
from agentflux._local._config import (
    NodePorts,
    kafka_jvm_options,
    new_cluster_id,
    registry_environment,
    render_server,
)
from agentflux._local._java import JavaNotFoundError
from agentflux._local._ports import free_ports, port_is_open
from agentflux._local._process import is_running, spawn, stop


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_single_node_config_is_combined_with_rf1(tmp_path: Path) -> None:
    """A 1-node cluster is broker+controller with replication 1 and min ISR 1."""
    node = NodePorts(1, 9092, 9093)
    props = _properties(render_server(node, [node], tmp_path))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["default.replication.factor"] == "1"
    assert props["min.insync.replicas"] == "1"
    assert props["listeners"].count("127.0.0.1") == 2


def test_three_node_config_has_rf3_and_min_isr2(tmp_path: Path) -> None:
    """A 3-node cluster replicates 3 times, needs 2 in sync, and names all voters."""
    voters = [NodePorts(i, 1000 + i, 2000 + i) for i in (1, 2, 3)]
    props = _properties(render_server(voters[1], voters, tmp_path))
    assert props["node.id"] == "2"
    assert props["default.replication.factor"] == "3"
    assert props["offsets.topic.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["controller.quorum.voters"].split(",") == [
        "1@127.0.0.1:2001",
        "2@127.0.0.1:2002",
        "3@127.0.0.1:2003",
    ]


def test_node_jvm_options_default_to_a_large_young_generation() -> None:
    """Without Kafka's variables a node collects a fixed 640 MB young generation in parallel."""
    options = kafka_jvm_options({})
    assert options[:3] == ["-Xms1g", "-Xmx1g", "-Xmn640m"]
    assert "-XX:+UseParallelGC" in options


def test_node_jvm_options_follow_kafkas_variables() -> None:
    """KAFKA_HEAP_OPTS and KAFKA_JVM_PERFORMANCE_OPTS replace their part; KAFKA_OPTS adds."""
    options = kafka_jvm_options(
        {
            "KAFKA_HEAP_OPTS": "-Xms1g -Xmx1g -Xmn640m",
            "KAFKA_JVM_PERFORMANCE_OPTS": "-server -XX:+UseParallelGC",
            "KAFKA_OPTS": "-Dname='a b'",
        }
    )
    assert options == [
        "-Xms1g",
        "-Xmx1g",
        "-Xmn640m",
        "-server",
        "-XX:+UseParallelGC",
        "-Dname=a b",
    ]
    only_extra = kafka_jvm_options({"KAFKA_OPTS": "-Dx=1", "KAFKA_HEAP_OPTS": ""})
    assert only_extra == [*kafka_jvm_options({}), "-Dx=1"]  # empty counts as unset


def test_cluster_id_is_kafka_shaped() -> None:
    """Cluster ids are 22 URL-safe base64 characters, fresh each time."""
    first, second = new_cluster_id(), new_cluster_id()
    assert len(first) == 22
    assert first != second
    assert "=" not in first


def test_registry_binds_only_loopback() -> None:
    """The registry's HTTP and management interfaces listen on 127.0.0.1 only."""
    env = registry_environment("127.0.0.1:9092", 8081, 9000)
    assert env["QUARKUS_HTTP_HOST"] == "127.0.0.1"
    assert env["QUARKUS_MANAGEMENT_HOST"] == "127.0.0.1"
    assert env["APICURIO_STORAGE_KIND"] == "kafkasql"


def test_free_ports_are_distinct_and_free() -> None:
    """Picked ports differ and nothing listens on them."""
    ports = free_ports(5)
    assert len(set(ports)) == 5
    assert not any(port_is_open(p) for p in ports)


def test_port_is_open_sees_a_listener() -> None:
    """A listening socket is reported open."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert port_is_open(server.getsockname()[1])


def test_state_round_trips(tmp_path: Path) -> None:
    """The state file keeps ports, pids and ids across launcher instances."""
    cluster = LocalCluster(tmp_path)
    state = ClusterState("abc", [NodeState(1, 1111, 2222, pid=None)], 3333, 4444)
    cluster._save(state)
    loaded = LocalCluster(tmp_path).load()
    assert loaded == state
    assert loaded is not None
    assert loaded.bootstrap_servers == "127.0.0.1:1111"
    assert loaded.registry_url == "http://127.0.0.1:3333/apis/ccompat/v7"


def test_stale_pid_is_not_ours(tmp_path: Path) -> None:
    """A recorded pid whose process lacks our state dir on its command line counts as stopped."""
    assert not is_running(1, str(tmp_path))  # pid 1 exists but is not one of ours
    assert not is_running(None, str(tmp_path))


def test_down_without_state_is_a_no_op(tmp_path: Path) -> None:
    """Stopping a directory that never held a cluster does nothing and raises nothing."""
    LocalCluster(tmp_path).down()
    assert LocalCluster(tmp_path).status() == {"state_dir": str(tmp_path), "running": False}


def test_java_for_kafka_is_found() -> None:
    """A Java 17+ runtime is found for Kafka."""
    assert find_java(17).exists()


def test_impossible_java_is_a_clear_error() -> None:
    """Asking for a Java that cannot exist names what was looked at."""
    with pytest.raises(JavaNotFoundError, match="no Java 999"):
        find_java(999)


def test_a_jvm_counts_as_running_while_it_re_executes(tmp_path: Path) -> None:
    """A freshly spawned java, mid re-exec with an empty /proc cmdline, is still ours and alive."""
    java = str(find_java(17))
    marker = str(tmp_path)
    for _ in range(15):
        pid = spawn(
            [java, f"-Dagentflux.state={marker}", "-version"],
            log_file=tmp_path / "java.log",
            cwd=tmp_path,
        )
        try:
            assert is_running(pid, marker)
        finally:
            stop(pid, marker, kill=True)
        assert not is_running(pid, marker)


_MAIN_THREAD_EXITS_FIRST = """
import ctypes, sys, threading, time
threading.Thread(target=time.sleep, args=(float(sys.argv[1]),)).start()
ctypes.CDLL(None).pthread_exit(None)  # as a JVM's main thread does before its shutdown hooks end
"""


def _main_thread_gone(pid: int) -> None:
    """Wait until the process's main thread has exited while another one still runs."""
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + 10
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the main thread never exited"
        time.sleep(0.01)


def test_a_process_runs_until_its_last_thread_ends(tmp_path: Path) -> None:
    """A spawned server whose main thread exited first is running until its last thread ends."""
    marker = str(tmp_path)
    command = [sys.executable, "-c", _MAIN_THREAD_EXITS_FIRST, "1.5", marker]
    pid = spawn(command, log_file=tmp_path / "out.log", cwd=tmp_path)
    _main_thread_gone(pid)
    assert is_running(pid, marker)
    stop(pid, marker)  # SIGTERM ends every thread; stop returns once all are gone
    assert not is_running(pid, marker)


def test_a_process_started_elsewhere_runs_until_its_last_thread_ends(tmp_path: Path) -> None:
    """Read from /proc (no handle of ours), a zombie main thread with a live thread is running."""
    marker = str(tmp_path)
    with subprocess.Popen([sys.executable, "-c", _MAIN_THREAD_EXITS_FIRST, "0.5", marker]) as other:
        _main_thread_gone(other.pid)
        assert is_running(other.pid, marker)
        deadline = time.monotonic() + 10
        while is_running(other.pid, marker):  # the sleeping thread ends by itself
            assert time.monotonic() < deadline, "a finished process still reads as running"
            time.sleep(0.05)
        assert other.wait(timeout=10) == 0  # an unreaped zombie, whose threads are all gone


def _archive(tmp_path: Path, *members: tuple[str, bytes | None, str]) -> Path:
    """A .tar.gz of (name, file content or None for a link, link target or "fifo") members."""
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, content, link in members:
            info = tarfile.TarInfo(name)
            if link == "fifo":
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
            elif content is None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return archive


@pytest.mark.parametrize("with_filter", [True, False])
@pytest.mark.parametrize(
    "member",
    [("../evil.txt", b"x", ""), ("out", None, "../../etc/passwd"), ("pipe", None, "fifo")],
    ids=["parent", "symlink-out", "fifo"],
)
def test_registry_archive_refuses_members_outside_its_folder_and_pipes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    with_filter: bool,
    member: tuple[str, bytes | None, str],
) -> None:
    """A member escaping the folder, or a pipe, is refused, with tarfile's filter or without it."""
    if not with_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)  # as on Python before 3.11.4
    into = tmp_path / "apicurio"
    into.mkdir()
    archive = _archive(tmp_path, ("lib/ok.jar", b"jar", ""), member)
    with pytest.raises(ValueError, match=r"a\.tar\.gz"):
        _extract(archive, into)
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("with_filter", [True, False])
def test_registry_archive_unpacks_files_and_inner_links(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    with_filter: bool,
) -> None:
    """Files and links that stay inside the folder unpack as they are."""
    if not with_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    into = tmp_path / "apicurio"
    into.mkdir()
    _extract(_archive(tmp_path, ("lib/a.jar", b"jar", ""), ("lib/b.jar", None, "a.jar")), into)
    assert (into / "lib" / "b.jar").read_bytes() == b"jar"


def _fake_maven(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Maven replaced by a function writing what the two goals write; returns the goals run."""
    calls: list[str] = []

    def mvn(pom: Path, goal: str, *options: str) -> None:
        assert pom.read_text() == artifacts._POM.read_text()  # Maven runs on a copy of the pom
        calls.append(goal)
        values = dict(option.removeprefix("-D").split("=", 1) for option in options)
        if goal == "dependency:build-classpath":
            Path(values["mdep.outputFile"]).write_text("/m2/kafka.jar:/m2/clients.jar\n")
        else:
            downloads = Path(values["outputDirectory"])
            downloads.mkdir(parents=True)
            archive = _archive(tmp_path, ("quarkus-run.jar", b"registry", ""))
            archive.rename(downloads / "apicurio-registry-app-3.0-all.tar.gz")

    monkeypatch.setattr(artifacts, "_mvn", mvn)
    return calls


def test_artifacts_cache_is_keyed_by_the_pom_content_not_its_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh checkout (same pom, new mtime) reuses the cache; a changed pom rebuilds it."""
    pom = tmp_path / "pom.xml"
    pom.write_text("<project>kafka 4.1</project>")
    monkeypatch.setattr(artifacts, "_POM", pom)
    monkeypatch.setenv("AGENTFLUX_CACHE_DIR", str(tmp_path / "cache"))
    calls = _fake_maven(monkeypatch, tmp_path)

    first = artifacts.fetch_artifacts()
    assert first.kafka_classpath == "/m2/kafka.jar:/m2/clients.jar"
    assert first.apicurio_jar.read_bytes() == b"registry"
    assert len(calls) == 2

    os.utime(pom, (1, 1))  # a clone or worktree: same content, another file time
    assert artifacts.fetch_artifacts() == first
    assert len(calls) == 2

    pom.write_text("<project>kafka 4.2</project>")
    assert artifacts.fetch_artifacts() == first  # same places, rebuilt in them
    assert len(calls) == 4
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        "apicurio",
        "kafka.classpath",
        "pom.stamp",
    ]  # the build folder and the replaced registry are gone


def test_a_failed_first_start_is_retried_and_its_cause_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new cluster's failed start is retried once; the old folder keeps the error beside it."""
    cluster = LocalCluster(tmp_path / "state")
    attempts: list[int] = []

    def up_once_failing(
        self: LocalCluster, nodes: int, timeout_s: float, *, secure: bool
    ) -> ClusterState:
        attempts.append(nodes)
        state = self._initial_state(nodes, secure=secure)
        self._save(state)
        if len(attempts) == 1:
            raise ClusterError("formatting node 1 failed: no space left")
        return state

    monkeypatch.setattr(LocalCluster, "_up", up_once_failing)
    state = cluster.up(1)
    assert attempts == [1, 1]
    assert cluster.load() == state
    failed = tmp_path / "state.failed-start"
    assert (failed / "error.txt").read_text() == "formatting node 1 failed: no space left\n"
