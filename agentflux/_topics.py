"""Making the cluster match the topic declaration: create, align configs, grow partitions.

Applying is idempotent: a second run finds nothing to change. Nothing is deleted unless asked;
a partition count is never lowered (Kafka cannot, and keyed order would break).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from agentflux.kafka import connection_kwargs
from agentflux.kafka._gate._clients import metadata_from_broker

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from agentflux.kafka import AgentfluxSettings
    from agentflux.schemas import TopicSpec

__all__ = [
    "PartitionDecreaseError",
    "TopicChange",
    "TopicMetadataError",
    "TopicState",
    "apply_topics",
    "describe_topics",
]

_TOPIC_OVERRIDE = 1  # DescribeConfigs config_source: set on the topic itself


class PartitionDecreaseError(RuntimeError):
    """The declaration asks for fewer partitions than the topic has."""


class TopicMetadataError(RuntimeError):
    """The cluster did not report a topic's partitions in time."""


@dataclass(frozen=True, slots=True)
class TopicState:
    """What the cluster has for one topic."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


@dataclass(slots=True)
class TopicChange:
    """What applying did (or, in a dry run, would do) to one topic."""

    name: str
    action: str
    details: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        """One readable line."""
        suffix = f": {'; '.join(self.details)}" if self.details else ""
        return f"{self.action} {self.name}{suffix}"


def fit_to_cluster(spec: TopicSpec, brokers: int) -> tuple[TopicSpec, list[str]]:
    """Cap replication and min ISR at what a smaller (development) cluster can host."""
    if spec.replication_factor <= brokers:
        return spec, []
    capped = spec.model_copy(
        update={
            "replication_factor": brokers,
            "min_insync_replicas": min(spec.min_insync_replicas, max(1, brokers - 1)),
        },
    )
    note = (
        f"{spec.name}: {brokers} broker(s) cannot host replication factor "
        f"{spec.replication_factor}; using {capped.replication_factor} with min ISR "
        f"{capped.min_insync_replicas} (development only)"
    )
    return capped, [note]


async def _described(
    admin: AIOKafkaAdminClient,
    names: list[str],
    timeout_s: float = 30.0,
    *,
    node_id: int | None = None,
    partitions: Mapping[str, int] | None = None,
) -> dict[str, dict[str, Any]]:
    """Topic metadata with partitions, asked again until every topic has them.

    A topic just created (or on a node just restarted) can answer without them for a moment.
    With ``node_id``, that broker is asked (else any); with ``partitions``, a topic counts once
    it has that many.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s

    def ready(topic: dict[str, Any]) -> bool:
        found = topic.get("partitions") or []
        return bool(found) and (partitions is None or len(found) >= partitions[topic["topic"]])

    while True:
        described = {t["topic"]: t for t in await _metadata(admin, names, node_id)}
        if all(ready(described.get(n, {"topic": n})) for n in names):
            return described
        if asyncio.get_running_loop().time() > deadline:
            missing = [n for n in names if not ready(described.get(n, {"topic": n}))]
            where = "" if node_id is None else f" on broker {node_id}"
            raise TopicMetadataError(
                f"no partition metadata for {missing}{where} within {timeout_s:.0f} s"
            )
        await asyncio.sleep(0.2)  # poll interval between two metadata requests


async def _metadata(
    admin: AIOKafkaAdminClient, names: list[str], node_id: int | None
) -> list[dict[str, Any]]:
    topics: list[dict[str, Any]]
    if node_id is None:
        topics = await admin.describe_topics(names)
    else:
        from_broker = await metadata_from_broker(admin, names, node_id)
        # With aiokafka's public API only, any broker answers: visibility on each is not checked.
        topics = await admin.describe_topics(names) if from_broker is None else from_broker
    return topics


async def _visible_on_every_broker(
    admin: AIOKafkaAdminClient,
    brokers: list[int],
    partitions: Mapping[str, int],
    timeout_s: float = 30.0,
) -> None:
    """Wait until each broker reports these topics with (at least) these partition counts.

    CreateTopics and CreatePartitions answer once the controller has the change; each broker
    learns it from the metadata log a moment later, and a client asking that broker meanwhile
    does not see it. Applying returns only once every broker (by node id) would answer.
    """
    for node_id in brokers:
        await _described(admin, list(partitions), timeout_s, node_id=node_id, partitions=partitions)


async def _states(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, TopicState]:
    existing = set(await admin.list_topics())
    present = [n for n in names if n in existing]
    if not present:
        return {}
    described = await _described(admin, present)
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in present],
    )
    configs: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            configs[resource["resource_name"]] = {
                entry["config_names"]: entry["config_value"]
                for entry in resource["config_entries"]
                if entry["config_source"] == _TOPIC_OVERRIDE
            }
    return {
        name: TopicState(
            name=name,
            partitions=len(described[name]["partitions"]),
            replication_factor=len(described[name]["partitions"][0]["replicas"]),
            configs=configs.get(name, {}),
        )
        for name in present
    }


async def describe_topics(
    settings: AgentfluxSettings, names: Iterable[str]
) -> dict[str, TopicState]:
    """Partitions, replication and topic-level configs of the named topics that exist."""
    admin = AIOKafkaAdminClient(**connection_kwargs(settings))
    await admin.start()
    try:
        return await _states(admin, list(names))
    finally:
        await admin.close()


def _plan(spec: TopicSpec, state: TopicState | None) -> TopicChange | None:
    if state is None:
        return TopicChange(
            spec.name,
            "create",
            [f"{spec.partitions} partitions, replication {spec.replication_factor}"],
        )
    details: list[str] = []
    if spec.partitions < state.partitions:
        raise PartitionDecreaseError(
            f"{spec.name} has {state.partitions} partitions and the declaration asks for "
            f"{spec.partitions}: Kafka cannot remove partitions, and moving keys between "
            "partitions would break per-session order. Raise the declared count instead.",
        )
    if spec.partitions > state.partitions:
        details.append(f"partitions {state.partitions} -> {spec.partitions}")
    details.extend(
        f"{key} {state.configs.get(key, '(default)')} -> {value}"
        for key, value in spec.configs().items()
        if state.configs.get(key) != value
    )
    if spec.replication_factor != state.replication_factor:
        details.append(
            f"replication {state.replication_factor} (declared {spec.replication_factor}; "
            "changing it needs a partition reassignment, not done here)",
        )
    changing = [d for d in details if "not done here" not in d]
    return TopicChange(spec.name, "update", details) if changing else None


async def apply_topics(
    settings: AgentfluxSettings,
    specs: Iterable[TopicSpec],
    *,
    dry_run: bool = False,
    delete_undeclared: Iterable[str] = (),
) -> tuple[list[TopicChange], list[str]]:
    """Make the cluster match ``specs``; return the changes made and any warnings.

    ``delete_undeclared`` names existing topics the caller explicitly wants removed because the
    declaration no longer has them; nothing else is ever deleted.
    """
    admin = AIOKafkaAdminClient(**connection_kwargs(settings))
    await admin.start()
    try:
        brokers = [broker["node_id"] for broker in (await admin.describe_cluster())["brokers"]]
        fitted: list[TopicSpec] = []
        warnings: list[str] = []
        for spec in specs:
            spec_fitted, notes = fit_to_cluster(spec, len(brokers))
            fitted.append(spec_fitted)
            warnings.extend(notes)
        states = await _states(admin, [s.name for s in fitted])
        changes = [c for s in fitted if (c := _plan(s, states.get(s.name))) is not None]
        warnings.extend(
            f"{s.name}: {states[s.name].partitions} -> {s.partitions} partitions moves keys: a "
            "session's earlier events stay in their old partition, its new ones go to another "
            "(see Operations, growing the category topics)"
            for s in fitted
            if s.category is not None
            and s.name in states
            and s.partitions > states[s.name].partitions
        )
        declared = {s.name for s in fitted}
        existing = set(await admin.list_topics())
        doomed = sorted(n for n in delete_undeclared if n in existing and n not in declared)
        changes.extend(TopicChange(name, "delete") for name in doomed)
        if not dry_run:
            await _execute(admin, fitted, states, doomed, brokers)
        return changes, warnings
    finally:
        await admin.close()


async def _execute(
    admin: AIOKafkaAdminClient,
    specs: list[TopicSpec],
    states: dict[str, TopicState],
    doomed: list[str],
    brokers: list[int],
) -> None:
    missing = [s for s in specs if s.name not in states]
    if missing:
        await admin.create_topics(
            [
                NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.configs())
                for s in missing
            ],
        )
    grow = {
        s.name: NewPartitions(total_count=s.partitions)
        for s in specs
        if s.name in states and s.partitions > states[s.name].partitions
    }
    if grow:
        await admin.create_partitions(grow)
    changed = {s.name: s.partitions for s in missing} | {n: p.total_count for n, p in grow.items()}
    if changed:
        await _visible_on_every_broker(admin, brokers, changed)
    drifted = [
        s
        for s in specs
        if s.name in states
        and any(states[s.name].configs.get(k) != v for k, v in s.configs().items())
    ]
    if drifted:
        # AlterConfigs replaces the topic's overrides with this set: the declaration owns them.
        resources: list[Any] = [
            ConfigResource(ConfigResourceType.TOPIC, s.name, configs=s.configs()) for s in drifted
        ]
        await admin.alter_configs(resources)
    if doomed:
        await admin.delete_topics(doomed)
