"""The HITL timeout job: every approval nobody answered in time gets one ``hitl_timeout_occurred``.

It reads the hitl topic (requests, decisions, and its own timeouts: all of one approval share a
partition, keyed by session id) and keeps each partition's open approvals (``_pending``). When
an approval's ``timeout_s`` has passed with no decision, it publishes the timeout to the same
partition, with an id derived from the request's (uuid5), in a Kafka transaction together with
the group's offset of that partition.

Exactly once, by construction: each partition has a transactional producer of its own
(``transactional_id`` = group, topic, partition), as Kafka's first exactly-once design had for
Kafka Streams. When a member takes a partition over it starts that producer, which fences any
earlier owner and completes or aborts its open transaction; then it reads the committed offset,
whose metadata names where the state must be rebuilt from (the oldest request the state held at
that commit), and re-reads the partition from there to its end (read_committed, so aborted
timeouts are never seen) without publishing anything. Every timeout committed before is then in
the rebuilt state as sent, so none is sent twice; a timeout whose transaction aborted is not in
the log and is sent again, with the same id. Only then does it publish.

The state is rebuilt from the input, not kept in a store: a store written outside the Kafka
transaction could disagree with it after a crash, the log cannot. The cost of a restart is the
re-read from the oldest request held (pending, or among the closed approvals remembered).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agentflux.consumers._pending import PendingApprovals, timeout_event
from agentflux.consumers._reader import install_consumer_accelerations
from agentflux.consumers._rebalance import by_topic
from agentflux.consumers._tracing import ConsumerSpans
from agentflux.kafka import AgentfluxSettings, connection_kwargs, stop_consumer
from agentflux.kafka._gate._lazy_headers import lazy_headers
from agentflux.schemas import (
    AvroCodec,
    BaseEvent,
    CodecError,
    EventCategory,
    HitlTimeoutOccurredEvent,
    RegistryClient,
    RegistryUnavailableError,
    current_traceparent,
    event_headers,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from aiokafka.structs import ConsumerRecord

    from agentflux.schemas import HitlApprovalRequestedEvent

__all__ = ["HitlTimeoutJob", "TimeoutMetrics", "parse_rebuild_from"]

_log = structlog.get_logger("agentflux.hitl_timeouts")
_REBUILD_FROM = "rebuild_from="  # the committed offset's metadata: rebuild_from=<offset>


def parse_rebuild_from(metadata: str) -> int | None:
    """The offset a committed position's metadata says to rebuild from; None if it says none."""
    if not metadata.startswith(_REBUILD_FROM):
        return None
    try:
        return int(metadata.removeprefix(_REBUILD_FROM))
    except ValueError:
        return None


class TimeoutMetrics:
    """The job's Prometheus metrics, in a registry of its own."""

    def __init__(self, group: str) -> None:
        """Create the metrics, labelled by group."""
        self.registry = CollectorRegistry()
        self.group = group
        self.emitted = Counter(
            "agentflux_hitl_timeouts_emitted",
            "Timeouts published (committed)",
            ["group"],
            registry=self.registry,
        )
        self.late = Counter(
            "agentflux_hitl_late_decisions",
            "Decisions read after their approval's timeout (the approval stays timed out)",
            ["group"],
            registry=self.registry,
        )
        self.superseded = Counter(
            "agentflux_hitl_timeouts_superseded",
            "Timeouts published while a decision was already in the log ahead of them",
            ["group"],
            registry=self.registry,
        )
        self.pending = Gauge(
            "agentflux_hitl_pending_approvals",
            "Approvals requested, not decided, timeout not yet due",
            ["group", "partition"],
            registry=self.registry,
        )
        self.delay = Histogram(
            "agentflux_hitl_timeout_delay_seconds",
            "From an approval's deadline to its timeout's publication",
            ["group"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, float("inf")),
            registry=self.registry,
        )


@dataclass(slots=True)
class _Partition:
    """One assigned hitl partition: its producer, its state, and how far it has got."""

    tp: TopicPartition
    producer: AIOKafkaProducer
    live_from: int  # the end offset when it was taken over: publishing starts once read to it
    committed: int  # the position last committed
    state: PendingApprovals = field(default_factory=PendingApprovals)
    live: bool = False
    committed_at: float = 0.0  # monotonic


class _Assignments(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped here
    def __init__(self, job: HitlTimeoutJob) -> None:
        self._job = job

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._job.release(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._job.take_over(assigned)


class HitlTimeoutJob:
    """Publishes ``hitl_timeout_occurred`` once for every approval whose timeout passed undecided.

    ``clock`` (seconds since the epoch) is for tests. Deadlines are checked at least every
    ``tick_s`` and woken for at the earliest one; an idle partition's position is committed at
    most every ``commit_interval_s`` (a timeout is committed as soon as it is due).
    """

    def __init__(  # noqa: PLR0913  # each argument is a documented, independent knob
        self,
        group_id: str,
        topic: str,
        *,
        settings: AgentfluxSettings | None = None,
        group_instance_id: str | None = None,
        clock: Callable[[], float] = time.time,
        tick_s: float = 0.2,
        commit_interval_s: float = 1.0,
    ) -> None:
        """Configure the job; nothing connects until ``run``."""
        self.group_id = group_id
        self.topic = topic
        self.topics = [topic]
        self.settings = settings or AgentfluxSettings()
        self.codec = AvroCodec(RegistryClient.from_settings(self.settings))
        self.metrics = TimeoutMetrics(group_id)
        self.spans = ConsumerSpans(group_id)
        self.ready = asyncio.Event()
        self.handled = 0  # records read from the hitl topic, its own timeouts included
        self.emitted = 0  # timeouts committed by this process
        self._clock = clock
        self._tick_s = tick_s
        self._commit_interval_s = commit_interval_s
        self._group_instance_id = group_instance_id
        self._parts: dict[TopicPartition, _Partition] = {}
        self._lock = asyncio.Lock()  # a fetch's handling and its transactions vs. a rebalance
        self._stopping = asyncio.Event()
        self._failure: Exception | None = None  # a take-over that failed in aiokafka's listener

    @classmethod
    def for_settings(
        cls,
        settings: AgentfluxSettings,
        group_id: str,
        group_instance_id: str | None = None,
    ) -> Self:
        """The job on the hitl topic behind the settings' prefix."""
        topic = settings.topic_prefix + EventCategory.HITL.topic
        return cls(group_id, topic, settings=settings, group_instance_id=group_instance_id)

    # -- lifecycle -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the fetch in hand, commit, and leave the group."""
        self._stopping.set()

    async def run(self, *, install_signal_handlers: bool = False) -> None:
        """Run until ``stop`` (or SIGTERM/SIGINT when ``install_signal_handlers``)."""
        async with contextlib.AsyncExitStack() as opened:
            opened.callback(
                lambda: _log.info("timeout job stopped", group=self.group_id, emitted=self.emitted)
            )
            if install_signal_handlers:
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, self.stop)
                    opened.callback(loop.remove_signal_handler, sig)
            opened.push_async_callback(self.codec.registry.aclose)
            # Learn the timeout's schema id now: no transaction waits for the registry later.
            await self.codec.prepare(HitlTimeoutOccurredEvent, self.topic)
            install_consumer_accelerations()
            self._consumer = AIOKafkaConsumer(
                **connection_kwargs(self.settings),
                group_id=self.group_id,
                group_instance_id=self._group_instance_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",  # never an aborted timeout, ours or another's
                key_deserializer=lazy_headers,
            )
            opened.push_async_callback(stop_consumer, self._consumer)
            opened.push_async_callback(self._release_all)
            self._consumer.subscribe([self.topic], listener=_Assignments(self))
            await self._consumer.start()
            _log.info("timeout job started", group=self.group_id, topic=self.topic)
            while not self._stopping.is_set():
                batches = await self._consumer.getmany(timeout_ms=self._wait_ms())
                async with self._lock:
                    for tp, records in batches.items():
                        await self._read(tp, records)
                    # Partitions publish concurrently: one's transaction does not delay another's
                    # due timeouts.
                    parts = list(self._parts.values())
                    await asyncio.gather(*(self._settle_or_rebuild(part) for part in parts))
            if self._failure is not None:
                raise self._failure
            async with self._lock:
                for part in list(self._parts.values()):
                    await self._settle(part, force_commit=True)

    def _wait_ms(self) -> int:
        """Until the earliest deadline of a live partition, at most ``tick_s``."""
        wait = self._tick_s
        now = self._clock()
        for part in self._parts.values():
            deadline = part.state.next_deadline() if part.live else None
            if deadline is not None:
                wait = min(wait, deadline - now)
        return max(0, int(wait * 1000))

    # -- partitions ----------------------------------------------------------------------------

    async def take_over(self, assigned: Iterable[TopicPartition]) -> None:
        """Start each partition's producer (fencing its earlier owner), then rebuild its state."""
        assigned = list(assigned)
        async with self._lock:
            # Concurrently: each producer's start waits for its transaction coordinator.
            try:
                await asyncio.gather(*(self._take_over(tp) for tp in assigned))
            except Exception as exc:  # noqa: BLE001  # raised by run(): aiokafka only logs it
                # A partition not taken over would be read and never published for: stop.
                self._failure = exc
                self._stopping.set()
                return
            _log.info("partitions taken over", group=self.group_id, partitions=by_topic(assigned))
            if self._parts:
                self.ready.set()
            else:  # every partition went to other members: nothing to watch
                self.ready.clear()

    async def _take_over(self, tp: TopicPartition) -> None:
        producer = AIOKafkaProducer(
            **connection_kwargs(self.settings),
            transactional_id=f"{self.group_id}.{tp.topic}.{tp.partition}",
            enable_idempotence=True,
            acks="all",
        )
        # start() initialises the transactions: the earlier owner's open one is completed or
        # aborted, and that owner fenced, before anything below is read.
        await producer.start()
        try:
            committed = await self._committed(tp)
            begins = await self._consumer.beginning_offsets([tp])
            ends = await self._consumer.end_offsets([tp])  # read_committed: the stable end
        except BaseException:
            await producer.stop()
            raise
        offset, rebuild_from = committed if committed is not None else (begins[tp], begins[tp])
        start = max(rebuild_from, begins[tp])
        self._consumer.seek(tp, start)
        self._parts[tp] = _Partition(tp, producer, live_from=ends[tp], committed=offset)
        _log.info(
            "rebuilding pending approvals",
            group=self.group_id,
            partition=tp.partition,
            rebuild_from=start,
            committed=offset,
            end=ends[tp],
        )

    async def _committed(self, tp: TopicPartition) -> tuple[int, int] | None:
        """The committed position of ``tp`` and where to rebuild from; None if never committed."""
        # aiokafka's consumer gives a committed offset without its metadata; the admin client's
        # offset fetch gives both.
        admin = AIOKafkaAdminClient(**connection_kwargs(self.settings))
        await admin.start()
        try:
            found = await admin.list_consumer_group_offsets(self.group_id, partitions=[tp])
        finally:
            await admin.close()
        meta: OffsetAndMetadata | None = found.get(tp)
        if meta is None or meta.offset < 0:
            return None
        rebuild_from = parse_rebuild_from(meta.metadata or "")
        # No metadata (a commit by another tool): rebuild from the beginning, the safe side.
        return meta.offset, rebuild_from if rebuild_from is not None else 0

    async def release(self, revoked: Iterable[TopicPartition]) -> None:
        """Before a rebalance: commit each revoked partition's position, stop its producer."""
        async with self._lock:
            for tp in revoked:
                part = self._parts.pop(tp, None)
                if part is not None:
                    with contextlib.suppress(Exception):  # the new owner rebuilds from the log
                        await self._settle(part, force_commit=True)
                    await part.producer.stop()
                    with contextlib.suppress(KeyError):  # never set: it never committed
                        self.metrics.pending.remove(self.group_id, str(tp.partition))

    async def _release_all(self) -> None:
        for part in self._parts.values():
            await part.producer.stop()
        self._parts.clear()

    # -- reading and publishing ----------------------------------------------------------------

    async def _read(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        part = self._parts.get(tp)
        if part is None:
            return  # revoked while fetched
        with self.spans.batch(records):  # a consumer span per record, when tracing is on
            for record in records:
                event = await self._decode(record)
                if event is None:
                    continue
                outcome = part.state.apply(event, record.offset, record.timestamp)
                if outcome == "late" and part.live:
                    _log.info(
                        "decision after the timeout: counted late, the approval stays timed out",
                        group=self.group_id,
                        session_id=event.session_id,
                        event_id=str(event.event_id),
                    )
                    self.metrics.late.labels(self.group_id).inc()
                elif outcome == "superseded":
                    self.metrics.superseded.labels(self.group_id).inc()
        self.handled += len(records)

    async def _decode(self, record: ConsumerRecord[bytes, bytes]) -> BaseEvent | None:
        """The record's event, waiting out an unreachable registry; None if it is not one."""
        delay = 0.05
        while True:
            try:
                event = await self.codec.decode(record.value or b"")
            except RegistryUnavailableError:
                _log.warning("schema registry unreachable, the record waits", retry_in_s=delay)
                await asyncio.sleep(delay)  # backoff before asking the registry again
                delay = min(delay * 2, 5.0)
                continue
            except CodecError as exc:  # not an approval this job could act on
                _log.warning("undecodable record skipped", offset=record.offset, error=str(exc))
                return None
            return event if isinstance(event, BaseEvent) else None

    async def _settle(self, part: _Partition, *, force_commit: bool) -> None:
        """Go live once rebuilt; publish what expired and commit the position in one transaction."""
        position: int = await self._consumer.position(part.tp)
        if not part.live:
            if position < part.live_from:
                return  # still rebuilding: nothing is published from a partial state
            part.live = True
            _log.info(
                "pending approvals rebuilt",
                group=self.group_id,
                partition=part.tp.partition,
                pending=len(part.state),
            )
        now = self._clock()
        expired = part.state.expire(now)
        due = time.monotonic() - part.committed_at >= self._commit_interval_s
        if not expired and (position == part.committed or not (due or force_commit)):
            return
        await self._transaction(part, expired, position, now)
        self.metrics.pending.labels(self.group_id, str(part.tp.partition)).set(len(part.state))

    async def _settle_or_rebuild(self, part: _Partition) -> None:
        try:
            await self._settle(part, force_commit=False)
        except Exception:  # noqa: BLE001  # any failure: the log decides what was published
            # Aborted, or not known to have committed: rebuild the partition as a new owner would.
            _log.exception("transaction failed, rebuilding", partition=part.tp.partition)
            await part.producer.stop()
            del self._parts[part.tp]
            await self._take_over(part.tp)

    async def _transaction(
        self,
        part: _Partition,
        expired: list[HitlApprovalRequestedEvent],
        position: int,
        now: float,
    ) -> None:
        events = [timeout_event(request, now) for request in expired]
        producer = part.producer
        await producer.begin_transaction()
        try:
            sent = [
                await producer.send(
                    self.topic,
                    self.codec.encode_known(event, self.topic),
                    key=event.session_id.encode(),
                    partition=part.tp.partition,  # the request's: the job reads it back there
                    headers=event_headers(event, current_traceparent()),
                )
                for event in events
            ]
            metadata = f"{_REBUILD_FROM}{part.state.rebuild_from(position)}"
            await producer.send_offsets_to_transaction(
                {part.tp: OffsetAndMetadata(position, metadata)}, self.group_id
            )
            await producer.commit_transaction()
            await asyncio.gather(*sent)
        except BaseException:
            with contextlib.suppress(Exception):  # a fenced producer cannot abort; start() will
                await producer.abort_transaction()
            raise
        part.committed, part.committed_at = position, time.monotonic()
        if events:
            self.emitted += len(events)
            self.metrics.emitted.labels(self.group_id).inc(len(events))
            for request in expired:
                deadline = request.occurred_at.timestamp() + request.timeout_s
                self.metrics.delay.labels(self.group_id).observe(max(0.0, now - deadline))
            _log.info("timeouts published", group=self.group_id, count=len(events))

    # -- as a service --------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """True once the background run (``async with``) has ended, normally or by an error."""
        return hasattr(self, "_task") and self._task.done()

    def raise_failure(self) -> None:
        """Re-raise the background run's error; RuntimeError if it ended without one."""
        self._task.result()
        raise RuntimeError(f"the timeout job of group {self.group_id} stopped early")

    async def __aenter__(self) -> Self:
        """Run in the background inside an ``async with`` block; stopped on exit."""
        self._task = asyncio.create_task(self.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop, commit, and leave the group."""
        self.stop()
        await self._task

    _task: asyncio.Task[None]
    _consumer: AIOKafkaConsumer
