"""The runtime's event publisher: validate, encode, key by session, send, await the broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from pydantic import ValidationError

from agentflux.kafka import (
    AgentfluxSettings,
    access_refused,
    authorization_error,
    connection_kwargs,
)
from agentflux.kafka._gate._lz4 import install_fast_lz4
from agentflux.producers._batching import Batcher, HeaderValue, key_partition
from agentflux.producers._errors import (
    BrokerUnavailableError,
    InvalidEventError,
    PublishDeniedError,
    PublishError,
    PublishTimeoutError,
    SchemaNotRegisteredError,
    SchemaRegistrationError,
    UnacknowledgedRecordsError,
)
from agentflux.producers._sequences import SessionSequences
from agentflux.schemas import (
    ENCODING_ERRORS,
    EVENT_MODELS,
    HEADER_NAMES,
    AvroCodec,
    CodecError,
    RegistryClient,
    RegistryError,
    SchemaNotFoundError,
    current_traceparent,
    event_header_values,
    header_values_for,
    subject_name,
)

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from agentflux.producers._protocols import PublishResult
    from agentflux.schemas import BaseEvent

__all__ = ["PUBLISHER_BATCH_SIZE", "EventPublisher"]

_log = structlog.get_logger("agentflux.publisher")

PUBLISHER_BATCH_SIZE = 262_144
"""The publisher's default ``max_batch_size`` (bytes of records before compression)."""

# Durable and ordered by default: every replica in sync acknowledges, retries never duplicate.
_PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "compression_type": "lz4",
    "linger_ms": 5,
    "max_batch_size": PUBLISHER_BATCH_SIZE,
    "request_timeout_ms": 30_000,
    "retry_backoff_ms": 100,
}


# An event ready to append: its topic-partition, key, encoded value and header values.
_Record = tuple[tuple[str, int], bytes, bytes, tuple[HeaderValue, ...]]
_Encode = Callable[[bytes, dict[str, Any]], bytes]  # a compiled encoder: (frame header, fields)
_HeaderValues = Callable[[dict[str, Any], str], tuple[HeaderValue, ...] | None]


def _unavailable(
    model: type[BaseEvent], topic: str, error: RegistryError
) -> SchemaRegistrationError:
    return SchemaRegistrationError(
        f"schema of {model.RECORD_NAME} for {topic} refused or unavailable: {error}"
    )


class EventPublisher:
    """Publishes events to their category topics, keyed by session id.

    ``publish`` returns once the broker has the event (acks=all) or raises a typed error.
    ``send`` is the high-throughput path: it returns a future as soon as the record is queued,
    with at most ``max_in_flight`` unacknowledged records (it waits, never grows unbounded).

    Events are validated when they are built and are immutable, so they are not validated
    again here; pass ``revalidate=True`` if your code builds events with ``model_construct``.
    Encoding still refuses any value that does not fit the Avro schema, before sending.
    """

    def __init__(  # noqa: PLR0913  # every knob is a documented, independent setting
        self,
        settings: AgentfluxSettings | None = None,
        *,
        codec: AvroCodec | None = None,
        max_in_flight: int = 10_000,
        publish_timeout_s: float = 30.0,
        connect_timeout_s: float = 30.0,
        revalidate: bool = False,
        producer_id: str | None = None,
        **producer_overrides: Any,
    ) -> None:
        """Build from settings (default: the environment); overrides go to aiokafka.

        ``producer_id`` names this publisher in every event's envelope (default: host, pid and
        a random part); each session's events are numbered in ``sequence`` as they are queued.
        """
        self.settings = settings or AgentfluxSettings()
        self.sequences = SessionSequences(producer_id)
        self._own_registry = codec is None
        self.codec = codec or AvroCodec(
            RegistryClient.from_settings(self.settings),
            auto_register=self.settings.auto_register_schemas,
        )
        options = _PRODUCER_DEFAULTS | producer_overrides
        if options["compression_type"] == "lz4":
            install_fast_lz4()  # as Java producers compress LZ4; aiokafka alone uses LZ4-HC
        # The publisher lingers itself (see _batching); aiokafka must send what it is handed at
        # once, so its own linger is 0.
        self._producer = AIOKafkaProducer(
            **connection_kwargs(self.settings), **(options | {"linger_ms": 0})
        )
        self._batcher = Batcher(
            self._producer,
            header_names=HEADER_NAMES,
            batch_size=options["max_batch_size"],
            compression_type=options["compression_type"],
            linger_s=options["linger_ms"] / 1000,
            on_settled=self._settled,
            on_unreported_failure=self._unreported_failure,
        )
        # A plain counter, not asyncio.Semaphore: in Python 3.11 its acquire() builds a generator
        # on every call, which showed up in publish profiles.
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        self._room: asyncio.Future[None] | None = None
        self._pending: set[asyncio.Future[Any]] = set()
        # Records queued by enqueue() that the broker did not take, not yet raised by flush().
        # By topic-partition: how many, and the last error.
        self._unreported: dict[tuple[str, int], tuple[int, BaseException]] = {}
        self._topics: dict[type[BaseEvent], str] = {}
        # By event type, once its schema is registered and its topic's partitions are known:
        # topic, frame header, compiled encoder, header values in C, the topic's partitions (the
        # batcher's live list). The steady-state path calls them directly (compiled_writer,
        # header_values_for, key_partition): each saves Python calls per event.
        self._prepared: dict[
            type[BaseEvent], tuple[str, bytes, _Encode, _HeaderValues, list[int]]
        ] = {}
        self._publish_timeout_s = publish_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._revalidate = revalidate
        self._started = False
        self._closed = False
        # max_in_flight while started, not closed and not revalidating, else 0: the steady
        # path's whole admission check is one comparison with it.
        self._steady_limit = 0

    async def __aenter__(self) -> Self:
        """Start on entry."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Flush and close on exit."""
        await self.close()

    async def start(self) -> None:
        """Connect to the cluster, retrying with backoff until ``connect_timeout_s``."""
        if self._started:
            return
        deadline = time.monotonic() + self._connect_timeout_s
        delay = 0.2
        while True:
            try:
                await self._producer.start()
                break
            except KafkaConnectionError as exc:
                # A refused login or certificate will not pass on a retry: said at once.
                if (refused := await access_refused(self.settings)) is not None:
                    await self._producer.stop()
                    raise refused from exc
                if time.monotonic() + delay > deadline:
                    await self._producer.stop()
                    raise BrokerUnavailableError(
                        f"cannot reach Kafka at {self.settings.bootstrap_servers} within "
                        f"{self._connect_timeout_s:.0f} s: {exc}",
                    ) from exc
                await asyncio.sleep(delay)  # backoff between connection attempts
                delay = min(delay * 2, 5.0)
            except KafkaError as exc:
                # The idempotent producer's id needs a write grant: none at all is refused here.
                await self._producer.stop()
                denied = authorization_error(
                    exc, self.settings, "WRITE", error_type=PublishDeniedError
                )
                if denied is None:
                    raise
                raise denied from exc
        self._started = True
        self._steady_limit = 0 if self._revalidate else self._max_in_flight
        _log.info("publisher started", bootstrap_servers=self.settings.bootstrap_servers)

    def topic_for(self, event: BaseEvent) -> str:
        """The topic an event goes to: its category topic, behind the configured prefix."""
        topic = self._topics.get(type(event))
        if topic is None:  # once per event type: the concatenation showed up in publish profiles
            topic = self._topic_of(type(event))
        return topic

    def _topic_of(self, model: type[BaseEvent]) -> str:
        topic = self._topics[model] = self.settings.topic_prefix + model.TOPIC
        return topic

    def _require_open(self) -> None:
        if not self._started or self._closed:
            raise PublishError("the publisher is not started (or already closed)")

    async def prepare(self, models: Iterable[type[BaseEvent]] | None = None) -> int:
        """Learn each event type's schema id and its topic's partitions before its first event.

        Call it once after ``start``, as a runtime starts up. Without it, the first event
        of each type waits for the registry (a lookup) and for the topic's metadata, and that
        registry work falls on the first seconds of traffic. Looks up the shipped schema of
        every event type; registers none (unless ``AGENTFLUX_AUTO_REGISTER_SCHEMAS`` or the
        codec says to). Raises ``SchemaNotRegisteredError`` naming every subject the registry
        lacks this process's schema under, ``SchemaRegistrationError`` when the registry
        refuses or cannot answer, ``BrokerUnavailableError`` when a topic's partitions are
        unknown; nothing is sent either way. Returns how many types are ready.
        """
        self._require_open()
        wanted = list(EVENT_MODELS.values() if models is None else dict.fromkeys(models))
        outcomes = await asyncio.gather(
            *(self._prepare_type(model) for model in wanted), return_exceptions=True
        )
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        unregistered = [f for f in failures if isinstance(f, SchemaNotRegisteredError)]
        if len(unregistered) < len(failures):  # a broker or registry failure: likely all types
            raise next(f for f in failures if not isinstance(f, SchemaNotRegisteredError))
        if unregistered:  # one error naming every subject, not only the first type's
            raise SchemaNotRegisteredError(
                {s: found for error in unregistered for s, found in error.versions.items()}
            )
        return len(wanted)

    async def _prepare_type(self, model: type[BaseEvent]) -> None:
        topic = self._topic_of(model)
        try:
            await self.codec.prepare(model, topic)
        except RegistryError as exc:
            raise await self._schema_error(model, topic, exc) from exc
        await self._batcher.partition_for(topic, b"")
        self._remember_steady_path(model, topic)

    async def _schema_error(
        self, model: type[BaseEvent], topic: str, error: RegistryError
    ) -> SchemaRegistrationError:
        """Why the registry gave no id: this schema not registered (and what is), or refused."""
        if not isinstance(error, SchemaNotFoundError):
            return _unavailable(model, topic, error)
        subject = subject_name(topic, model.RECORD_NAME)
        try:
            versions = await self.codec.registry.get_versions(subject)
        except RegistryError as exc:
            return _unavailable(model, topic, exc)
        return SchemaNotRegisteredError({subject: versions})

    def _remember_steady_path(self, model: type[BaseEvent], topic: str) -> None:
        """Once its schema and partitions are known, the type's events take ``_ready_now``."""
        compiled = self.codec.compiled_writer(model, topic)
        partitions = self._batcher.known_partitions(topic)
        if compiled is not None and partitions is not None:
            self._prepared[model] = (topic, *compiled, header_values_for(model), partitions)

    async def _prepare_encoding(self, event: BaseEvent, topic: str) -> None:
        """Check ``event`` (when revalidating) and learn its schema id: the awaits of encoding."""
        if self._revalidate:
            try:
                # Catches events built with model_construct(), which skips validation.
                type(event).model_validate(event.__dict__)
            except ValidationError as exc:
                raise InvalidEventError(f"{type(event).__name__} is invalid: {exc}") from exc
        try:
            await self.codec.prepare(type(event), topic)
        except RegistryError as exc:
            raise await self._schema_error(type(event), topic, exc) from exc

    def _encode_stamped(self, event: BaseEvent, topic: str) -> bytes:
        """Number ``event`` in its session and encode it, with no await in between.

        Numbering and queueing happen in one step, so the numbers follow the order of the
        records on the topic; a number given to an event that does not encode is given back.
        """
        fields = self.sequences.stamped(event.__dict__)
        try:
            compiled = self.codec.compiled_writer(type(event), topic)
            if compiled is not None:
                header, encode = compiled
                try:
                    return encode(header, fields)
                except ENCODING_ERRORS as exc:
                    raise CodecError(
                        f"{type(event).__name__} does not fit its schema: {exc!r}"
                    ) from exc
            if fields is not event.__dict__:  # a schema fastavro writes: it takes an event
                stamp = {"producer_id": fields["producer_id"], "sequence": fields["sequence"]}
                event = event.model_copy(update=stamp)
            return self.codec.encode_known(event, topic)
        except CodecError as exc:
            self.sequences.rewind(fields, event.__dict__)
            raise InvalidEventError(str(exc)) from exc

    async def send(self, event: BaseEvent) -> asyncio.Future[PublishResult]:
        """Queue ``event``; the returned future resolves when the broker acknowledges it.

        Invalid events raise here, before anything is queued. Waits while ``max_in_flight``
        records are unacknowledged (backpressure).
        """
        return self._append(self._ready_now(event) or await self._ready(event))

    async def enqueue(self, event: BaseEvent) -> None:
        """Queue ``event`` without a result of its own: the cheapest way to publish many.

        As ``send`` (refused before anything is queued when invalid, waits for room), but
        no future per event: a record the broker does not take is logged at once, and the next
        ``flush`` (or ``close``) raises ``UnacknowledgedRecordsError`` saying how
        many such records failed, on which partitions and why. Nothing fails unseen.
        """
        tp, key, value, header_values = self._ready_now(event) or await self._ready(event)
        self._batcher.append(tp, key, value, header_values, result=False)
        self._in_flight += 1

    def _ready_now(self, event: BaseEvent) -> _Record | None:
        """The steady-state path without awaiting: None when anything needs the full path.

        The full path (``_ready``) registers a schema, looks up a new topic's partitions, waits
        for room and turns encoding failures into typed errors; a coroutine per step costs
        more than the rest of this path.
        """
        if self._in_flight >= self._steady_limit:
            return None
        prepared = self._prepared.get(type(event))
        if prepared is None:  # the type's first event, or a schema fastavro writes
            return None
        topic, header, encode, header_values, partitions = prepared
        fields = self.sequences.stamped(event.__dict__)
        try:
            value = encode(header, fields)
        except ENCODING_ERRORS:
            self.sequences.rewind(fields, event.__dict__)
            return None  # the full path raises the typed error
        key = event.session_id.encode()
        traceparent = current_traceparent()
        return (
            (topic, key_partition(key, partitions)),
            key,
            value,
            header_values(fields, traceparent) or event_header_values(event, traceparent),
        )

    async def _ready(self, event: BaseEvent) -> _Record:
        self._require_open()
        topic = self.topic_for(event)
        await self._prepare_encoding(event, topic)
        key = event.session_id.encode()
        partition = self._batcher.known_partition(topic, key)
        if partition is None:
            partition = await self._batcher.partition_for(topic, key)
        if type(event) not in self._prepared:  # once per type, not per event under backpressure
            self._remember_steady_path(type(event), topic)
        while self._in_flight >= self._max_in_flight:
            await self._wait_for_room()
        value = self._encode_stamped(event, topic)  # no await from here until it is queued
        return (topic, partition), key, value, event_header_values(event, current_traceparent())

    def _append(self, record: _Record) -> asyncio.Future[PublishResult]:
        future = self._batcher.append(*record)
        self._in_flight += 1
        self._pending.add(future)
        return future

    async def _wait_for_room(self) -> None:
        if self._room is None or self._room.done():
            self._room = asyncio.get_running_loop().create_future()
        await self._room

    def _unreported_failure(self, tp: tuple[str, int], count: int, error: BaseException) -> None:
        self._unreported[tp] = (self._unreported.get(tp, (0, error))[0] + count, error)
        _log.error(
            "queued records not acknowledged",
            topic=tp[0],
            partition=tp[1],
            records=count,
            error=repr(error),
        )

    def _settled(self, results: list[asyncio.Future[PublishResult] | None]) -> None:
        self._in_flight -= len(results)
        self._pending.difference_update(results)
        if self._room is not None and not self._room.done():
            self._room.set_result(None)  # every waiter checks the count again

    async def publish(self, event: BaseEvent) -> PublishResult:
        """Publish one event and wait until the broker has it (or raise a typed error)."""
        record = self._ready_now(event) or await self._ready(event)
        pending = self._append(record)
        self._batcher.submit(record[0])  # the caller waits: no linger for its batch
        try:
            return await asyncio.wait_for(asyncio.shield(pending), self._publish_timeout_s)
        except BrokerUnavailableError as exc:
            denied = authorization_error(
                exc.__cause__, self.settings, "WRITE", error_type=PublishDeniedError
            )
            if denied is None:
                raise
            raise denied from exc
        except TimeoutError as exc:
            raise PublishTimeoutError(
                f"{event.event_id} not acknowledged within {self._publish_timeout_s:.0f} s; it may "
                "still be written (the idempotent producer prevents duplicates of its retries)",
            ) from exc

    async def publish_many(self, events: Iterable[BaseEvent]) -> list[PublishResult]:
        """Publish many events through the high-throughput path; wait for all of them."""
        futures = [await self.send(event) for event in events]
        return list(await asyncio.gather(*futures))

    async def flush(self) -> None:
        """Wait until every queued record is acknowledged or failed."""
        try:
            await self._batcher.flush()
            await self._producer.flush()
        except KafkaTimeoutError as exc:
            raise PublishTimeoutError(f"flush did not complete: {exc}") from exc
        if self._pending:
            await asyncio.wait(list(self._pending))
        if self._unreported:
            failures, self._unreported = self._unreported, {}
            raise UnacknowledgedRecordsError(failures)

    async def close(self) -> None:
        """Flush what was accepted, then disconnect."""
        if self._closed:
            return
        self._closed = True
        self._steady_limit = 0
        try:
            if self._started:
                await self.flush()
        finally:
            await self._producer.stop()
            if self._own_registry:
                await self.codec.registry.aclose()
            _log.info("publisher closed")
