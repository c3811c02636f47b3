"""Where the benchmarks run: the cluster the environment names or a local one, and their topics."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from agentflux._local import LocalCluster
from agentflux.kafka import AgentfluxSettings, connection_kwargs
from agentflux.schemas import EventCategory
from bench._broker import BrokerWatch

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["local_or_given_cluster", "make_topics"]


@contextlib.contextmanager
def local_or_given_cluster() -> Iterator[tuple[AgentfluxSettings, BrokerWatch | None]]:
    """The cluster the environment names, or a local 1-node one for the duration.

    With a local one, also a watch on its broker (CPU, GC pauses); None for a given cluster.
    """
    # Every run publishes under prefixes of its own: its publishers register their schemas
    # (the development opt-in), as they did before registration went through the gate.
    if os.environ.get("AGENTFLUX_BOOTSTRAP_SERVERS") and os.environ.get("AGENTFLUX_REGISTRY_URL"):
        yield AgentfluxSettings(auto_register_schemas=True), None
        return
    state_dir = Path(tempfile.mkdtemp(prefix="agentflux-bench-"))
    local = LocalCluster(state_dir)
    try:
        state = local.up(1)
        (node,) = state.nodes
        yield (
            AgentfluxSettings(
                bootstrap_servers=state.bootstrap_servers,
                registry_url=state.registry_url,
                auto_register_schemas=True,
            ),
            None if node.pid is None else BrokerWatch(node.pid, local.gc_log(node.node_id)),
        )
    finally:
        local.down()
        shutil.rmtree(state_dir, ignore_errors=True)


async def make_topics(settings: AgentfluxSettings, prefix: str, extra: list[str]) -> None:
    """The six category topics under ``prefix`` (6 partitions each), plus ``extra`` ones."""
    admin = AIOKafkaAdminClient(**connection_kwargs(settings))
    await admin.start()
    try:
        names = [prefix + c.topic for c in EventCategory] + extra
        await admin.create_topics([NewTopic(name, 6, 1) for name in names])
    finally:
        await admin.close()
