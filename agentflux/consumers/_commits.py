"""Committing offsets: a member's handled offsets in the background, or a group's from outside."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from agentflux.consumers._rebalance import by_topic
from agentflux.consumers._timing import wait_at_most
from agentflux.kafka import connection_kwargs, stop_consumer

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from aiokafka.structs import TopicPartition

    from agentflux.kafka import AgentfluxSettings

__all__ = ["BackgroundCommits", "commit_as_group"]

_log = structlog.get_logger("agentflux.runner")


class BackgroundCommits:
    """A member's handled offsets, committed in the background at most every ``interval_s``.

    A commit per small batch costs the broker enough to slow producers sharing it; one
    background task commits everything handled so far instead. At-least-once holds, since only
    handled offsets go; a failed commit keeps them and retries with backoff.

    No background commit goes out while the member's generation is changing: from a revocation
    (``hold``, after the revocation's own commit, which waits for one in flight) until the next
    assignment (``release``). aiokafka forgets the member's id when a commit is refused for its
    generation, even when the answer comes after the member joined the next one: the member
    then joins again under a new id, and the group waits for the forgotten one until its session
    times out (10 s by default), a rebalance that each commit during it starts again. librdkafka
    fixed the same (its pull request 4908).
    """

    def __init__(self, group_id: str, interval_s: float, backoff: Callable[[int], float]) -> None:
        """Commit for ``group_id``; ``backoff(n)`` is the pause after the n-th failure in a row."""
        self.group_id = group_id
        self.consumer: AIOKafkaConsumer | None = None  # the member's, once it has started
        self._interval_s = interval_s
        self._backoff = backoff
        self._uncommitted: dict[TopicPartition, OffsetAndMetadata] = {}
        self._committing: asyncio.Task[None] | None = None
        self._wanted = asyncio.Event()  # set: commit now, no more waiting for the interval
        self._in_generation = asyncio.Event()  # clear: between a revocation and an assignment
        self._in_generation.set()
        self._last = 0.0

    def handled(self, tp: TopicPartition, next_offset: int) -> None:
        """``tp`` is handled up to ``next_offset`` (the offset the group resumes at)."""
        self._uncommitted[tp] = OffsetAndMetadata(next_offset, "")

    def hold(self) -> None:
        """The member's generation is changing: background commits wait for ``release``."""
        self._in_generation.clear()

    def release(self) -> None:
        """The member has its partitions of the group's current generation: commit again."""
        self._in_generation.set()

    def soon(self) -> None:
        """Commit what is handled in the background, so the next fetch does not wait for it."""
        if self._committing is None or self._committing.done():
            self._committing = asyncio.get_running_loop().create_task(self._commit_in_background())

    async def _commit_in_background(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0  # in a row; a commit that works resets it
        pause = self._interval_s  # after failures: their backoff, when it is longer
        while self._uncommitted:
            await wait_at_most(self._wanted, self._last + pause - loop.time())
            if not self._in_generation.is_set():
                await _first_set(self._in_generation, self._wanted)
            if self._wanted.is_set():
                return  # now() waits for this task, then commits (or fails) itself
            try:
                await self._commit_once()
            except KafkaError as exc:  # e.g. a rebalance under way
                if self._wanted.is_set():
                    return  # now() waits for this task, then commits (or fails) itself
                # Retried without waiting for more records: an idle partition's handled offsets
                # would otherwise stay uncommitted (and be handled again after a crash).
                failures += 1
                pause = max(self._interval_s, self._backoff(failures))
                _log.warning(
                    "commit failed, will retry",
                    group=self.group_id,
                    error=repr(exc),
                    retry_in_s=pause,
                )
            else:
                failures, pause = 0, self._interval_s
            self._last = loop.time()

    async def _commit_once(self) -> None:
        if self.consumer is None:
            return  # nothing was handled: the member never started
        offsets, self._uncommitted = self._uncommitted, {}
        # A commit that failed while its partitions were revoked leaves offsets this member may no
        # longer commit (aiokafka refuses the whole commit then); their new owner re-reads them.
        assigned = self.consumer.assignment()
        if not assigned.issuperset(offsets):
            _log.warning(
                "handled offsets of partitions no longer assigned are not committed",
                group=self.group_id,
                partitions=by_topic(tp for tp in offsets if tp not in assigned),
            )
            offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
            if not offsets:
                return
        try:
            await self.consumer.commit(offsets)
        except KafkaError:
            self._uncommitted = offsets | self._uncommitted  # never lose a handled offset
            raise

    async def cancel(self) -> None:
        """Stop committing in the background (a run that failed: its next owner re-reads)."""
        committing, self._committing = self._committing, None
        if committing is not None and not committing.done():
            committing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await committing

    async def now(self) -> None:
        """Commit whatever is handled and not yet committed, without waiting for the interval."""
        self._wanted.set()
        try:
            if self._committing is not None:
                await self._committing
                self._committing = None
            while self._uncommitted:
                await self._commit_once()
        finally:
            self._wanted.clear()


async def _first_set(*events: asyncio.Event) -> None:
    """Return once any of ``events`` is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def commit_as_group(
    settings: AgentfluxSettings,
    group: str,
    offsets: Mapping[TopicPartition, int],
    note: str = "",
) -> None:
    """Commit ``offsets`` for ``group``; the broker takes it only while the group has no members.

    A consumer that only assigns (never subscribes) commits as the group without joining it.
    """
    if not offsets:
        return
    committer = AIOKafkaConsumer(
        **connection_kwargs(settings), group_id=group, enable_auto_commit=False
    )
    try:  # stopped even when starting fails, or it warns "Unclosed AIOKafkaConsumer" later
        await committer.start()
        committer.assign(list(offsets))
        await committer.commit({tp: OffsetAndMetadata(o, note) for tp, o in offsets.items()})
    finally:
        await stop_consumer(committer)
