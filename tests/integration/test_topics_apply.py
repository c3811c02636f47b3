"""Topics as code against the real broker: create, align, grow, refuse shrinking, idempotent."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from agentflux._topics import PartitionDecreaseError, apply_topics, describe_topics
from agentflux.kafka import connection_kwargs
from agentflux.schemas import TopicSpec, load_topics

if TYPE_CHECKING:
    from conftest import Cluster


def _spec(name: str, **changes: object) -> TopicSpec:
    base = {
        "name": name,
        "partitions": 3,
        "replication_factor": 1,
        "min_insync_replicas": 1,
        "retention_ms": 86_400_000,
        "retention_bytes": -1,
        "cleanup_policy": "delete",
        "owner": "tests",
        "description": "a test topic",
    }
    return TopicSpec.model_validate(base | changes)


@pytest.mark.broker
async def test_apply_twice_creates_then_changes_nothing(cluster: Cluster, topic_name: str) -> None:
    """The first apply creates the topic as declared; the second reports no change."""
    spec = _spec(topic_name)
    first, _ = await apply_topics(cluster.settings, [spec])
    assert [c.action for c in first] == ["create"]
    second, _ = await apply_topics(cluster.settings, [spec])
    assert second == []
    state = (await describe_topics(cluster.settings, [topic_name]))[topic_name]
    assert state.partitions == 3
    assert state.configs["retention.ms"] == "86400000"
    assert state.configs["cleanup.policy"] == "delete"


@pytest.mark.broker
async def test_drifted_config_is_realigned(cluster: Cluster, topic_name: str) -> None:
    """A retention changed behind the declaration's back is reported and set back."""
    await apply_topics(cluster.settings, [_spec(topic_name)])
    admin = AIOKafkaAdminClient(**connection_kwargs(cluster.settings))
    await admin.start()
    try:
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic_name, configs={"retention.ms": "1000"})]
        )
    finally:
        await admin.close()
    changes, _ = await apply_topics(cluster.settings, [_spec(topic_name)])
    assert len(changes) == 1
    assert "retention.ms 1000 -> 86400000" in str(changes[0])
    state = (await describe_topics(cluster.settings, [topic_name]))[topic_name]
    assert state.configs["retention.ms"] == "86400000"


@pytest.mark.broker
async def test_partitions_grow_but_never_shrink(cluster: Cluster, topic_name: str) -> None:
    """More partitions are added; fewer are refused with a clear message and nothing changes."""
    await apply_topics(cluster.settings, [_spec(topic_name)])
    changes, _ = await apply_topics(cluster.settings, [_spec(topic_name, partitions=5)])
    assert "partitions 3 -> 5" in str(changes[0])
    with pytest.raises(PartitionDecreaseError, match="cannot remove partitions"):
        await apply_topics(cluster.settings, [_spec(topic_name, partitions=2)])
    assert (await describe_topics(cluster.settings, [topic_name]))[topic_name].partitions == 5


@pytest.mark.broker
async def test_nothing_is_deleted_unless_named(cluster: Cluster, topic_name: str) -> None:
    """An undeclared topic survives an apply, and is deleted only when explicitly named."""
    await apply_topics(cluster.settings, [_spec(topic_name)])
    other = f"{topic_name}-other"
    assert await apply_topics(cluster.settings, [_spec(other)])
    assert topic_name in await describe_topics(cluster.settings, [topic_name])
    changes, _ = await apply_topics(
        cluster.settings, [_spec(other)], delete_undeclared=[topic_name]
    )
    assert [str(c) for c in changes] == [f"delete {topic_name}"]


@pytest.mark.broker
async def test_the_real_declaration_applies_idempotently(cluster: Cluster) -> None:
    """The six category topics from topics.yaml apply, and a second apply changes nothing."""
    declaration = load_topics()
    await apply_topics(cluster.settings, declaration.topics)
    again, warnings = await apply_topics(cluster.settings, declaration.topics)
    assert again == []
    states = await describe_topics(cluster.settings, [t.name for t in declaration.topics])
    assert set(states) == {t.name for t in declaration.topics}
    assert states["hitl.events"].configs["retention.ms"] == "31536000000"
    if cluster.nodes == 1:
        assert len(warnings) == 6  # replication 3 capped on a 1-node cluster, and said so


@pytest.mark.cluster3
async def test_three_nodes_get_the_declared_durability(cluster3: Cluster, topic_name: str) -> None:
    """On 3 nodes a topic gets replication 3 and min.insync.replicas 2, without warnings."""
    spec = _spec(topic_name, replication_factor=3, min_insync_replicas=2)
    _, warnings = await apply_topics(cluster3.settings, [spec])
    assert warnings == []
    state = (await describe_topics(cluster3.settings, [topic_name]))[topic_name]
    assert state.replication_factor == 3
    assert state.configs["min.insync.replicas"] == "2"


def test_isr_above_replication_is_refused() -> None:
    """A declaration whose min ISR exceeds its replication factor does not load."""
    with pytest.raises(ValueError, match="min_insync_replicas"):
        _spec("t", replication_factor=1, min_insync_replicas=2)
