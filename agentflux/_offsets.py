"""Consumer-group offsets: lag per partition, and moving a group (replay) safely.

Moving offsets commits on the group's behalf, which the broker only accepts while the group has no
active members; we check that first and refuse with a clear error instead of racing the members.
"""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from agentflux.consumers._commits import commit_as_group
from agentflux.consumers._start import StartPoint, StartPointError
from agentflux.kafka import connection_kwargs, stop_consumer, topic_partitions
from agentflux.kafka._gate._clients import delete_group_on

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    from agentflux.kafka import AgentfluxSettings

__all__ = [
    "GroupActiveError",
    "PartitionLag",
    "ReplayPlan",
    "ReplayTarget",
    "ReplayTargetError",
    "UnknownGroupError",
    "UnknownTopicError",
    "admin_client",
    "committed_offsets",
    "delete_group",
    "execute_replay",
    "group_lag",
    "list_groups",
    "parse_replay_target",
    "partitions_of",
    "plan_replay",
    "probe_consumer",
]

_log = structlog.get_logger("agentflux.offsets")

_EXACT_OFFSET = re.compile(r"^(?P<topic>[A-Za-z0-9._-]+):(?P<partition>\d+):(?P<offset>\d+)$")
# States in which a classic group has members that own partitions and commit themselves.
_ACTIVE_STATES = frozenset({"Stable", "PreparingRebalance", "CompletingRebalance"})


class GroupActiveError(RuntimeError):
    """The group has active members, so its offsets cannot be moved under them."""


class ReplayTargetError(ValueError):
    """A replay target that is not earliest, latest, an ISO datetime or topic:partition:offset."""


class UnknownGroupError(ReplayTargetError):
    """The cluster has no such consumer group (or it never committed an offset)."""


class UnknownTopicError(ReplayTargetError):
    """The cluster has no such topic."""


@asynccontextmanager
async def admin_client(settings: AgentfluxSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on exit even when starting it failed."""
    admin = AIOKafkaAdminClient(**connection_kwargs(settings))
    try:
        await admin.start()
        yield admin
    finally:
        await admin.close()


@asynccontextmanager
async def probe_consumer(settings: AgentfluxSettings) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer with no group, stopped on exit even when starting it failed.

    A consumer whose ``start()`` failed and was never stopped warns "Unclosed AIOKafkaConsumer"
    when it is collected, after the command's own message.
    """
    consumer = AIOKafkaConsumer(**connection_kwargs(settings), enable_auto_commit=False)
    try:
        await consumer.start()
        yield consumer
    finally:
        await stop_consumer(consumer)


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """How far one group is behind on one partition."""

    group: str
    topic: str
    partition: int
    committed: int | None
    end_offset: int

    @property
    def lag(self) -> int:
        """Records not yet committed by the group (all of them if it never committed)."""
        return self.end_offset - (self.committed or 0)


@dataclass(frozen=True, slots=True)
class ReplayTarget:
    """Where to move a group: a position keyword, a point in time, or one exact offset."""

    kind: Literal["earliest", "latest", "time", "offset"]
    when: datetime | None = None
    exact: tuple[TopicPartition, int] | None = None


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """The offsets a replay would commit, next to the ones the group has now."""

    group: str
    moves: dict[TopicPartition, tuple[int | None, int]]

    @property
    def changes(self) -> dict[TopicPartition, tuple[int | None, int]]:
        """Only the partitions whose offset would actually move."""
        return {tp: (old, new) for tp, (old, new) in self.moves.items() if old != new}


def parse_replay_target(text: str) -> ReplayTarget:
    """Read ``earliest``, ``latest``, an ISO 8601 datetime, a duration back or ``t:p:offset``."""
    exact = _EXACT_OFFSET.match(text)
    # "2026-11-24T10:00:00" also matches topic:partition:offset: a datetime is tried first.
    try:
        start = StartPoint.parse(text)
    except StartPointError:
        if exact is None:
            raise ReplayTargetError(
                f"replay target {text!r}: expected earliest, latest, an ISO datetime "
                "(e.g. 2026-11-24T10:00:00+00:00), a duration back (7d, 12h) or "
                "topic:partition:offset",
            ) from None
        tp = TopicPartition(exact["topic"], int(exact["partition"]))
        return ReplayTarget(kind="offset", exact=(tp, int(exact["offset"])))
    # A datetime without zone is read as UTC (said so in the help); a duration from now.
    return ReplayTarget(kind=start.kind, when=start.moment(datetime.now(UTC)))


async def list_groups(settings: AgentfluxSettings) -> list[str]:
    """Every consumer group the cluster knows, sorted."""
    async with admin_client(settings) as admin:
        return sorted(group for group, _protocol in await admin.list_consumer_groups())


async def group_lag(settings: AgentfluxSettings, groups: Iterable[str]) -> list[PartitionLag]:
    """Committed offset, end offset and lag of each partition each group has committed on."""
    async with admin_client(settings) as admin, probe_consumer(settings) as probe:
        rows: list[PartitionLag] = []
        for group in groups:
            committed = await admin.list_consumer_group_offsets(group)
            if not committed:
                continue
            ends = await probe.end_offsets(list(committed))
            rows.extend(
                PartitionLag(
                    group=group,
                    topic=tp.topic,
                    partition=tp.partition,
                    committed=meta.offset if meta.offset >= 0 else None,
                    end_offset=ends[tp],
                )
                for tp, meta in sorted(committed.items())
            )
        return rows


async def committed_offsets(admin: AIOKafkaAdminClient, group: str) -> dict[TopicPartition, int]:
    """The offsets ``group`` has committed, per partition (never-committed ones left out)."""
    offsets = await admin.list_consumer_group_offsets(group)
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def _active_members(admin: AIOKafkaAdminClient, group: str) -> int:
    response = (await admin.describe_consumer_groups([group]))[0].to_object()
    description = response["groups"][0]
    if description["state"] not in _ACTIVE_STATES:
        return 0
    return len(description["members"])


async def partitions_of(
    settings: AgentfluxSettings,
    consumer: AIOKafkaConsumer,
    topics: Iterable[str],
) -> list[TopicPartition]:
    """Every partition of ``topics``; UnknownTopicError names a topic the cluster lacks."""
    partitions: list[TopicPartition] = []
    for topic in topics:
        ids = await topic_partitions(settings, consumer, topic)
        if not ids:
            raise UnknownTopicError(f"topic {topic!r} does not exist on the cluster")
        partitions.extend(TopicPartition(topic, p) for p in sorted(ids))
    return partitions


async def _target_offsets(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    target: ReplayTarget,
) -> dict[TopicPartition, int]:
    if target.kind == "earliest":
        return dict(await consumer.beginning_offsets(partitions))
    ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    if target.kind == "latest":
        return ends
    if target.kind == "offset":
        assert target.exact is not None  # noqa: S101  # set together with kind by the parser
        tp, offset = target.exact
        if tp not in ends:
            raise ReplayTargetError(
                f"{tp.topic}:{tp.partition} is not among the group's partitions"
            )
        return {tp: offset}
    assert target.when is not None  # noqa: S101  # set together with kind by the parser
    timestamp_ms = int(target.when.timestamp() * 1000)
    found = await consumer.offsets_for_times(dict.fromkeys(partitions, timestamp_ms))
    # A partition with no record at or after the time moves to its end: nothing to reprocess there.
    return {tp: (found[tp].offset if found[tp] is not None else ends[tp]) for tp in partitions}


async def plan_replay(
    settings: AgentfluxSettings,
    group: str,
    target: ReplayTarget,
    topics: Iterable[str] | None = None,
) -> ReplayPlan:
    """Work out the offsets a replay would commit, without changing anything.

    The topics default to those the group has committed offsets on.
    """
    async with admin_client(settings) as admin, probe_consumer(settings) as consumer:
        committed = await committed_offsets(admin, group)
        chosen = sorted(set(topics) if topics else {tp.topic for tp in committed})
        if not chosen:
            raise UnknownGroupError(
                f"group {group!r} has no committed offsets; name the topics with --topic",
            )
        partitions = await partitions_of(settings, consumer, chosen)
        targets = await _target_offsets(consumer, partitions, target)
        moves = {tp: (committed.get(tp), offset) for tp, offset in sorted(targets.items())}
        return ReplayPlan(group=group, moves=moves)


async def execute_replay(settings: AgentfluxSettings, plan: ReplayPlan) -> None:
    """Commit the plan's offsets for its group; refuse while the group has active members."""
    async with admin_client(settings) as admin:
        members = await _active_members(admin, plan.group)
    if members:
        raise GroupActiveError(
            f"group {plan.group!r} has {members} active member(s); stop its consumers "
            "before moving its offsets (they would overwrite the new positions)",
        )
    await commit_as_group(
        settings,
        plan.group,
        {tp: new for tp, (_old, new) in plan.moves.items()},
        "agentflux replay",
    )


async def delete_group(settings: AgentfluxSettings, group: str) -> None:
    """Delete an inactive group and its committed offsets (for temporary groups)."""
    async with admin_client(settings) as admin:
        coordinator = await admin.find_coordinator(group)
        results = await delete_group_on(admin, coordinator, group)
    if results is None:
        _log.warning(
            "group not deleted: aiokafka's public API cannot; its offsets expire "
            "after the broker's offsets.retention.minutes",
            group=group,
        )
        return
    for name, error_code in results:
        if error_code:
            raise GroupActiveError(
                f"group {name!r} could not be deleted (Kafka error {error_code})"
            )
