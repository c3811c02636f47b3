"""The compiled Avro codec of event records: in C when the extension is built, else in Python.

This module picks the implementation; each file below has one job:

- :mod:`._codegen`: a record schema (and its model) turned into Python source, which reads and
  writes the bytes fastavro does several times faster than fastavro;
- :mod:`._codegen_runtime`: what that generated code calls for every event;
- :mod:`._model_rules`: what a model demands of decoded values beyond their Avro types;
- :mod:`._conversions`: UUIDs and timestamps to and from their wire forms;
- ``_native.c``: the same work, described once here as a program of field ops and model rules,
  done in C, several times faster again. The generated Python stays the fallback and the
  reference the tests hold the C code to.

Every function returns ``None`` for a schema or model it does not compile: the codec then uses
fastavro (and pydantic's ``model_validate``).
"""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Any

from agentflux.schemas._codegen import (
    kind_and_logical,
    nullable,
    python_builder,
    python_decoder,
    python_reader,
    python_writer,
)
from agentflux.schemas._codegen_runtime import ConstraintError
from agentflux.schemas._conversions import (
    UUID_LAYOUT_KNOWN,
    _native,
    parse_uuid,
    utc_text,
    uuid_bytes,
)
from agentflux.schemas._model_rules import UnsupportedError, buildable, field_rules

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from pydantic import BaseModel

__all__ = [
    "ConstraintError",
    "compile_builder",
    "compile_decoder",
    "compile_encoder",
    "compile_reader",
    "compile_writer",
    "decode_framed",
    "native_decoder_behind",
    "utc_text",
    "uuid_bytes",
]


def compile_writer(
    schema: Mapping[str, Any], *, native: bool = True
) -> Callable[[bytearray, Mapping[str, Any]], None] | None:
    """``write(out, record)`` appending the Avro body of a record dict, or None if unsupported.

    With ``native`` (and the C extension built), the writing runs in C; otherwise in generated
    Python. Both write exactly fastavro's bytes.
    """
    if schema.get("type") != "record":
        return None
    if native and (encoder := _native_encoder(schema)) is not None:
        write: Callable[[bytearray, Mapping[str, Any]], None] = encoder.write
        return write
    try:
        return python_writer(schema)
    except UnsupportedError:
        return None


def compile_encoder(
    schema: Mapping[str, Any], *, native: bool = True
) -> Callable[[bytes, Mapping[str, Any]], bytes] | None:
    """``encode(prefix, record)``: ``prefix`` then a record dict's Avro body, as one bytes object.

    The publish hot path (the prefix is the registry framing). In C, the body is written once,
    straight into the result; the generated Python writer appends to a bytearray, then copies.
    None if the schema is not supported (fastavro then).
    """
    if schema.get("type") != "record":
        return None
    if native and (encoder := _native_encoder(schema)) is not None:
        encode: Callable[[bytes, Mapping[str, Any]], bytes] = encoder.encode
        return encode
    write = compile_writer(schema, native=False)
    if write is None:
        return None

    def encode_in_python(prefix: bytes, record: Mapping[str, Any]) -> bytes:
        out = bytearray(prefix)
        write(out, record)
        return bytes(out)

    return encode_in_python


def compile_reader(
    schema: Mapping[str, Any],
) -> Callable[[bytes, int], tuple[dict[str, Any], int]] | None:
    """``read(data, pos) -> (record dict, end)`` for a record schema, or None if unsupported.

    Truncated or malformed bodies raise ``IndexError``, ``EOFError``, ``ValueError``,
    ``UnicodeDecodeError`` or ``struct.error``, as fastavro does; the caller checks ``end``.
    """
    if schema.get("type") != "record":
        return None
    try:
        return python_reader(schema)
    except UnsupportedError:
        return None


def compile_builder(model: type[BaseModel]) -> Callable[[dict[str, Any]], BaseModel] | None:
    """``build(record)`` making a model instance from an Avro-decoded record, or None.

    Equivalent to ``model.model_validate(record)`` for records whose values have the types the
    model's Avro schema gives them (which decoding guarantees); raises :class:`ConstraintError`
    where pydantic would raise a validation error.
    """
    if not buildable(model):
        return None
    try:
        return python_builder(model)
    except UnsupportedError:
        return None


def compile_decoder(
    schema: Mapping[str, Any], model: type[BaseModel], *, native: bool = True
) -> Callable[[bytes, int], tuple[BaseModel, int]] | None:
    """``decode(data, pos) -> (instance, end)`` for a record schema and its model, or None.

    :func:`compile_reader` and :func:`compile_builder` in one function, with no record dict in
    between: the consumer's hot path. With ``native`` (and the C extension built), the same
    reading and checks run in C, several times faster; otherwise generated Python does them.
    """
    if schema.get("type") != "record" or not buildable(model):
        return None
    if native and (in_c := _native_decoder(schema, model)) is not None:
        return in_c
    try:
        return python_decoder(schema, model)
    except UnsupportedError:
        return None


# -- the C extension -----------------------------------------------------------------------------

_SIMPLE_OPS = frozenset({"null", "boolean", "int", "long", "float", "double", "string", "bytes"})


def _native_op(schema: Any) -> tuple[Any, ...]:
    """How :mod:`agentflux.schemas._native` reads a value of ``schema``, as a nested tuple."""
    kind, spec, logical = kind_and_logical(schema)
    if logical is not None:
        return (logical,)
    if kind in _SIMPLE_OPS:
        return (kind,)
    if kind == "enum":
        return ("enum", tuple(spec["symbols"]))
    if kind == "union":
        null_index, _, other = nullable(spec["type"])
        return ("nullable", null_index, _native_op(other))
    if kind == "map":
        return ("map", _native_op(spec["values"]))
    if kind == "array":
        return ("array", _native_op(spec["items"]))
    raise UnsupportedError(f"type {kind}")


def _native_encoder(schema: Mapping[str, Any]) -> Any:
    """The C encoder of a record schema, or None (no extension, or a shape only Python writes)."""
    if _native is None:
        return None
    try:
        ops = tuple(_native_op(field["type"]) for field in schema["fields"])
        names = tuple(field["name"] for field in schema["fields"])
        return _native.Encoder(ops, names, uuid_bytes)
    except (UnsupportedError, ValueError):  # ValueError: a shape only Python writes
        return None


def _key_sharing_dict(names: tuple[str, ...]) -> dict[str, Any]:
    """A dict of ``names`` (all None) whose copies share its keys table (a CPython split dict).

    An instance's ``__dict__`` materialised from its attributes is such a dict; ``dict.copy``
    of it makes another one on the same keys. The C decoder copies it for every event instead
    of building (and later freeing) a keys table per event. Elsewhere it is a plain dict.
    """
    holder = type("_Fields", (), {})()  # a class of its own: its keys are exactly these
    for name in names:
        setattr(holder, name, None)
    fields: dict[str, Any] = holder.__dict__
    return fields


def _native_decoder(
    schema: Mapping[str, Any], model: type[BaseModel]
) -> Callable[[bytes, int], tuple[BaseModel, int]] | None:
    """The C decoder for a record and its model; None without the extension or if unsupported.

    The C code builds UUIDs as :mod:`._conversions` does: on another layout, Python decodes.
    """
    if _native is None or not UUID_LAYOUT_KNOWN:
        return None
    names = [field["name"] for field in schema["fields"]]
    if sorted(names) != sorted(model.model_fields):
        return None
    try:
        ops = tuple(_native_op(field["type"]) for field in schema["fields"])
        checks = []
        for name, field in model.model_fields.items():
            rules = field_rules(model, name, field)
            checks.append(
                (
                    names.index(name),
                    name,
                    rules.optional,
                    rules.literal,
                    rules.members,
                    rules.min_length,
                    rules.max_length,
                    rules.ge,
                    rules.validators,
                )
            )
        template = _key_sharing_dict(tuple(model.model_fields))
        decoder = _native.Decoder(ops, tuple(checks), model, ConstraintError, parse_uuid, template)
    except (UnsupportedError, ValueError):  # ValueError: a shape only Python reads (null items)
        return None
    decode: Callable[[bytes, int], tuple[BaseModel, int]] = decoder.decode
    return decode


def native_decoder_behind(decode: Callable[..., Any]) -> Any | None:
    """The C ``Decoder`` whose method ``decode`` is (from :func:`compile_decoder`), or None."""
    owner = getattr(decode, "__self__", None)
    return owner if _native is not None and isinstance(owner, _native.Decoder) else None


def decode_framed(
    decoders: dict[int, Any],
    values: Sequence[bytes],
    rows: dict[int, tuple[Any, ...]] | None = None,
) -> tuple[list[Any], int]:
    """(events, misses): framed values decoded in C by the decoder of their schema id.

    None (counted in misses) where the id has no decoder here, the frame is foreign, or the body
    does not decode exactly; the caller's slower path handles those and names their errors.
    With ``rows`` (schema id -> ``(first, field index, ...)``), each event is that row of it
    instead of an instance, checked all the same; an id with no projection there is a miss.
    """
    if _native is None:
        return [None] * len(values), len(values)
    return typing.cast("tuple[list[Any], int]", _native.decode_framed(decoders, values, rows))
