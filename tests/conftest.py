"""Shared fixtures: a real Kafka cluster and schema registry for the tests that need one.

Where the cluster comes from is chosen by ``AGENTFLUX_TEST_CLUSTER`` (see ``_clusters``): the
project's own local launcher (real Kafka and Apicurio processes) unless ``docker`` or
``external`` is asked for; an unknown value stops the session. Fixtures start nothing until a
test asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from _clusters import ClusterChoice, choose_cluster, describe_choice, docker_cluster
from _postgres_server import postgres_server
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import AIOKafkaConnection
from aiokafka.structs import TopicPartition

from agentflux import _logging as agentflux_logging
from agentflux._local import LocalCluster
from agentflux._offsets import partitions_of
from agentflux.kafka import AgentfluxSettings, connection_kwargs

if TYPE_CHECKING:
    from collections.abc import Iterator

    from aiokafka.structs import ConsumerRecord


@dataclass
class Cluster:
    """A running cluster and registry, and the settings that reach them."""

    bootstrap_servers: str
    registry_url: str
    nodes: int = 1
    local: LocalCluster | None = None
    settings: AgentfluxSettings = field(init=False)

    def __post_init__(self) -> None:
        """Derive the settings every client in the tests is built from."""
        self.settings = AgentfluxSettings(
            bootstrap_servers=self.bootstrap_servers, registry_url=self.registry_url
        )

    def _launcher(self) -> LocalCluster:
        if self.local is None:
            pytest.fail("this cluster was not started by the local launcher; it cannot stop nodes")
        return self.local

    def stop_node(self, node_id: int) -> None:
        """Stop one node cleanly (SIGTERM)."""
        self._launcher().stop_node(node_id)

    def kill_node(self, node_id: int) -> None:
        """Crash one node (SIGKILL)."""
        self._launcher().stop_node(node_id, kill=True)

    def start_node(self, node_id: int) -> None:
        """Start a stopped node and wait until it serves metadata."""
        self._launcher().start_node(node_id)

    def stop_registry(self) -> None:
        """Crash the schema registry (SIGKILL); the brokers keep running."""
        self._launcher().stop_registry(kill=True)

    def start_registry(self) -> None:
        """Start the registry again and wait until it answers."""
        self._launcher().start_registry()

    def node_pid(self, node_id: int) -> int:
        """The process id of a running node."""
        state = self._launcher().load()
        pid = None if state is None else next(n.pid for n in state.nodes if n.node_id == node_id)
        if pid is None:
            pytest.fail(f"node {node_id} is not running")
        return pid

    def gc_log(self, node_id: int) -> Path:
        """One node's garbage-collection log."""
        return self._launcher().gc_log(node_id)

    def broker_port_of(self, node_id: int) -> int:
        """The client port of one node, to map a partition leader to a node."""
        state = self._launcher().load()
        assert state is not None
        return next(n.broker_port for n in state.nodes if n.node_id == node_id)

    async def leader_of(self, topic: str, partition: int) -> int:
        """The node id currently leading ``topic``/``partition``, asked from the cluster."""
        consumer = AIOKafkaConsumer(**connection_kwargs(self.settings))
        await consumer.start()
        try:
            # Asked until known: one metadata request can go to a node not answering yet.
            return (await leaders_known(consumer, topic))[partition]
        finally:
            await consumer.stop()


@contextlib.contextmanager
def _launched_cluster(nodes: int) -> Iterator[Cluster]:
    state_dir = Path(tempfile.mkdtemp(prefix=f"agentflux-test-{nodes}n-"))
    local = LocalCluster(state_dir)
    try:
        state = local.up(nodes)
        yield Cluster(state.bootstrap_servers, state.registry_url, nodes=nodes, local=local)
    finally:
        local.down()
        shutil.rmtree(state_dir, ignore_errors=True)


_CLUSTER_CHOICE = pytest.StashKey[ClusterChoice]()
_CLUSTER_LINE = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Read AGENTFLUX_TEST_CLUSTER once, before any test: a wrong value stops the session here."""
    choice = config.stash[_CLUSTER_CHOICE] = choose_cluster(os.environ)
    config.stash[_CLUSTER_LINE] = describe_choice(choice, os.environ)
    if choice != "external":
        # Servers left in the shell for the command line must not reach a test, or a child
        # process it starts, through settings read from the environment.
        for name in ("AGENTFLUX_BOOTSTRAP_SERVERS", "AGENTFLUX_REGISTRY_URL"):
            os.environ.pop(name, None)


@pytest.fixture(autouse=True)
def _logging_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A command run in-process configures logging process-wide: each test starts from scratch.

    Loggers are not cached (capture_logs must see them all), and after the test structlog's
    defaults, the root logger and warnings (raised, not logged: filterwarnings=error) are back.
    """
    monkeypatch.setattr(agentflux_logging, "CACHE_LOGGERS", False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in ("aiokafka", "httpx"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    logging.captureWarnings(capture=False)


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> Iterator[Cluster]:
    """The cluster for broker tests: the launcher's, or the one AGENTFLUX_TEST_CLUSTER names."""
    choice = pytestconfig.stash[_CLUSTER_CHOICE]
    if choice == "external":
        yield Cluster(
            bootstrap_servers=os.environ["AGENTFLUX_BOOTSTRAP_SERVERS"],
            registry_url=os.environ["AGENTFLUX_REGISTRY_URL"],
        )
    elif choice == "docker":
        with docker_cluster() as (bootstrap, registry):
            yield Cluster(bootstrap_servers=bootstrap, registry_url=registry)
    else:
        with _launched_cluster(1) as started:
            yield started


@pytest.fixture(scope="session")
def cluster3() -> Iterator[Cluster]:
    """A 3-node KRaft cluster of our own (RF 3, min ISR 2) whose nodes tests may stop and kill."""
    with _launched_cluster(3) as started:
        yield started


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses."""
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    return f"test-{stem}-{uuid.uuid4().hex[:8]}"


async def read_to_end(
    settings: AgentfluxSettings, topics: list[str], **options: Any
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topics`` from the beginning up to their end offsets now, in log order.

    Reading to the end offsets, not to a count: a publish that failed may still have been written
    (a leader that appended it but timed out waiting for replicas), and must not hide another.
    ``options`` go to the consumer (``isolation_level="read_committed"``, say).
    """
    consumer = AIOKafkaConsumer(**connection_kwargs(settings), enable_auto_commit=False, **options)
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        partitions = await partitions_of(settings, consumer, topics)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        async with asyncio.timeout(120):
            while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
                batches = await consumer.getmany(timeout_ms=1000)
                records.extend(r for batch in batches.values() for r in batch)
    finally:
        await consumer.stop()
    return records


async def consume_count(
    settings: AgentfluxSettings, topic: str, expected: int, **options: Any
) -> list[ConsumerRecord[bytes, bytes]]:
    """At least ``expected`` records of ``topic`` from its earliest offsets (no group)."""
    consumer = AIOKafkaConsumer(
        topic,
        **connection_kwargs(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **options,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        async with asyncio.timeout(120):
            while len(records) < expected:
                batches = await consumer.getmany(timeout_ms=1000)
                records.extend(r for batch in batches.values() for r in batch)
    finally:
        await consumer.stop()
    return records


async def create_topic(
    settings: AgentfluxSettings,
    name: str,
    *,
    partitions: int = 3,
    replication_factor: int = 1,
    configs: dict[str, str] | None = None,
) -> str:
    """Create a topic and wait until every partition has a leader, asking the cluster."""
    admin = AIOKafkaAdminClient(**connection_kwargs(settings))
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, partitions, replication_factor, topic_configs=configs or {})]
        )
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(**connection_kwargs(settings))
    await consumer.start()
    try:
        await leaders_known(consumer, name, partitions)
    finally:
        await consumer.stop()
    return name


async def leaders_known(
    consumer: AIOKafkaConsumer, topic: str, partitions: int | None = None
) -> dict[int, int]:
    """Each partition's leader node, asking the cluster until every one (of ``partitions``) has one."""
    for _ in range(200):
        await consumer._client.force_metadata_update()
        cluster = consumer._client.cluster
        ids = cluster.partitions_for_topic(topic) or set()
        leaders = {p: cluster.leader_for_partition(TopicPartition(topic, p)) for p in ids}
        if (
            ids
            and (partitions is None or len(ids) == partitions)
            and all(leader is not None and leader >= 0 for leader in leaders.values())
        ):
            return {p: int(leader) for p, leader in leaders.items()}
        await asyncio.sleep(0.05)  # poll interval between metadata requests
    pytest.fail(f"topic {topic} has no leader for every partition")


@pytest.fixture
async def new_topic(cluster: Cluster, topic_name: str) -> str:
    """A fresh 3-partition topic on the shared cluster."""
    return await create_topic(cluster.settings, topic_name)


def _open_kafka_connections() -> dict[int, AIOKafkaConnection]:
    """Every aiokafka broker connection still open in this process, after a full collection."""
    gc.collect()
    return {
        id(found): found
        for found in gc.get_objects()
        if isinstance(found, AIOKafkaConnection) and found.connected()
    }


@pytest.fixture(autouse=True)
def _no_broker_connection_left_open(request: pytest.FixtureRequest) -> Iterator[None]:
    """A broker test fails if it leaves a connection open: some client was never (fully) stopped.

    Checked per test, so the test that leaked is named; otherwise the leak surfaces only as
    ResourceWarnings when the garbage collector meets the sockets, often at the session's end.
    """
    if not {"cluster", "cluster3", "secured", "secured3"} & set(request.fixturenames):
        yield
        return
    before = _open_kafka_connections()
    yield
    left = [conn for key, conn in _open_kafka_connections().items() if key not in before]
    for conn in left:
        with contextlib.suppress(RuntimeError):  # its event loop may be closed already
            conn.close()  # so the next tests do not inherit it
    assert not left, f"connections left open: {left}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Broker tests run after the fast ones, so a broken unit test fails the run early."""
    items.sort(
        key=lambda item: (
            any(item.iter_markers(name="broker")) or any(item.iter_markers(name="cluster3"))
        )
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say where the broker tests' cluster comes from, and why."""
    return [f"agentflux cluster: {config.stash[_CLUSTER_LINE]}"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL: AGENTFLUX_TEST_POSTGRES_URL, or a private server started for the run."""
    configured = os.environ.get("AGENTFLUX_TEST_POSTGRES_URL")
    if configured:
        yield configured
        return
    with postgres_server() as server:
        yield server.url


async def fresh_postgres_database(postgres_url: str) -> str:
    """Create an empty database on the test server and return its URL."""
    import asyncpg  # noqa: PLC0415  # only PostgreSQL tests need it

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"
