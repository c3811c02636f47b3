"""The consumer-group runner: at-least-once delivery, exactly-once effects, retries, dead letters.

For each fetched batch, every partition's records are handled in order; offsets are committed to
Kafka only after the batch is handled. Handlers alone: partitions run concurrently. Store-backed
views: every partition of the fetch is applied in one transaction, together with the partitions'
offsets, so a redelivered record changes nothing and no two transactions of one runner ever wait
for each other (views write shared rows in key order, so members of one group do not deadlock).
A record that keeps failing is retried with exponential backoff, then goes to the group's
dead-letter topic with the failure in its headers, and the partition moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from itertools import chain
from typing import TYPE_CHECKING, Any, Literal, Self

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    IllegalStateError,
    KafkaError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)

from agentflux.consumers._commits import BackgroundCommits
from agentflux.consumers._dead_letters import DeadLetters, ensure_dead_letter_topic
from agentflux.consumers._in_step import InStep
from agentflux.consumers._ports import apply_events
from agentflux.consumers._reader import install_consumer_accelerations
from agentflux.consumers._rebalance import Rebalances, by_topic
from agentflux.consumers._records import Position
from agentflux.consumers._runner_metrics import RunnerMetrics, observe_many
from agentflux.consumers._timing import wait_at_most
from agentflux.consumers._tracing import ConsumerSpans
from agentflux.kafka import (
    AgentfluxSettings,
    connection_kwargs,
    refusals_explained,
    stop_consumer,
)
from agentflux.kafka._gate._group_join import assignors
from agentflux.kafka._gate._lazy_headers import lazy_headers
from agentflux.schemas import (
    EVENT_MODELS,
    AvroCodec,
    BaseEvent,
    CodecError,
    RegistryClient,
    RegistryError,
    RegistryUnavailableError,
    UnknownEvent,
    dead_letter_topic,
)

if TYPE_CHECKING:
    from collections.abc import (
        Awaitable,
        Callable,
        Collection,
        Iterable,
        Iterator,
        Mapping,
        Sequence,
    )

    from aiokafka.structs import ConsumerRecord, TopicPartition
    from prometheus_client import Counter, Histogram

    from agentflux.consumers._ports import RowView, Store, Transaction, View

__all__ = ["GroupRunner", "apply_fetched"]

_log = structlog.get_logger("agentflux.runner")
# A commit refused because the group moved on without this member (its partitions went to
# others while it stopped): the new owners read from the last committed offsets, and a
# store-backed view skips what its store already holds.
_LEFT_BEHIND = (
    CommitFailedError,
    IllegalGenerationError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
_new_tuple = tuple.__new__
_PROGRESS_EVERY_S = 10.0  # a service's progress line: often enough to watch, never per event


class _BatchLeft(Exception):  # noqa: N818  # a signal inside the runner, never raised out of it
    """A record waited for the registry when the runner was stopped or lost its partitions.

    The batch is left unfinished and its partition uncommitted: whoever reads the partition
    next starts at its committed offset (a rebalance gives every partition a fresh position).
    """


async def apply_fetched(  # noqa: PLR0913  # firsts: an optional shortcut beside the rest
    tx: Transaction,
    group: str,
    events: Sequence[tuple[BaseEvent, Position]],
    ends: Sequence[Position],
    effects: Callable[[Transaction, list[tuple[BaseEvent, Position]]], Awaitable[None]],
    *,
    firsts: Sequence[Position] | None = None,
) -> dict[str, int]:
    """Apply a fetch's ``events`` in ``tx``, each at most once; record where each partition ends.

    ``ends``: the last offset read on each partition (records no view wanted included). Events
    at or below a partition's stored offset are already in the store (a redelivery, a replay):
    they are counted, by topic, and left out of ``effects``. ``firsts``: each partition's first
    event, when the caller knows them (events in offset order per partition): if every one is
    past its partition's stored offset, so are all events, and none is checked one by one.
    """
    guards = await tx.applied_positions(group)
    if firsts is not None and all(p.offset > guards.get(p[:2], -1) for p in firsts):
        fresh = events if isinstance(events, list) else list(events)
    else:
        # One comprehension: every event fresh is the common case; counted only if some are not.
        fresh = [item for item in events if item[1].offset > guards.get(item[1][:2], -1)]
    already: dict[str, int] = {}
    if len(fresh) < len(events):
        for _, position in events:
            if position.offset <= guards.get(position[:2], -1):
                already[position.topic] = already.get(position.topic, 0) + 1
    await effects(tx, fresh)
    await tx.record_positions(group, ends)
    return already


def _applied_records(
    batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    decoded: Mapping[TopicPartition, list[tuple[Any, Position]]],
) -> Iterator[ConsumerRecord[bytes, bytes]]:
    """The records of the decoded events, for their spans (read only when tracing is on)."""
    for tp, found in decoded.items():
        offsets = {position.offset for _, position in found}
        yield from (record for record in batches[tp] if record.offset in offsets)


class GroupRunner:
    """Runs one consumer group over topics with typed handlers and/or store-backed views."""

    def __init__(  # noqa: PLR0913  # each argument is a documented, independent knob
        self,
        group_id: str,
        topics: Iterable[str],
        *,
        settings: AgentfluxSettings | None = None,
        handlers: Mapping[type[BaseEvent], Callable[[BaseEvent], Awaitable[None]]] | None = None,
        views: Iterable[View] = (),
        store: Store | None = None,
        codec: AvroCodec | None = None,
        max_attempts: int = 4,
        backoff_s: float = 0.05,
        max_backoff_s: float = 5.0,
        group_instance_id: str | None = None,
        max_poll_records: int = 500,
        metrics: RunnerMetrics | None = None,
        dlq_topic: str | None = None,
        commit_interval_s: float = 0.1,
    ) -> None:
        """Configure the group; nothing connects until ``run``.

        Handled offsets are committed in the background at most every ``commit_interval_s``
        (and at once on revocation and stop): a commit per small batch costs the broker enough
        to slow the producers sharing it.
        """
        self.group_id = group_id
        self.topics = list(topics)
        self.settings = settings or AgentfluxSettings()
        self.handlers = dict(handlers or {})
        self.views = list(views)
        self.store = store
        if self.views and store is None:
            raise ValueError("views need a store to apply to")
        self._own_codec = codec is None
        self.codec = codec or AvroCodec(RegistryClient.from_settings(self.settings))
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.dlq_topic = dlq_topic or dead_letter_topic(group_id)
        self.metrics = metrics or RunnerMetrics(group_id)
        self.spans = ConsumerSpans(group_id)  # a consumer span per record, when tracing is on
        self.batch_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        # Set: a record waiting for the registry leaves its batch (stopping, or a rebalance).
        self._leave_batch = asyncio.Event()
        self._consumer_options = {
            "group_id": group_id,
            "group_instance_id": group_instance_id,
            "max_poll_records": max_poll_records,
        }
        self._max_poll_records = max_poll_records
        self.handled = 0
        #: The partitions this member holds, by topic (as of the last rebalance).
        self.assignment: dict[str, list[int]] = {}
        self.redelivered = 0
        self.batch_fallbacks = 0  # fetches whose joint transaction failed (a deadlock, say)
        self._children: dict[tuple[int, str], Any] = {}
        self._commits = BackgroundCommits(group_id, commit_interval_s, self._backoff)
        self.ready = asyncio.Event()
        self._progress = asyncio.Event()
        # What the periodic progress line reports: each partition's lag, and since when.
        self._lags: dict[TopicPartition, int] = {}
        self._progress_at = (time.monotonic(), 0)  # (when, handled then)
        self._marked: dict[TopicPartition, int] = {}  # the offset each partition resumes at
        # A store-backed runner's last fetch, being written while the next one is decoded.
        self._writing: asyncio.Task[None] | None = None
        # Partitions read in step by record time while behind, for a view that asks (see
        # ``InStepView``): over one topic, a partition's order is already the publish order.
        self._in_step = (
            InStep(behind=max_poll_records)
            if store is not None
            and len(self.topics) > 1
            and any(getattr(view, "reads_in_step", False) for view in self.views)
            else None
        )

    @property
    def _row_view(self) -> RowView | None:
        """The view whose events are decoded into its rows: the only one, with no handlers."""
        if len(self.views) == 1 and not self.handlers and hasattr(self.views[0], "apply_rows"):
            return self.views[0]  # type: ignore[return-value]  # it has apply_rows: a RowView
        return None

    # -- lifecycle -----------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        """The pause before retry ``attempt`` (1, 2, ...): doubling from ``backoff_s``, capped.

        Handler retries, registry waits and commit retries all pace themselves with it.
        """
        return min(self.max_backoff_s, self.backoff_s * 2.0 ** min(attempt - 1, 32))

    def stop(self) -> None:
        """Ask the runner to finish the batch in flight, commit, and leave the group."""
        self._stopping.set()
        self._leave_batch.set()

    async def give_up_partitions(self, revoked: Iterable[TopicPartition]) -> None:
        """Before a rebalance: finish (or leave, if it waits for the registry) the batch, commit.

        A batch waiting out a registry outage would otherwise hold the group's rebalance up until
        the broker evicted this member, and then be handled twice: by this member once the
        registry is back, and by the partitions' new owner.
        """
        self._leave_batch.set()
        revoked = list(revoked)
        for tp in revoked:
            self._lags.pop(tp, None)  # another member reports those now
            self._marked.pop(tp, None)
        if self._in_step is not None:  # never written, so not committed: the new owner reads them
            self._in_step.drop(revoked)
        try:
            async with self.batch_lock:
                await self.commit_now()
        except KafkaError as exc:  # e.g. the coordinator moved: the new owners re-read the rest
            _log.warning("commit before a rebalance failed", group=self.group_id, error=repr(exc))
        finally:
            self._commits.hold()  # until the next assignment: see BackgroundCommits
            if not self._stopping.is_set():
                self._leave_batch.clear()
        _log.info("partitions revoked", group=self.group_id, partitions=by_topic(revoked))

    def rejoined(self) -> None:
        """The member has its partitions of the group's new generation: commit them again."""
        self._commits.release()

    async def run(self, *, install_signal_handlers: bool = False) -> None:
        """Consume until ``stop`` (or SIGTERM/SIGINT when ``install_signal_handlers``)."""
        log = _log.bind(group=self.group_id, topics=self.topics)
        # Whatever was opened is closed, last first, even when a start or a stop fails (a client
        # left open keeps its broker connections for the life of the process).
        async with contextlib.AsyncExitStack() as opened:
            opened.callback(lambda: log.info("runner stopped", handled=self.handled))
            # Entered first, left last: a refused login or a denied ACL leaves as a typed error.
            await opened.enter_async_context(
                refusals_explained(self.settings, "READ", group=self.group_id)
            )
            if install_signal_handlers:
                self._handle_signals(opened)
            opened.push_async_callback(self.close_codec)
            if self.store is not None:
                await self.store.migrate([sql for view in self.views for sql in view.ddl])
            await ensure_dead_letter_topic(self.settings, self.group_id, self.dlq_topic)
            await self._prefetch_schemas()
            # Clients are made here, not in __init__: a runner used only to re-drive opens none.
            self._dead_letters = DeadLetters(self.settings, self.group_id, self.dlq_topic)
            opened.push_async_callback(self._dead_letters.stop)
            await self._dead_letters.start()
            install_consumer_accelerations()
            self._consumer = AIOKafkaConsumer(
                **connection_kwargs(self.settings),
                **self._consumer_options,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level=self.settings.isolation_level,
                key_deserializer=lazy_headers,
                # Range (a member reads partition N of every topic: all of a session's events),
                # and round robin for members of older versions where aiokafka joins right.
                partition_assignment_strategy=assignors(),
            )
            # Leaving: the handled batches are committed below; stop() leaves the group.
            opened.push_async_callback(stop_consumer, self._consumer)
            opened.push_async_callback(self._written, cancel=True)  # a failed run leaves it
            self._consumer.subscribe(self.topics, listener=Rebalances(self))
            await self._consumer.start()
            self._commits.consumer = self._consumer
            opened.push_async_callback(self._commits.cancel)  # a held one would wait forever
            log.info("runner started")
            while not self._stopping.is_set():
                batches = await self._consumer.getmany(timeout_ms=200)
                if self._consumer.assignment():
                    self.ready.set()
                if batches:
                    await self._handle_fetched(batches)
                else:
                    await self._write_carried()
                    await self._written()
                    await self._past_control_records()
            await self._written()
            async with self.batch_lock:
                await self._commit_at_stop()

    def _handle_signals(self, opened: contextlib.AsyncExitStack) -> None:
        """SIGTERM and SIGINT stop the runner until ``opened`` closes."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
            opened.callback(loop.remove_signal_handler, sig)

    async def _handle_fetched(
        self, batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        if self.store is not None:
            await self._write_behind(batches)
            return
        async with self.batch_lock:
            try:
                await self._partitions(batches)
            except _BatchLeft:
                return  # stopping, or its partitions go to a rebalance: they restart from commits
            self._commits.soon()
        self._update_lag(batches)

    async def _write_behind(
        self, batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Decode this fetch while the store writes the last one, then write it in the background.

        The decode (CPU, this thread) and the store's write (SQLite's thread, or PostgreSQL's
        round trips) overlap; one fetch is written at a time, in fetch order.
        """
        try:
            decoded = await self._decode_fetch(batches)
            waited = self._writing is not None and not self._writing.done()
            await self._written()
            if waited:
                batches, decoded = await self._caught_up(batches, decoded)
        except _BatchLeft:
            return  # stopping, or its partitions go to a rebalance: they restart from commits
        if self._in_step is not None:
            self._in_step.add(batches, decoded)
            ready = self._in_step.take(self._ends(), await self._positions())
            self._fetch_only(self._in_step.wanted)
            batches, decoded = ready.batches, ready.decoded
            if not batches:
                return
        self._writing = asyncio.create_task(self._write_fetched(batches, decoded))

    def _fetch_only(self, wanted: Collection[TopicPartition]) -> None:
        """Pause every assigned partition but ``wanted`` (none: resume them all).

        Pausing, not ``getmany(*wanted)``: aiokafka sends a broker no new fetch while records
        it fetched from that broker wait in its buffer, so the partitions asked for would wait
        out its buffer timeout; a paused partition's buffer is dropped (fetched again later).
        """
        paused = self._consumer.paused()
        keep = self._consumer.assignment() - set(wanted) if wanted else set()
        if keep - paused:
            self._consumer.pause(*(keep - paused))
        if paused - keep:
            self._consumer.resume(*(paused - keep))

    async def _positions(self) -> dict[TopicPartition, int | None]:
        """Where each assigned partition's next fetched record starts (None: not known)."""
        positions: dict[TopicPartition, int | None] = {}
        for tp in self._consumer.assignment():
            try:  # no request: a fetched partition's position is known
                positions[tp] = await self._consumer.position(tp)
            except IllegalStateError:  # a rebalance took it meanwhile
                positions[tp] = None
        return positions

    def _ends(self) -> dict[TopicPartition, int | None]:
        """Where each assigned partition ends, as far as this member can read it."""
        end = (
            self._consumer.last_stable_offset
            if self.settings.isolation_level == "read_committed"
            else self._consumer.highwater
        )
        return {tp: end(tp) for tp in self._consumer.assignment()}

    async def _write_carried(self) -> None:
        """Idle: write every record carried to keep in step (nothing is coming to pace them)."""
        if self._in_step is None or not self._in_step.carrying:
            return
        await self._written()
        ready = self._in_step.take_all()
        self._fetch_only(())
        self._writing = asyncio.create_task(self._write_fetched(ready.batches, ready.decoded))

    async def _caught_up(
        self,
        batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        decoded: dict[TopicPartition, list[tuple[BaseEvent, ConsumerRecord[bytes, bytes]]]],
    ) -> tuple[
        dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        dict[TopicPartition, list[tuple[BaseEvent, ConsumerRecord[bytes, bytes]]]],
    ]:
        """This fetch with the records that arrived while the last one was written.

        Without them, an event that arrives during a write waits for the write after next (the
        fetch decoded ahead goes first): one more write's time on its way to the store, which
        is most of publish -> visible at 1k events/s on PostgreSQL. Only up to
        ``max_poll_records``: a full fetch (a rebuild) keeps its decode overlapping the write.
        Only records aiokafka already fetched (``getmany(timeout_ms=0)``): no wait.
        """
        room = self._max_poll_records - sum(map(len, batches.values()))
        if room <= 0:
            return dict(batches), decoded
        fetched = await self._consumer.getmany(timeout_ms=0, max_records=room)
        # A partition revoked and given back meanwhile is read again from its last commit: what
        # this fetch already holds must not come twice into one transaction (its guard, the
        # stored offset, is read once per transaction).
        ends = {tp: records[-1].offset for tp, records in batches.items()}
        more = {
            tp: after
            for tp, records in fetched.items()
            if (after := [r for r in records if r.offset > ends.get(tp, -1)])
        }
        merged = {
            tp: batches.get(tp, []) + more.get(tp, []) for tp in dict.fromkeys([*batches, *more])
        }
        decoded_more = await self._decode_fetch(more)
        # A partition with an undecodable record anywhere goes record by record, all of it.
        return merged, {
            tp: decoded.get(tp, []) + decoded_more.get(tp, [])
            for tp in merged
            if (tp in decoded or tp not in batches) and (tp in decoded_more or tp not in more)
        }

    async def _written(self, *, cancel: bool = False) -> None:
        """Wait for the fetch being written (its failure raised here); ``cancel``: stop it first."""
        writing, self._writing = self._writing, None
        if writing is None:
            return
        if cancel:
            writing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writing
            return
        await writing

    async def _write_fetched(
        self,
        batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        decoded: dict[TopicPartition, list[tuple[Any, Position]]],
    ) -> None:
        async with self.batch_lock:
            # A rebalance may have taken partitions since the fetch (it waits for this lock, so
            # not from here on): their new owner reads them from the last commit.
            assigned = self._consumer.assignment()
            batches = {tp: records for tp, records in batches.items() if tp in assigned}
            try:
                await self._store_partitions(batches, decoded)
            except _BatchLeft:
                return
            self._commits.soon()
        self._update_lag(batches)

    async def _past_control_records(self) -> None:
        """Idle: commit positions that moved past transaction markers, which are never handed out.

        A transaction's commit marker takes an offset after its records; committing only the
        last record's offset + 1 would leave the group's lag at 1 behind every transaction.
        """
        async with self.batch_lock:
            for tp in self._consumer.assignment():
                if self._in_step is not None and self._in_step.carries(tp):
                    continue  # its position is past records not written yet
                try:
                    position = await self._consumer.position(tp)
                except IllegalStateError:
                    return  # a rebalance took it meanwhile: its new owner commits
                if self._marked.get(tp) != position:
                    self._marked[tp] = position
                    self._commits.handled(tp, position)
                    self._commits.soon()

    async def _commit_at_stop(self) -> None:
        """The last commit; a group that rebalanced without this member meanwhile is not a failure.

        Members of one group stopping together rebalance among themselves: a member's final
        commit can find its generation gone. Any other commit error still fails the run.
        """
        try:
            await self.commit_now()
        except _LEFT_BEHIND as exc:
            _log.warning(
                "offsets not committed at stop: the group rebalanced without this member",
                group=self.group_id,
                error=repr(exc),
            )

    async def commit_now(self) -> None:
        """Commit whatever is handled and not yet committed, without waiting for the interval."""
        await self._commits.now()

    def _wanted_models_on_topics(self) -> list[tuple[type[BaseEvent], str]]:
        models = EVENT_MODELS.values() if self.views else self.handlers.keys()
        on_topics = ((m, self.settings.topic_prefix + m.EVENT_TYPE.category.topic) for m in models)
        return [(model, topic) for model, topic in on_topics if topic in self.topics]

    async def _prefetch_schemas(self) -> None:
        """Learn the wanted types' schema ids before joining the group.

        A cold start's first batch then need not stop to ask the registry type by type. An
        unreachable registry is only logged here: records wait for it when they need it.
        """
        wanted = self._wanted_models_on_topics()
        try:
            # Bounded by one request's timeout: a hung registry must not hold the start up.
            found = await asyncio.wait_for(
                self.codec.prefetch(wanted), self.settings.registry_timeout_s
            )
        except (RegistryError, TimeoutError) as exc:
            _log.warning(
                "schemas not prefetched: records will wait for the registry when they need it",
                group=self.group_id,
                error=str(exc) or type(exc).__name__,
            )
            return
        _log.info("schemas prefetched", group=self.group_id, found=found, wanted=len(wanted))

    async def _decode_waiting(self, value: bytes) -> BaseEvent | UnknownEvent:
        """Decode, waiting out an unreachable registry with backoff until it answers.

        The record is not at fault, so it is neither dead-lettered nor skipped, and its
        partition does not move past it. Raises ``_BatchLeft`` if the runner is stopped or
        its partitions are revoked meanwhile; other registry errors (a refused request) are
        raised as they are.
        """
        attempt = 0
        while True:
            try:
                return await self.codec.decode(value)
            except RegistryUnavailableError as exc:
                attempt += 1
                delay = self._backoff(attempt)
                self.metrics.registry_waits.labels(self.group_id).inc()
                _log.warning(
                    "schema registry unreachable, the record waits for it",
                    group=self.group_id,
                    retry_in_s=delay,
                    error=str(exc),
                )
                await wait_at_most(self._leave_batch, delay)
                if self._leave_batch.is_set():
                    raise _BatchLeft from exc

    async def wait_handled(self, count: int) -> None:
        """Return once at least ``count`` records were handled (wrap it in a timeout)."""
        while self.handled < count:
            self._progress.clear()
            await self._progress.wait()

    def _update_lag(
        self, batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        assigned = self._consumer.assignment()
        for tp, records in batches.items():
            if tp not in assigned:  # a rebalance ended during the write: its new owner reports it
                continue
            end = self._consumer.highwater(tp)
            if end is not None:
                lag = self._lags[tp] = end - records[-1].offset - 1
                self.metrics.lag.labels(self.group_id, tp.topic, str(tp.partition)).set(lag)
        self._log_progress()

    def _log_progress(self) -> None:
        """At most every ``_PROGRESS_EVERY_S``: events/s handled since the last line, and lag."""
        now = time.monotonic()
        since, handled_then = self._progress_at
        if now - since < _PROGRESS_EVERY_S:
            return
        self._progress_at = (now, self.handled)
        _log.info(
            "progress",
            group=self.group_id,
            handled=self.handled,
            events_per_s=round((self.handled - handled_then) / (now - since)),
            lag=sum(self._lags.values()),
        )

    # -- handling ------------------------------------------------------------------------------

    async def _partitions(
        self, batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Handle each partition's records; mark the handled ones' offsets for the next commit."""
        if len(batches) == 1:  # the common case at low rates: no task, no event-loop hop
            tp, records = next(iter(batches.items()))
            await self._partition(records)
            self._commits.handled(tp, records[-1].offset + 1)
            self._marked[tp] = records[-1].offset + 1
            return
        # Concurrently: one partition's handler I/O does not hold up the others. Every partition
        # finishes before a failure is raised, and the ones that were handled get committed.
        outcomes = await asyncio.gather(
            *(self._partition(records) for records in batches.values()), return_exceptions=True
        )
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        for (tp, records), outcome in zip(batches.items(), outcomes, strict=True):
            if outcome is None:
                self._commits.handled(tp, records[-1].offset + 1)
                self._marked[tp] = records[-1].offset + 1
        if failures:
            raise failures[0]

    async def _partition(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        # Every line logged while this partition's batch is handled names it, the views' and
        # handlers' own lines too (gather() gives each partition a task, a context, of its own).
        with structlog.contextvars.bound_contextvars(
            group=self.group_id, topic=records[0].topic, partition=records[0].partition
        ):
            await self._partition_batch(records)

    async def _partition_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        # Fast path: a handler-only batch runs its handlers in order. On any failure the records
        # from the failing one on go one by one, with retries and dead letters (store-backed
        # partitions come here only when their joint transaction failed: record by record).
        failure: Exception | None = None
        traced = self.spans.active()  # traced: record by record, each handler in its span
        if len(records) > 1 and self.store is None and not traced:
            records, failure = await self._handler_batch(records)
        for record in records:
            with self.spans.record(record, traced=traced):
                await self._record(record, failure)
            failure = None

    async def _store_partitions(
        self,
        batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        decoded: dict[TopicPartition, list[tuple[Any, Position]]],
    ) -> None:
        """Every partition in one transaction; the ones it could not take, one by one after.

        One transaction per fetch rather than one per partition on a pool: partitions of a
        fetch share rows (a session's context fed from four topics, the metrics counters), and
        concurrent transactions on shared rows wait for each other or deadlock.
        """
        applied = await self._store_batch(batches, decoded)
        for tp, records in batches.items():
            if tp in applied:
                self._commits.handled(tp, records[-1].offset + 1)
        for tp, records in batches.items():
            if tp not in applied:  # in turn, not concurrently: the same reason as above
                await self._partition(records)
                self._commits.handled(tp, records[-1].offset + 1)

    async def _decode_all(
        self, records: list[ConsumerRecord[bytes, bytes]]
    ) -> list[tuple[BaseEvent, ConsumerRecord[bytes, bytes]]] | None:
        """The wanted events of a batch with their records; None if any record is undecodable."""
        decoded: list[tuple[BaseEvent, ConsumerRecord[bytes, bytes]]] = []
        every_event, handlers = bool(self.views), self.handlers
        try:
            # No await for writer schemas seen before: the common case, by far.
            events = self.codec.decode_many_cached([record.value or b"" for record in records])
            for record, cached in zip(records, events, strict=True):
                event = cached
                if event is None:
                    event = await self._decode_waiting(record.value or b"")
                # _wants, inlined: it runs for every event of every batch.
                if isinstance(event, BaseEvent) and (every_event or type(event) in handlers):
                    decoded.append((event, record))
        except CodecError:
            return None
        return decoded

    def _account(self, topic: str, handled: int, skipped: int, elapsed: float) -> None:
        """Count a batch's outcome once, not record by record (the metrics cost adds up)."""
        if handled:
            observe_many(self._child(self.metrics.latency, topic), elapsed / handled, handled)
            self._child(self.metrics.handled, topic).inc(handled)
            self.handled += handled
            self._progress.set()
        if skipped:
            self._child(self.metrics.skipped, topic).inc(skipped)

    def _child(self, metric: Counter | Histogram, topic: str) -> Any:
        key = (id(metric), topic)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(self.group_id, topic)
        return child

    async def _handler_batch(
        self, records: list[ConsumerRecord[bytes, bytes]]
    ) -> tuple[list[ConsumerRecord[bytes, bytes]], Exception | None]:
        """Run handlers over a batch; return what is left to handle one by one.

        With the records left comes the first one's failure, which counts as its first attempt.
        """
        decoded = await self._decode_all(records)
        if decoded is None:
            return records, None  # the per-record path dead-letters the undecodable record
        started = time.perf_counter()
        done = 0
        handlers = self.handlers  # no views here: an event's effect is its type's handler alone
        for event, record in decoded:
            try:
                await handlers[type(event)](event)  # decoded only if wanted: it has a handler
            except Exception as exc:  # noqa: BLE001  # its first attempt; the per-record path retries
                self._account(record.topic, done, 0, time.perf_counter() - started)
                return [r for r in records if r.offset >= record.offset], exc
            done += 1
        skipped = len(records) - len(decoded)
        self._account(records[-1].topic, done, skipped, time.perf_counter() - started)
        return [], None

    async def _decode_fetch(
        self, batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> dict[TopicPartition, list[tuple[Any, Position]]]:
        """Each partition's wanted events (rows, for a row view); an undecodable one's left out."""
        decoded = {}
        for tp, records in batches.items():
            found = await self._decode_positioned(tp, records)
            if found is not None:  # else the per-record path dead-letters the undecodable one
                decoded[tp] = found
        return decoded

    async def _decode_positioned(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> list[tuple[Any, Position]] | None:
        """A partition's wanted events with their positions, as views take them; None as above.

        The store path's :meth:`_decode_all`: each event is paired with its position once, here,
        rather than with its record first and then again (the store path's per-event work). For
        a row view, each event is its row (see ``RowView``), made in C with no instance.
        """
        # No handler filter with views: a store-backed runner's views take every event.
        handlers = None if self.views else self.handlers
        row_view = self._row_view
        topic, partition = tp.topic, tp.partition
        found: list[tuple[Any, Position]] = []
        append = found.append
        try:
            values = [record.value or b"" for record in records]
            events: list[Any] = (
                self.codec.decode_many_cached(values)
                if row_view is None
                else self.codec.decode_many_rows_cached(values, row_view.rows)
            )
            for record, cached in zip(records, events, strict=True):
                event = cached
                if event is None:
                    event = await self._decode_waiting(record.value or b"")
                    if row_view is not None and event.__class__ is not UnknownEvent:
                        event = row_view.rows.row(event)  # type: ignore[arg-type]  # a model
                # Decoding gives a model (or row) or an UnknownEvent: a class test, not isinstance.
                if event.__class__ is not UnknownEvent and (
                    handlers is None or type(event) in handlers
                ):
                    # tuple.__new__ straight: Position(...) runs a Python-level __new__.
                    position = (topic, partition, record.offset, record.timestamp)
                    append((event, _new_tuple(Position, position)))
        except CodecError:
            return None
        return found

    async def _store_batch(
        self,
        batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        decoded: dict[TopicPartition, list[tuple[Any, Position]]],
    ) -> set[TopicPartition]:
        """Apply the decoded partitions of a fetch in one transaction; which ones it applied.

        Empty when the transaction failed: the caller goes record by record, with retries.
        """
        assert self.store is not None  # noqa: S101  # checked by the caller
        decoded = {tp: found for tp, found in decoded.items() if tp in batches}
        if not decoded:
            return set()
        started = time.perf_counter()
        events = list(chain.from_iterable(decoded.values()))
        ends = [Position(tp.topic, tp.partition, batches[tp][-1].offset) for tp in decoded]
        firsts = [found[0][1] for found in decoded.values() if found]
        try:
            with self.spans.batch(_applied_records(batches, decoded)):
                async with self.store.transaction() as tx:
                    already = await apply_fetched(
                        tx, self.group_id, events, ends, self._batch_effects, firsts=firsts
                    )
        except Exception as exc:  # noqa: BLE001  # fall back to per-record handling
            self.batch_fallbacks += 1
            self.metrics.batch_fallbacks.labels(self.group_id).inc()
            _log.warning(
                "batch failed, retrying record by record", group=self.group_id, error=repr(exc)
            )
            return set()
        for topic, count in already.items():
            self._child(self.metrics.redelivered, topic).inc(count)
            self.redelivered += count
        elapsed = time.perf_counter() - started
        for tp, found in decoded.items():
            share = elapsed * len(found) / max(len(events), 1)
            self._account(tp.topic, len(found), len(batches[tp]) - len(found), share)
        return set(decoded)

    async def _batch_effects(
        self, tx: Transaction, events: list[tuple[BaseEvent, Position]]
    ) -> None:
        """A batch's effects: each view's (at once where it can), then the types' handlers."""
        row_view = self._row_view
        if row_view is not None:  # its only effect; the events were decoded as its rows
            await row_view.apply_rows(tx, events)  # type: ignore[arg-type]  # rows here
            return
        for view in self.views:
            await apply_events(view, tx, events)
        for event, _ in events:
            handler = self.handlers.get(type(event))
            if handler is not None:
                await handler(event)

    async def _record(
        self, record: ConsumerRecord[bytes, bytes], failed: Exception | None = None
    ) -> None:
        """Handle one record with retries; ``failed`` is the error of an attempt already made."""
        position = Position(record.topic, record.partition, record.offset, record.timestamp)
        try:
            event = await self._decode_waiting(record.value or b"")
        except CodecError as exc:
            self._log_for(record).warning("undecodable record", error=str(exc))
            await self._dead_letter(record, exc, attempts=1)
            return
        if isinstance(event, UnknownEvent) or not self._wants(event):
            self._account(record.topic, 0, 1, 0.0)
            return
        for attempt in range(1, self.max_attempts + 1):
            started = time.perf_counter()
            try:
                earlier, failed = failed, None
                await self._attempt(event, position, earlier)
            except Exception as exc:  # any handler failure is retried, then dead-lettered
                self._child(self.metrics.failed, record.topic).inc()
                log = self._log_for(record, event)  # bound only when there is something to say
                if attempt == self.max_attempts:
                    log.exception("handler gave up", attempts=attempt, error=repr(exc))
                    await self._dead_letter(record, exc, attempts=attempt)
                    return
                delay = self._backoff(attempt)
                log.warning(
                    "handler failed, retrying", attempt=attempt, delay_s=delay, error=repr(exc)
                )
                await asyncio.sleep(delay)  # exponential backoff between attempts
            else:
                self._account(record.topic, 1, 0, time.perf_counter() - started)
                return

    async def _attempt(
        self, event: BaseEvent, position: Position, failed: Exception | None
    ) -> None:
        """Apply, unless ``failed`` says the batch path's attempt already failed: raise that."""
        if failed is not None:
            raise failed
        await self._apply(event, position)

    def _log_for(
        self, record: ConsumerRecord[bytes, bytes], event: BaseEvent | None = None
    ) -> structlog.typing.FilteringBoundLogger:
        log: structlog.typing.FilteringBoundLogger = _log.bind(
            group=self.group_id,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        if event is not None:
            log = log.bind(event_id=str(event.event_id), event_type=event.EVENT_TYPE.value)
        return log

    def _wants(self, event: BaseEvent) -> bool:
        return bool(self.views) or type(event) in self.handlers

    async def _effects(self, tx: Transaction | None, event: BaseEvent, position: Position) -> None:
        """Everything one event does: each view inside ``tx``, then the type's handler."""
        if tx is not None:
            for view in self.views:
                await view.apply(tx, event, position)
        handler = self.handlers.get(type(event))
        if handler is not None:
            await handler(event)

    async def _apply(self, event: BaseEvent, position: Position) -> None:
        if self.store is None:
            await self._effects(None, event, position)
            return
        async with self.store.transaction() as tx:
            applied = await tx.position(self.group_id, position.topic, position.partition)
            if applied is not None and position.offset <= applied:
                self._child(self.metrics.redelivered, position.topic).inc()
                self.redelivered += 1
                return  # redelivered or replayed: its effect is already in the store
            await self._effects(tx, event, position)
            await tx.record_position(self.group_id, position)

    async def redrive(
        self, value: bytes, origin: tuple[str, int, int], timestamp: int
    ) -> Literal["redriven", "already redriven", "skipped"]:
        """Apply one dead-lettered record once more, at most once per event id (with a store).

        Raises ``CodecError`` for bytes that still cannot be decoded, and whatever
        the handler raises if the cause is not fixed yet; either way nothing is applied.
        """
        event = await self.codec.decode(value)
        if isinstance(event, UnknownEvent) or not self._wants(event):
            return "skipped"
        position = Position(*origin, timestamp)
        if self.store is None:
            # No store to remember it: the handler must be idempotent itself.
            await self._effects(None, event, position)
        else:
            async with self.store.transaction() as tx:
                if not await tx.mark_redriven(self.group_id, str(event.event_id)):
                    return "already redriven"
                await self._effects(tx, event, position)
        self._child(self.metrics.handled, position.topic).inc()
        return "redriven"

    async def close_codec(self) -> None:
        """Close the registry client the runner made for itself (after ``redrive`` use)."""
        if self._own_codec:
            await self.codec.registry.aclose()

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], error: BaseException, *, attempts: int
    ) -> None:
        await self._dead_letters.send(record, error, attempts=attempts)
        self.metrics.dead_lettered.labels(self.group_id, record.topic).inc()

    @property
    def finished(self) -> bool:
        """True once the background run (``async with``) has ended, normally or by an error."""
        return hasattr(self, "_task") and self._task.done()

    def raise_failure(self) -> None:
        """Re-raise the background run's error; RuntimeError if it ended without one."""
        self._task.result()
        raise RuntimeError(f"the runner of group {self.group_id} stopped before its work was done")

    async def __aenter__(self) -> Self:
        """Run in the background inside an ``async with`` block; stopped on exit."""
        self._task = asyncio.create_task(self.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop, wait for the last commit, and leave the group."""
        self.stop()
        try:
            await self._task
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # cancelled ourselves (a timeout, say): let it through
            # Whoever holds the runner's task cancelled it: it has stopped, as asked.

    _task: asyncio.Task[None]
    _consumer: AIOKafkaConsumer
    _dead_letters: DeadLetters
