"""The base is real: Kafka produce and consume, schemas in Apicurio, a node loss survived."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from conftest import consume_count

from agentflux._local import read_gc_pauses
from agentflux._local._process import is_running
from agentflux.kafka import connection_kwargs

if TYPE_CHECKING:
    from conftest import Cluster

_SCHEMA = {
    "type": "record",
    "name": "Probe",
    "namespace": "agentflux.test",
    "fields": [{"name": "n", "type": "int"}],
}
_JSON = "application/vnd.schemaregistry.v1+json"


@pytest.mark.broker
async def test_produce_and_consume(cluster: Cluster, new_topic: str) -> None:
    """Records sent with acks=all come back from the broker in order, per key."""
    producer = AIOKafkaProducer(
        **connection_kwargs(cluster.settings), acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for i in range(50):
            await producer.send(new_topic, str(i).encode(), key=b"session-1")
        await producer.flush()
    finally:
        await producer.stop()
    values = [r.value for r in await consume_count(cluster.settings, new_topic, 50)]
    assert values == [str(i).encode() for i in range(50)]


@pytest.mark.broker
async def test_registry_round_trip(cluster: Cluster, topic_name: str) -> None:
    """A schema registered through the Confluent API reads back by id and by subject."""
    subject = f"{topic_name}-agentflux.test.Probe"
    async with httpx.AsyncClient(base_url=cluster.registry_url, timeout=10) as client:
        created = await client.post(
            f"/subjects/{subject}/versions",
            json={"schema": json.dumps(_SCHEMA)},
            headers={"Content-Type": _JSON},
        )
        created.raise_for_status()
        schema_id = created.json()["id"]
        by_id = (await client.get(f"/schemas/ids/{schema_id}")).json()
        latest = (await client.get(f"/subjects/{subject}/versions/latest")).json()
    assert json.loads(by_id["schema"]) == _SCHEMA
    assert latest["id"] == schema_id
    assert latest["subject"] == subject


@pytest.mark.broker
def test_local_broker_logs_its_gc_pauses(cluster: Cluster) -> None:
    """A local node's JVM logs each stop-the-world pause, read back with its wall-clock time."""
    pid = cluster.node_pid(1)
    # jcmd of the JDK running the node (a JRE without one is a broken test machine, not a skip).
    jcmd = Path(f"/proc/{pid}/exe").readlink().parent / "jcmd"
    assert jcmd.exists(), f"the node's Java runtime has no jcmd ({jcmd}); install a JDK"
    before = time.time()
    subprocess.run([jcmd, str(pid), "GC.run"], capture_output=True, check=True, timeout=60)
    after = time.time()
    # The JVM writes a pause's line as the pause ends, before System.gc() returns to jcmd.
    pauses = [p for p in read_gc_pauses(cluster.gc_log(1)) if p.ended >= before]
    assert pauses, "no pause logged for the collection jcmd asked for"
    assert all(before - 1 <= p.started <= p.ended <= after + 1 for p in pauses)


@pytest.mark.broker
@pytest.mark.slow
def test_cli_up_down_keeps_data_and_leaves_no_process() -> None:
    """`agentflux up/status/down` run a cluster whose schemas survive a restart, then stop it."""
    state_dir = Path(tempfile.mkdtemp(prefix="agentflux-cli-"))
    command = [sys.executable, "-c", "from agentflux.cli import main; main()"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTFLUX_")}
    try:

        def run(*args: str) -> str:
            done = subprocess.run(
                [*command, *args, "--state-dir", str(state_dir)],
                capture_output=True,
                text=True,
                env=env,
                timeout=300,
                check=True,
            )
            return done.stdout

        up = run("up")
        registry_url = next(
            line.split("=", 1)[1] for line in up.splitlines() if "AGENTFLUX_REGISTRY_URL=" in line
        )
        status = json.loads(run("status"))
        pids = [n["pid"] for n in status["nodes"]] + [status["registry"]["pid"]]
        assert all(n["running"] for n in status["nodes"])
        subject = "restart-agentflux.test.Probe"
        created = httpx.post(
            f"{registry_url}/subjects/{subject}/versions",
            json={"schema": json.dumps(_SCHEMA)},
            headers={"Content-Type": _JSON},
            timeout=10,
        )
        created.raise_for_status()

        run("down")
        assert not [pid for pid in pids if is_running(pid, str(state_dir))]

        run("up")
        again = httpx.get(f"{registry_url}/subjects/{subject}/versions/latest", timeout=10)
        assert again.status_code == 200, "the registry lost its schemas across a restart"
        assert again.json()["id"] == created.json()["id"]
        pids = [n["pid"] for n in json.loads(run("status"))["nodes"]]
    finally:
        subprocess.run([*command, "down", "--state-dir", str(state_dir)], env=env, check=False)
        shutil.rmtree(state_dir, ignore_errors=True)
    assert not [pid for pid in pids if is_running(pid, str(state_dir))]
