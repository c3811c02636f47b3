"""Dead-letter topics: list what a group could not handle, and re-drive it once the cause is fixed.

A group's dead-letter topic is read by a companion consumer group, ``<group>.redrive``, whose
committed offsets mark what was already re-driven: records before them are done, records after
them are pending. Re-driving applies a record through the group's own views and handlers, guarded
by event id in the group's store (``mark_redriven``), so running it twice, or
crashing half-way, never applies an effect twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from agentflux.consumers._commits import commit_as_group
from agentflux.kafka import connection_kwargs, stop_consumer, topic_partitions
from agentflux.schemas import CodecError, header_map

if TYPE_CHECKING:
    from collections.abc import Collection

    from agentflux.consumers._runner import GroupRunner
    from agentflux.kafka import AgentfluxSettings

__all__ = ["DeadLetter", "RedriveReport", "read_dead_letters", "redrive", "redrive_group_id"]

_log = structlog.get_logger("agentflux.redrive")
_READ_TIMEOUT_S = 60.0  # a partition that stops short of its end offset is an error, not a hang
Outcome = Literal["redriven", "already redriven", "skipped", "discarded", "failed", "not selected"]


def redrive_group_id(group_id: str) -> str:
    """The consumer group that tracks what was re-driven from ``group_id``'s dead-letter topic."""
    return f"{group_id}.redrive"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a dead-letter topic, with the failure its headers describe."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]
    pending: bool

    @property
    def error(self) -> str:
        """``ErrorType: message`` of the last failure."""
        return f"{self.headers.get('x-error-type', '?')}: {self.headers.get('x-error-message', '')}"

    @property
    def origin(self) -> tuple[str, int, int]:
        """Where the record came from: topic, partition, offset."""
        return (
            self.headers.get("x-original-topic", ""),
            int(self.headers.get("x-original-partition", "-1")),
            int(self.headers.get("x-original-offset", "-1")),
        )

    def summary(self) -> dict[str, object]:
        """The record's facts for listings and JSON output (no payload)."""
        topic, partition, offset = self.origin
        return {
            "partition": self.partition,
            "offset": self.offset,
            "status": "pending" if self.pending else "redriven",
            "event_id": self.headers.get("event_id"),
            "event_type": self.headers.get("event_type"),
            "session_id": None if self.key is None else self.key.decode(errors="replace"),
            "error": self.error,
            "attempts": self.headers.get("x-attempts"),
            "original": f"{topic}:{partition}:{offset}",
            "failed_at": self.headers.get("x-failed-at"),
        }


@dataclass(slots=True)
class RedriveReport:
    """What a re-drive did to each pending record, and where the redrive group now stands."""

    outcomes: list[tuple[DeadLetter, Outcome, str]] = field(default_factory=list)
    committed: dict[int, int] = field(default_factory=dict)

    def count(self, outcome: Outcome) -> int:
        """How many records had ``outcome``."""
        return sum(1 for _letter, o, _detail in self.outcomes if o == outcome)

    @property
    def failed(self) -> list[tuple[DeadLetter, str]]:
        """The records that failed again, with the error."""
        return [(letter, detail) for letter, o, detail in self.outcomes if o == "failed"]


async def read_dead_letters(
    settings: AgentfluxSettings, dlq_topic: str, group_id: str, *, include_redriven: bool = False
) -> list[DeadLetter]:
    """The dead-letter topic's records up to its current end, pending ones by default."""
    consumer = AIOKafkaConsumer(
        **connection_kwargs(settings),
        group_id=redrive_group_id(group_id),
        enable_auto_commit=False,
    )
    try:  # stopped even when starting fails, or it warns "Unclosed AIOKafkaConsumer" later
        await consumer.start()
        partitions = sorted(await topic_partitions(settings, consumer, dlq_topic))
        tps = [TopicPartition(dlq_topic, p) for p in partitions]
        if not tps:
            return []
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        letters: list[DeadLetter] = []
        for tp in tps:
            done = await consumer.committed(tp) or 0
            first = starts[tp] if include_redriven else max(starts[tp], done)
            if first >= ends[tp]:
                continue
            consumer.seek(tp, first)
            async with asyncio.timeout(_READ_TIMEOUT_S):
                await _read_to(consumer, tp, ends[tp], done, letters)
        return letters
    finally:
        await stop_consumer(consumer)


async def _read_to(
    consumer: AIOKafkaConsumer,
    tp: TopicPartition,
    end: int,
    done: int,
    letters: list[DeadLetter],
) -> None:
    """Append ``tp``'s records from the consumer's position up to ``end`` to ``letters``."""
    while await consumer.position(tp) < end:
        batch = await consumer.getmany(tp, timeout_ms=1000)
        letters.extend(
            DeadLetter(
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
                timestamp=r.timestamp,
                key=r.key,
                value=r.value,
                headers=header_map(r.headers),
                pending=r.offset >= done,
            )
            for r in batch.get(tp, [])
            if r.offset < end
        )


async def redrive(
    runner: GroupRunner,
    *,
    offsets: Collection[tuple[int, int]] | None = None,
    discard: Collection[tuple[int, int]] = (),
) -> RedriveReport:
    """Re-drive the pending dead letters of ``runner``'s group through its views and handlers.

    ``offsets`` chooses records as (partition, offset) pairs; by default all pending ones are
    re-driven. Records in ``discard`` are marked done without being applied: for records that
    can never succeed (bytes no schema decodes), so they stop holding back the ones after them.
    The redrive group's offset advances past every record that is done (re-driven now or
    before, skipped as unknown, discarded), up to the first one that failed or was not chosen.
    """
    letters = await read_dead_letters(runner.settings, runner.dlq_topic, runner.group_id)
    report = RedriveReport()
    for letter in letters:
        if (letter.partition, letter.offset) in discard:
            _log.warning(
                "dead letter discarded, its effect will never apply",
                group=runner.group_id,
                dlq_partition=letter.partition,
                dlq_offset=letter.offset,
                event_id=letter.headers.get("event_id"),
                error=letter.error,
            )
            report.outcomes.append((letter, "discarded", ""))
            continue
        if offsets is not None and (letter.partition, letter.offset) not in offsets:
            report.outcomes.append((letter, "not selected", ""))
            continue
        try:
            traceparent = letter.headers.get("traceparent")
            with runner.spans.redriven(letter.origin, letter.key, traceparent):
                outcome = await runner.redrive(letter.value or b"", letter.origin, letter.timestamp)
        except CodecError as exc:
            report.outcomes.append((letter, "failed", f"undecodable: {exc}"))
        except Exception as exc:  # noqa: BLE001  # the handler still fails; reported, kept pending
            report.outcomes.append((letter, "failed", f"{type(exc).__name__}: {exc}"))
        else:
            report.outcomes.append((letter, outcome, ""))
    report.committed = await _advance(runner, report)
    return report


async def _advance(runner: GroupRunner, report: RedriveReport) -> dict[int, int]:
    """Commit the redrive group past each partition's leading run of finished records."""
    stuck: set[int] = set()
    targets: dict[int, int] = {}
    for letter, outcome, _detail in report.outcomes:
        if letter.partition in stuck:
            continue
        if outcome in {"failed", "not selected"}:
            stuck.add(letter.partition)
        else:
            targets[letter.partition] = letter.offset + 1
    await commit_as_group(
        runner.settings,
        redrive_group_id(runner.group_id),
        {TopicPartition(runner.dlq_topic, p): o for p, o in targets.items()},
    )
    return targets
