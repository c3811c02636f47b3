"""What the runner does around a rebalance: commit before partitions go, log what came."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import structlog
from aiokafka import ConsumerRebalanceListener

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Iterable

    from aiokafka.structs import TopicPartition

__all__ = ["Rebalances", "by_topic"]

_log = structlog.get_logger("agentflux.runner")


class _Member(Protocol):
    """What the listener needs of the runner."""

    group_id: str
    ready: asyncio.Event
    assignment: dict[str, list[int]]

    async def give_up_partitions(self, revoked: Iterable[TopicPartition]) -> None: ...

    def rejoined(self) -> None: ...


def by_topic(partitions: Iterable[TopicPartition]) -> dict[str, list[int]]:
    """Partitions as {topic: [numbers]}: short enough to log at every rebalance."""
    grouped: dict[str, list[int]] = {}
    for tp in sorted(partitions):
        grouped.setdefault(tp.topic, []).append(tp.partition)
    return grouped


class Rebalances(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped here
    def __init__(self, runner: _Member) -> None:
        """Listen for ``runner``."""
        self._runner = runner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        """Finish or leave the batch in flight and commit, before the partitions go."""
        await self._runner.give_up_partitions(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        """Log the new assignment; the runner is ready while it has partitions.

        A member left without any (more members than partitions, or all of them moved to
        others) is not ready until a later rebalance gives it some: it handles nothing.
        """
        # Start at the committed offsets, never at the store's: after a replay the group must
        # re-read, and the store's offset guard keeps the re-read effects from applying twice.
        _log.info(
            "partitions assigned",
            group=self._runner.group_id,
            partitions=by_topic(assigned),
        )
        self._runner.assignment = by_topic(assigned)
        self._runner.rejoined()
        if assigned:
            self._runner.ready.set()  # before the first fetch of the new assignment
        else:
            self._runner.ready.clear()
