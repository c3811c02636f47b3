"""The one codec: events to Confluent-framed Avro and back, with schemas from the registry.

Wire format: magic byte ``0``, the schema's 4-byte big-endian global id, then the Avro binary
body. Subjects follow the topic-record name strategy: ``<topic>-<record full name>``.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import fastavro
from pydantic import ValidationError

from agentflux.schemas._compiled import (
    ConstraintError,
    compile_decoder,
    compile_encoder,
    compile_reader,
    decode_framed,
    native_decoder_behind,
)
from agentflux.schemas._errors import (
    CodecError,
    CorruptPayloadError,
    SchemaNotFoundError,
    SchemaResolutionError,
    UnknownSchemaIdError,
)
from agentflux.schemas._events import EVENT_MODELS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from agentflux.schemas._models import BaseEvent

    _BodyDecoder = Callable[[bytes, int], tuple[Any, int]]

    from agentflux.schemas._registry import RegistryClient
    from agentflux.schemas._rows import EventRows

__all__ = ["ENCODING_ERRORS", "AvroCodec", "UnknownEvent", "load_schema", "subject_name"]

_MAGIC = 0
_HEADER = struct.Struct(">bI")


def subject_name(topic: str, record_name: str) -> str:
    """The registry subject of a record type on a topic (topic-record name strategy)."""
    return f"{topic}-{record_name}"


def load_schema(model: type[BaseEvent]) -> dict[str, Any]:
    """The current ``.avsc`` of a model, as shipped in the package."""
    category = model.EVENT_TYPE.category.value
    name = model.RECORD_NAME.rpartition(".")[2]
    text = (
        resources.files("agentflux.contract").joinpath("avro", category, f"{name}.avsc").read_text()
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def released_schema(model: type[BaseEvent], version: int) -> dict[str, Any]:
    """Version ``version`` of a model's schema, as released (``history/<record>/v<N>.avsc``)."""
    text = (
        resources.files("agentflux.contract")
        .joinpath("avro", "history", model.RECORD_NAME, f"v{version}.avsc")
        .read_text()
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """A record of a type this reader has no model for: reported, never a crash."""

    schema_id: int
    record_name: str
    data: dict[str, Any] = field(repr=False)

    @property
    def event_type(self) -> str | None:
        """The envelope's event type, when the writer's record has one."""
        value = self.data.get("event_type")
        return str(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class _Writer:
    header: bytes
    parsed: Any
    encode: Callable[[bytes, dict[str, Any]], bytes] | None  # compiled; None: use fastavro


ENCODING_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError, struct.error)
"""What the compiled encoders and fastavro raise for a value that does not fit its schema."""


_LAYOUT_IRRELEVANT = frozenset({"doc", "default", "aliases", "order"})


def _layout(schema: Any) -> Any:
    """A schema without the attributes that do not change how values are encoded."""
    if isinstance(schema, dict):
        return {k: _layout(v) for k, v in schema.items() if k not in _LAYOUT_IRRELEVANT}
    if isinstance(schema, list):
        return [_layout(item) for item in schema]
    return schema


class AvroCodec:
    """Encodes events to and decodes them from the Confluent wire format.

    The first ``encode`` of a model on a topic looks its schema up (registers it, with
    ``auto_register``); after that :meth:`encode_known` is synchronous and touches no network.
    Decoding looks the writer's schema up by id once and resolves it against the reader's own
    schema for that record.
    """

    def __init__(
        self,
        registry: RegistryClient,
        *,
        auto_register: bool = False,
        models: Iterable[type[BaseEvent]] = EVENT_MODELS.values(),
        reader_schemas: Callable[[type[BaseEvent]], dict[str, Any]] = load_schema,
    ) -> None:
        """Use ``registry``, where schemas must be registered already (``schemas register``).

        ``auto_register`` lets :meth:`prepare` register a schema the registry lacks, skipping
        the compatibility gate: for development clusters and tests only. ``reader_schemas``
        gives the schema each model's records are read with (default: the shipped ``.avsc``);
        e.g. ``functools.partial(released_schema, version=1)`` reads as a consumer still on
        version 1 does.
        """
        self.registry = registry
        self._auto_register = auto_register
        self._models = {model.RECORD_NAME: model for model in models}
        # What this codec writes (and what the registry has under the ids it learns by lookup),
        # and what it reads with: the same unless ``reader_schemas`` says otherwise.
        self._shipped_schemas = {
            name: fastavro.parse_schema(load_schema(model)) for name, model in self._models.items()
        }
        self._reader_schemas = dict(self._shipped_schemas)
        # Generated decoders read the shipped layout; other readers resolve through fastavro.
        self._reads_shipped = set(self._models)
        if reader_schemas is not load_schema:  # read as another release of the contract does
            readers = {name: reader_schemas(model) for name, model in self._models.items()}
            self._reader_schemas = {n: fastavro.parse_schema(s) for n, s in readers.items()}
            self._reads_shipped = {
                n for n, s in readers.items() if _layout(s) == _shipped_layout(self._models[n])
            }
        self._writers: dict[tuple[str, type[BaseEvent]], _Writer] = {}
        self._by_id: dict[int, tuple[Any, str]] = {}
        # Generated readers for writer schemas laid out exactly as the reader's own schema
        # (the usual case); any other writer goes through fastavro's schema resolution.
        self._fast_decoders: dict[int, Callable[[bytes], BaseEvent]] = {}
        # The C decoders among them, by schema id: a consumer's batch is decoded in one call.
        self._native_decoders: dict[int, Any] = {}
        # Per reader of rows, its C projection of each schema id among the C decoders'.
        self._projections: dict[EventRows, dict[int, tuple[Any, ...]]] = {}

    # -- encode --------------------------------------------------------------------------------

    async def prepare(self, model: type[BaseEvent], topic: str | None = None) -> int:
        """Look up (with ``auto_register``: register) the model's schema for ``topic``; its id.

        Raises :class:`~schemas.SchemaNotFoundError` when the registry does not have it.
        """
        topic = topic or model.EVENT_TYPE.category.topic
        key = (topic, model)
        if key not in self._writers:
            schema = load_schema(model)
            subject = subject_name(topic, model.RECORD_NAME)
            if self._auto_register:
                schema_id = await self.registry.register(subject, schema)
            else:
                found = await self.registry.lookup(subject, schema)
                if found is None:
                    raise SchemaNotFoundError(
                        f"this schema of {model.RECORD_NAME} is not registered under {subject}; "
                        "register it with `agentflux schemas register`"
                    )
                schema_id = found
            parsed = self._shipped_schemas[model.RECORD_NAME]
            header = _HEADER.pack(_MAGIC, schema_id)
            self._writers[key] = _Writer(header, parsed, _compiled_encoder(model))
            self._remember_writer(schema_id, parsed, model.RECORD_NAME, schema)
        return _HEADER.unpack(self._writers[key].header)[1]  # type: ignore[no-any-return]

    async def prefetch(self, models_on_topics: Iterable[tuple[type[BaseEvent], str]]) -> int:
        """Learn the ids of these models' shipped schemas on these topics before a record needs one.

        A consumer starting cold otherwise stops at its first record of each type to ask the
        registry, partition by partition. Looks up only, never registers: a schema not
        registered yet is left to be fetched when its first record comes. Returns how many ids
        were found; raises :class:`~schemas.RegistryError` if the registry cannot answer.
        """

        async def one(model: type[BaseEvent], topic: str) -> bool:
            schema = load_schema(model)
            found = await self.registry.lookup(subject_name(topic, model.RECORD_NAME), schema)
            if found is not None:
                parsed = self._shipped_schemas[model.RECORD_NAME]
                self._remember_writer(found, parsed, model.RECORD_NAME, schema)
            return found is not None

        wanted = [(m, t) for m, t in models_on_topics if m.RECORD_NAME in self._models]
        return sum(await asyncio.gather(*(one(model, topic) for model, topic in wanted)))

    async def encode(self, event: BaseEvent, topic: str | None = None) -> bytes:
        """Frame ``event`` for ``topic`` (default: its category topic)."""
        await self.prepare(type(event), topic)
        return self.encode_known(event, topic)

    def encode_known(self, event: BaseEvent, topic: str | None = None) -> bytes:
        """Frame ``event`` whose model was prepared for ``topic``: no I/O, the publish hot path."""
        key = (topic or event.topic, type(event))
        writer = self._writers.get(key)
        if writer is None:
            raise CodecError(
                f"{type(event).__name__} is not prepared for {key[0]}; await encode() first"
            )
        # The model's attributes already have Avro's Python types (UUID, aware datetime, str).
        try:
            if writer.encode is not None:
                return writer.encode(writer.header, event.__dict__)
            buffer = io.BytesIO()
            buffer.write(writer.header)
            fastavro.schemaless_writer(buffer, writer.parsed, event.__dict__)
            return buffer.getvalue()
        except ENCODING_ERRORS as exc:
            raise CodecError(f"{type(event).__name__} does not fit its schema: {exc!r}") from exc

    def compiled_writer(
        self, model: type[BaseEvent], topic: str
    ) -> tuple[bytes, Callable[[bytes, dict[str, Any]], bytes]] | None:
        """The frame header and compiled encoder of a model prepared for ``topic``, or None.

        ``encode(header, event.__dict__)`` is :meth:`encode_known` without its lookups; it raises
        one of :data:`ENCODING_ERRORS` (not :class:`CodecError`) for an event that does not fit.
        None: not prepared yet, or written through fastavro (a schema the compiler leaves).
        """
        writer = self._writers.get((topic, model))
        if writer is None or writer.encode is None:
            return None
        return writer.header, writer.encode

    # -- decode --------------------------------------------------------------------------------

    @staticmethod
    def schema_id_of(data: bytes) -> int:
        """The schema id a framed record names; raises CorruptPayloadError on a bad frame."""
        if len(data) < _HEADER.size:
            raise CorruptPayloadError(
                f"{len(data)} byte(s) is shorter than the 5-byte frame header"
            )
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise CorruptPayloadError(f"magic byte {magic} is not 0: not a Confluent-framed record")
        return int(schema_id)

    async def _writer_schema(self, schema_id: int) -> tuple[Any, str]:
        if schema_id not in self._by_id:
            try:
                text = await self.registry.get_schema(schema_id)
            except SchemaNotFoundError as exc:
                raise UnknownSchemaIdError(
                    f"the registry has no schema with id {schema_id}"
                ) from exc
            raw = json.loads(text)
            parsed = fastavro.parse_schema(raw)
            name = parsed["name"] if isinstance(parsed, dict) else str(raw)
            self._remember_writer(schema_id, parsed, name, raw)
        return self._by_id[schema_id]

    def _remember_writer(self, schema_id: int, parsed: Any, name: str, raw: Any) -> None:
        if schema_id in self._by_id:
            return
        self._by_id[schema_id] = (parsed, name)
        model = self._models.get(name)
        if model is None or name not in self._reads_shipped:
            return
        if _layout(raw) != _shipped_layout(model):
            return
        decode_body = _compiled_decoder(model)
        if decode_body is not None:
            self._fast_decoders[schema_id] = _fast_decoder(decode_body, f"{name} (id {schema_id})")
            native = native_decoder_behind(decode_body)
            if native is not None:
                self._native_decoders[schema_id] = native

    def decode_cached(self, data: bytes) -> BaseEvent | UnknownEvent | None:
        """Like :meth:`decode` with no I/O: None while the writer's schema is not fetched yet."""
        schema_id = self.schema_id_of(data)
        fast = self._fast_decoders.get(schema_id)
        if fast is not None:
            return fast(data)
        if schema_id not in self._by_id:
            return None
        return self._decode_resolving(schema_id, data)

    def decode_many_cached(self, values: Sequence[bytes]) -> list[BaseEvent | UnknownEvent | None]:
        """:meth:`decode_cached` of each value (a consumer's batch); raises the first error.

        The usual records (writer schemas laid out as the models', seen before) are decoded
        in C in one call; any other takes :meth:`decode_cached`'s path, which also raises the
        typed error of a record that does not decode.
        """
        events, misses = decode_framed(self._native_decoders, values)
        if misses:
            for index, event in enumerate(events):
                if event is None:
                    events[index] = self.decode_cached(values[index])
        return events

    def decode_many_rows_cached(
        self, values: Sequence[bytes], rows: EventRows
    ) -> list[tuple[Any, ...] | UnknownEvent | None]:
        """:meth:`decode_many_cached`, each event as its row of ``rows`` (``rows.row(event)``).

        The usual records become rows in C with no instance in between, after the same checks;
        any other goes through :meth:`decode_cached` (which raises the typed errors) and
        :meth:`EventRows.row`. None: the writer's schema is not fetched yet.
        """
        found, misses = decode_framed(self._native_decoders, values, self._projection(rows))
        if misses:
            for index, row in enumerate(found):
                if row is None:
                    event = self.decode_cached(values[index])
                    is_model = event is not None and not isinstance(event, UnknownEvent)
                    found[index] = rows.row(event) if is_model else event  # type: ignore[arg-type]  # a model
        return found

    def _projection(self, rows: EventRows) -> dict[int, tuple[Any, ...]]:
        """``rows``'s C projection of every schema id with a C decoder (made as ids come)."""
        projection = self._projections.setdefault(rows, {})
        if len(projection) != len(self._native_decoders):
            for schema_id in self._native_decoders.keys() - projection.keys():
                model = self._models[self._by_id[schema_id][1]]
                projection[schema_id] = rows.indexes(model)
        return projection

    async def decode(self, data: bytes) -> BaseEvent | UnknownEvent:
        """Read a framed record into its model, or an :class:`UnknownEvent` for a foreign type."""
        schema_id = self.schema_id_of(data)
        await self._writer_schema(schema_id)
        return self.decode_known(data)

    def decode_known(self, data: bytes) -> BaseEvent | UnknownEvent:
        """Like :meth:`decode` when the writer's schema id was seen before: no I/O."""
        event = self.decode_cached(data)
        if event is None:
            schema_id = self.schema_id_of(data)
            raise CodecError(f"schema id {schema_id} not fetched yet; await decode() first")
        return event

    def _decode_resolving(self, schema_id: int, data: bytes) -> BaseEvent | UnknownEvent:
        """Decode through fastavro's schema resolution (other writer layouts, foreign types)."""
        writer, record_name = self._by_id[schema_id]
        model = self._models.get(record_name)
        body = io.BytesIO(data)
        body.seek(_HEADER.size)
        reader = self._reader_schemas.get(record_name, writer)
        try:
            datum = fastavro.schemaless_reader(body, writer, reader)
        except fastavro.read.SchemaResolutionError as exc:
            raise SchemaResolutionError(f"{record_name} (id {schema_id}): {exc}") from exc
        except Exception as exc:  # fastavro raises EOFError, IndexError, UnicodeDecodeError, ...
            raise CorruptPayloadError(
                f"{record_name} (id {schema_id}): body does not decode: {exc!r}"
            ) from exc
        if body.tell() != len(data):
            raise CorruptPayloadError(
                f"{record_name} (id {schema_id}): {len(data) - body.tell()} trailing byte(s)"
            )
        if model is None or not isinstance(datum, dict):
            return UnknownEvent(
                schema_id, record_name, datum if isinstance(datum, dict) else {"value": datum}
            )
        try:
            return model.model_validate(datum)
        except ValidationError as exc:
            raise CorruptPayloadError(
                f"{record_name} (id {schema_id}): decoded values are invalid: {exc}"
            ) from exc


@cache
def _shipped_layout(model: type[BaseEvent]) -> Any:
    """The layout of a model's shipped schema, read from the package once per process."""
    return _layout(load_schema(model))


# Generated code depends only on the model (its shipped schema): made once per process, shared
# by every codec, so a new runner or publisher does not compile again.
@cache
def _compiled_encoder(model: type[BaseEvent]) -> Callable[[bytes, dict[str, Any]], bytes] | None:
    return compile_encoder(load_schema(model))


@cache
def _compiled_decoder(model: type[BaseEvent]) -> _BodyDecoder | None:
    """Generated code for a body: fused read and build, or read then pydantic; None: fastavro."""
    schema = load_schema(model)
    fused = compile_decoder(schema, model)
    if fused is not None:
        return fused
    read = compile_reader(schema)
    if read is None:
        return None

    def read_then_validate(data: bytes, pos: int) -> tuple[Any, int]:
        record, end = read(data, pos)
        return model.model_validate(record), end

    return read_then_validate


def _fast_decoder(decode_body: _BodyDecoder, described: str) -> Callable[[bytes], BaseEvent]:
    """Decode with generated code, raising the codec's typed errors."""

    def decode(data: bytes) -> BaseEvent:
        try:
            event, end = decode_body(data, _HEADER.size)
        except (ConstraintError, ValidationError) as exc:
            raise CorruptPayloadError(f"{described}: decoded values are invalid: {exc}") from exc
        except Exception as exc:  # IndexError, EOFError, ValueError, UnicodeDecodeError, ...
            raise CorruptPayloadError(f"{described}: body does not decode: {exc!r}") from exc
        if end != len(data):
            raise CorruptPayloadError(f"{described}: {len(data) - end} trailing byte(s)")
        return event  # type: ignore[no-any-return]

    return decode
