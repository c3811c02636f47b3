"""Avro readers and writers generated per schema, and event models built without re-validation.

fastavro interprets a parsed schema for every record: about 14 µs to write and 14 µs to read one
of our events, the largest part of the platform's per-event cost. This module turns a record
schema into straight-line Python once (``compile`` + ``exec``, as Java's specific records or
protobuf's generated code do) and reads and writes the same bytes several times faster.

Only what the event schemas use is compiled: primitives, ``uuid`` and ``timestamp-millis``
logical types, enums, maps, arrays and unions with ``null``. For anything else the functions
return ``None`` and the codec keeps using fastavro. The unit tests check that the generated code
writes exactly fastavro's bytes and reads exactly what fastavro and pydantic produce.

With the C extension built (``schemas/_native.c``), :func:`compile_decoder` and
:func:`compile_writer` hand the same work, described once as a program of field ops and model
rules, to C: several times faster again; the generated Python stays as the fallback and as the
reference the tests hold the C code to.

:func:`compile_builder` is the second half of decoding: a decoded record already has the types
Avro guarantees, so only the model's constraints (lengths, bounds, the fixed event type, enum
members, ``after`` field validators) are checked before the instance is assembled; a model with
anything else falls back to ``model_validate``.
"""

from __future__ import annotations

import struct
import types
import typing
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

import annotated_types
from pydantic import AwareDatetime, Strict, StringConstraints

_native: types.ModuleType | None
try:  # the C decoder, built with the package; without it, generated Python decodes
    from agentflux.schemas import _native
except ImportError:  # pragma: no cover  # a source checkout without a compiler
    _native = None

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from pydantic import BaseModel
    from pydantic.fields import FieldInfo

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

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_SEVEN_BITS = 0x7F
_CANONICAL_UUID_LENGTH = 36
_UUID_SAFETY_UNKNOWN = uuid.SafeUUID.unknown  # an enum member lookup costs ~0.5 µs per event
_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")


class ConstraintError(ValueError):
    """A decoded value breaks a constraint of its model (length, bound, event type, ...)."""


class _UnsupportedError(Exception):
    """The schema or model uses something this module does not compile."""


# -- shared helpers the generated code calls -----------------------------------------------------


def _varint(value: int) -> bytes:
    """Zig-zag varint of a long (the generated code inlines the one-byte case)."""
    if not _LONG_MIN <= value <= _LONG_MAX:
        raise ValueError(f"{value} does not fit an Avro long")
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while zigzag > _SEVEN_BITS:
        out.append((zigzag & _SEVEN_BITS) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint at ``pos``: (value, next position); IndexError when truncated."""
    byte = data[pos]
    pos += 1
    result = byte & 0x7F
    shift = 7
    while byte & 0x80:
        if shift > 63:  # noqa: PLR2004  # ten bytes at most for a 64-bit long
            raise ValueError("varint longer than 10 bytes")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
    if result >> 64:
        raise ValueError("varint does not fit 64 bits")
    return (result >> 1) ^ -(result & 1), pos


def _millis(value: datetime | int) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("timestamp-millis needs an aware datetime")
        return (value - _EPOCH) // _ONE_MS
    return value


_last_uuid_bytes: tuple[object, bytes] = (None, b"")


def utc_text(value: datetime) -> bytes:
    """RFC 3339 text of a datetime, ``Z`` for UTC: ``isoformat()`` with ``+00:00`` replaced.

    Every published event's ``ce_time`` header: ~2.4 µs in Python, ~0.1 µs formatted in C
    (UTC values; any other offset, a naive value or a subclass takes the Python expression).
    """
    text = None if _native is None else _native.utc_text(value)
    return text if text is not None else value.isoformat().replace("+00:00", "Z").encode()


def _python_uuid_bytes(value: uuid.UUID | str) -> bytes:
    """``uuid_bytes`` without the C extension: the same one-entry memo, in Python."""
    global _last_uuid_bytes  # noqa: PLW0603  # a one-entry memo, replaced atomically
    last_value, last_bytes = _last_uuid_bytes
    if value is last_value:
        return last_bytes
    encoded = str(value).encode()
    _last_uuid_bytes = (value, encoded)  # a tuple swapped in whole: no mismatched pair
    return encoded


uuid_bytes: Callable[[uuid.UUID | str], bytes] = (
    _python_uuid_bytes if _native is None else _native.uuid_text
)
"""The canonical text of a UUID, encoded; the last one is remembered.

Publishing formats an event's id three times (the Avro body, then the ``event_id`` and ``ce_id``
headers); formatting a UUID costs ~1 µs in Python (~0.1 µs in C), so the later times are a
comparison. In C when the extension is built (no Python frame per call on the hot path)."""


def _uuid(text: str) -> uuid.UUID:
    # uuid.UUID() parses every spelling it accepts; the canonical one is built directly.
    if len(text) == _CANONICAL_UUID_LENGTH and text[8] == text[13] == text[18] == text[23] == "-":
        value = object.__new__(uuid.UUID)
        object.__setattr__(value, "int", int(text.replace("-", ""), 16))
        object.__setattr__(value, "is_safe", _UUID_SAFETY_UNKNOWN)
        return value
    return uuid.UUID(text)


_GLOBALS: dict[str, Any] = {
    "_varint": _varint,
    "_read_varint": _read_varint,
    "_millis": _millis,
    "_pack_double": _DOUBLE.pack,
    "_pack_float": _FLOAT.pack,
    "_unpack_double": _DOUBLE.unpack_from,
    "_unpack_float": _FLOAT.unpack_from,
    "_UUID": _uuid,
    "_uuid_bytes": uuid_bytes,
    "_EPOCH": _EPOCH,
    "_timedelta": timedelta,
    "_INT_MIN": _INT_MIN,
    "_INT_MAX": _INT_MAX,
}


class _Source:
    """Lines of generated code with indentation, fresh variable names and bound constants."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self._counter = 0

    def fresh(self, stem: str) -> str:
        self._counter += 1
        return f"{stem}{self._counter}"

    def constant(self, value: Any) -> str:
        name = self.fresh("_k")
        self.constants[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def function(self, name: str) -> Any:
        namespace = _GLOBALS | self.constants
        exec(compile("\n".join(self.lines), f"<agentflux {name}>", "exec"), namespace)  # noqa: S102  # our own generated code, built from a schema
        return namespace[name]


def _normalized(schema: Any) -> tuple[str, dict[str, Any]]:
    """(type name, the schema as a dict) for a type given as a name or a dict."""
    if isinstance(schema, str):
        return schema, {"type": schema}
    if isinstance(schema, list):
        return "union", {"type": schema}
    if isinstance(schema, dict) and isinstance(schema.get("type"), str):
        return schema["type"], schema
    raise _UnsupportedError(repr(schema))


_LOGICAL_TYPES = frozenset({("long", "timestamp-millis"), ("string", "uuid")})


def _kind_and_logical(schema: Any) -> tuple[str, dict[str, Any], str | None]:
    """(type name, schema as a dict, logical type) of a type this module compiles."""
    kind, spec = _normalized(schema)
    logical = spec.get("logicalType")
    if logical is not None and (kind, logical) not in _LOGICAL_TYPES:
        raise _UnsupportedError(f"{kind} with logicalType {logical}")
    return kind, spec, logical


def _nullable(branches: list[Any]) -> tuple[int, int, Any]:
    """(index of null, index of the other branch, that branch) of a two-branch union with null."""
    if len(branches) != 2 or "null" not in branches:  # noqa: PLR2004  # null plus one type
        raise _UnsupportedError(f"union {branches}")
    null_index = branches.index("null")
    return null_index, 1 - null_index, branches[1 - null_index]


# -- writers -------------------------------------------------------------------------------------


def _write_long(src: _Source, indent: int, value: str) -> None:
    zigzag = src.fresh("z")
    src.emit(indent, f"if -64 <= {value} < 64:")
    src.emit(indent + 1, f"{zigzag} = ({value} << 1) ^ ({value} >> 63)")
    src.emit(indent + 1, f"out.append({zigzag})")
    src.emit(indent, "else:")
    src.emit(indent + 1, f"out += _varint({value})")


def _write_text(src: _Source, indent: int, encoded: str) -> None:
    src.emit(indent, f"if len({encoded}) < 64:")
    src.emit(indent + 1, f"out.append(len({encoded}) << 1)")
    src.emit(indent, "else:")
    src.emit(indent + 1, f"out += _varint(len({encoded}))")
    src.emit(indent, f"out += {encoded}")


def _write(src: _Source, indent: int, schema: Any, value: str) -> None:  # noqa: C901, PLR0912  # one branch per Avro type
    kind, spec, logical = _kind_and_logical(schema)
    if kind == "null":
        src.emit(indent, f"if {value} is not None: raise TypeError('null expected')")
    elif kind == "boolean":
        src.emit(indent, f"out.append(1 if {value} else 0)")
    elif kind in {"int", "long"}:
        number = value
        if logical == "timestamp-millis":
            number = src.fresh("ms")
            src.emit(indent, f"{number} = _millis({value})")
        if kind == "int":
            src.emit(indent, f"if not _INT_MIN <= {number} <= _INT_MAX:")
            src.emit(indent + 1, f"raise ValueError(f'{{{number}}} does not fit an Avro int')")
        _write_long(src, indent, number)
    elif kind in {"float", "double"}:
        src.emit(indent, f"out += _pack_{kind}({value})")
    elif kind in {"string", "bytes"}:
        encoded = src.fresh("s")
        if kind == "bytes":
            src.emit(indent, f"{encoded} = bytes({value})")
        elif logical == "uuid":
            src.emit(indent, f"{encoded} = _uuid_bytes({value})")
        else:
            src.emit(indent, f"{encoded} = {value}.encode()")
        _write_text(src, indent, encoded)
    elif kind == "enum":
        symbols = {symbol: _varint(index) for index, symbol in enumerate(spec["symbols"])}
        src.emit(indent, f"out += {src.constant(symbols)}[{value}]")
    elif kind == "union":
        null_index, other_index, other = _nullable(spec["type"])
        src.emit(indent, f"if {value} is None:")
        src.emit(indent + 1, f"out.append({null_index << 1})")
        src.emit(indent, "else:")
        src.emit(indent + 1, f"out.append({other_index << 1})")
        _write(src, indent + 1, other, value)
    elif kind in {"map", "array"}:
        _write_container(src, indent, kind, spec, value)
    else:
        raise _UnsupportedError(f"type {kind}")


def _write_container(
    src: _Source, indent: int, kind: str, spec: dict[str, Any], value: str
) -> None:
    # One block with the item count, then the end marker: the bytes fastavro writes.
    item = src.fresh("v")
    src.emit(indent, f"if {value}:")
    _write_long(src, indent + 1, f"len({value})")
    if kind == "map":
        key = src.fresh("k")
        src.emit(indent + 1, f"for {key}, {item} in {value}.items():")
        _write(src, indent + 2, "string", key)
    else:
        src.emit(indent + 1, f"for {item} in {value}:")
    _write(src, indent + 2, spec["values" if kind == "map" else "items"], item)
    src.emit(indent, "out.append(0)")


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
    src = _Source()
    src.emit(0, "def write(out, record):")
    try:
        for index, field in enumerate(schema["fields"]):
            value = f"f{index}"
            src.emit(1, f"{value} = record[{field['name']!r}]")
            _write(src, 1, field["type"], value)
    except _UnsupportedError:
        return None
    src.emit(1, "return None")
    writer: Callable[[bytearray, Mapping[str, Any]], None] = src.function("write")
    return writer


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


def _native_encoder(schema: Mapping[str, Any]) -> Any:
    """The C encoder of a record schema, or None (no extension, or a shape only Python writes)."""
    if _native is None:
        return None
    try:
        ops = tuple(_native_op(field["type"]) for field in schema["fields"])
        names = tuple(field["name"] for field in schema["fields"])
        return _native.Encoder(ops, names, uuid_bytes)
    except (_UnsupportedError, ValueError):  # ValueError: a shape only Python writes
        return None


# -- readers -------------------------------------------------------------------------------------


def _read_long(src: _Source, indent: int, target: str) -> None:
    byte = src.fresh("b")
    src.emit(indent, f"{byte} = data[pos]")
    src.emit(indent, f"if {byte} < 0x80:")
    src.emit(indent + 1, f"{target} = ({byte} >> 1) ^ -({byte} & 1)")
    src.emit(indent + 1, "pos += 1")
    src.emit(indent, "else:")
    src.emit(indent + 1, f"{target}, pos = _read_varint(data, pos)")


def _read_bytes(src: _Source, indent: int, target: str, decode: str = "") -> None:
    size, end = src.fresh("n"), src.fresh("e")
    _read_long(src, indent, size)
    src.emit(indent, f"{end} = pos + {size}")
    src.emit(indent, f"if {size} < 0 or {end} > size:")
    src.emit(indent + 1, "raise EOFError('string or bytes run past the end')")
    src.emit(indent, f"{target} = data[pos:{end}]{decode}")
    src.emit(indent, f"pos = {end}")


def _read(src: _Source, indent: int, schema: Any, target: str) -> None:  # noqa: C901, PLR0912, PLR0915  # one branch per Avro type
    kind, spec, logical = _kind_and_logical(schema)
    if kind == "null":
        src.emit(indent, f"{target} = None")
    elif kind == "boolean":
        src.emit(indent, f"{target} = data[pos]")
        src.emit(indent, f"if {target} > 1: raise ValueError('boolean byte is not 0 or 1')")
        src.emit(indent, f"{target} = {target} == 1")
        src.emit(indent, "pos += 1")
    elif kind in {"int", "long"}:
        _read_long(src, indent, target)
        if kind == "int":
            src.emit(indent, f"if not _INT_MIN <= {target} <= _INT_MAX:")
            src.emit(indent + 1, "raise ValueError('int out of range')")
        if logical == "timestamp-millis":
            src.emit(indent, f"{target} = _EPOCH + _timedelta(0, 0, 0, {target})")  # milliseconds
    elif kind in {"float", "double"}:
        width = 8 if kind == "double" else 4
        src.emit(indent, f"{target} = _unpack_{kind}(data, pos)[0]")
        src.emit(indent, f"pos += {width}")
    elif kind in {"string", "bytes"}:
        _read_bytes(src, indent, target, ".decode()" if kind == "string" else "")
        if logical == "uuid":
            src.emit(indent, f"{target} = _UUID({target})")
    elif kind == "enum":
        index = src.fresh("i")
        symbols = src.constant(tuple(spec["symbols"]))
        _read_long(src, indent, index)
        src.emit(indent, f"if not 0 <= {index} < {len(spec['symbols'])}:")
        src.emit(indent + 1, "raise ValueError('enum index out of range')")
        src.emit(indent, f"{target} = {symbols}[{index}]")
    elif kind == "union":
        null_index, other_index, other = _nullable(spec["type"])
        branch = src.fresh("u")
        _read_long(src, indent, branch)
        src.emit(indent, f"if {branch} == {null_index}:")
        src.emit(indent + 1, f"{target} = None")
        src.emit(indent, f"elif {branch} == {other_index}:")
        _read(src, indent + 1, other, target)
        src.emit(indent, "else:")
        src.emit(indent + 1, "raise ValueError('union branch out of range')")
    elif kind in {"map", "array"}:
        count, item = src.fresh("c"), src.fresh("v")
        src.emit(indent, f"{target} = {{}}" if kind == "map" else f"{target} = []")
        _read_long(src, indent, count)
        src.emit(indent, f"while {count}:")
        src.emit(indent + 1, f"if {count} < 0:")  # a negative count is followed by a byte size
        src.emit(indent + 2, f"{count} = -{count}")
        _read_long(src, indent + 2, src.fresh("_"))
        src.emit(indent + 1, f"for _ in range({count}):")
        if kind == "map":
            key = src.fresh("k")
            _read(src, indent + 2, "string", key)
            _read(src, indent + 2, spec["values"], item)
            src.emit(indent + 2, f"{target}[{key}] = {item}")
        else:
            _read(src, indent + 2, spec["items"], item)
            src.emit(indent + 2, f"{target}.append({item})")
        _read_long(src, indent + 1, count)
    else:
        raise _UnsupportedError(f"type {kind}")


def compile_reader(
    schema: Mapping[str, Any],
) -> Callable[[bytes, int], tuple[dict[str, Any], int]] | None:
    """``read(data, pos) -> (record dict, end)`` for a record schema, or None if unsupported.

    Truncated or malformed bodies raise ``IndexError``, ``EOFError``, ``ValueError``,
    ``UnicodeDecodeError`` or ``struct.error``, as fastavro does; the caller checks ``end``.
    """
    if schema.get("type") != "record":
        return None
    src = _Source()
    src.emit(0, "def read(data, pos):")
    src.emit(1, "size = len(data)")
    names = []
    try:
        for index, field in enumerate(schema["fields"]):
            target = f"f{index}"
            _read(src, 1, field["type"], target)
            names.append(f"{field['name']!r}: {target}")
    except _UnsupportedError:
        return None
    src.emit(1, f"return {{{', '.join(names)}}}, pos")
    reader: Callable[[bytes, int], tuple[dict[str, Any], int]] = src.function("read")
    return reader


# -- model builders ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _FieldRules:
    """What a model demands of one decoded value beyond its Avro type, as pydantic checks it."""

    optional: bool = False  # None passes every rule but the validators
    literal: Any = None  # the only value allowed (the member to store), or None
    members: Mapping[Any, Enum] | None = None  # decoded value -> enum member to store
    min_length: int | None = None
    max_length: int | None = None
    ge: Any = None  # inclusive lower bound
    validators: tuple[Callable[[Any], Any], ...] = ()  # "after" field validators, in order


def _length_and_bound(name: str, metadata: list[Any]) -> dict[str, Any]:
    """The length bounds and lower bound a field's annotations carry (one of each at most)."""
    found: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, StringConstraints):
            unused = {k for k, v in vars(item).items() if v is not None} - {
                "min_length",
                "max_length",
            }
            if unused or "min_length" in found:
                raise _UnsupportedError(f"{name}: string constraints {item!r}")
            found |= {"min_length": item.min_length or 0, "max_length": item.max_length}
        elif isinstance(item, annotated_types.Ge):
            if "ge" in found:
                raise _UnsupportedError(f"{name}: a second lower bound")
            found["ge"] = item.ge
        elif not (isinstance(item, Strict) and item.strict is False):
            raise _UnsupportedError(f"{name}: constraint {item!r}")
    return found


_PLAIN_ANNOTATIONS = frozenset(
    {
        str,
        int,
        float,
        bool,
        bytes,
        uuid.UUID,
        AwareDatetime,
        datetime,
        dict[str, str],
        list[int],
        list[str],
    }
)


def _unwrapped(name: str, field: FieldInfo) -> tuple[bool, Any, list[Any]]:
    """(optional, the bare annotation, every metadata item) of a field."""
    annotation, metadata = field.annotation, list(field.metadata)
    optional = False
    if typing.get_origin(annotation) in {typing.Union, types.UnionType}:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1 or len(typing.get_args(annotation)) != 2:  # noqa: PLR2004  # X | None
            raise _UnsupportedError(f"{name}: {annotation}")
        optional, annotation = True, args[0]
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *extra = typing.get_args(annotation)
        metadata += extra
    return optional, annotation, metadata


def _field_rules(model: type[BaseModel], name: str, field: FieldInfo) -> _FieldRules:
    optional, annotation, metadata = _unwrapped(name, field)
    literal, members = None, None
    if typing.get_origin(annotation) is Literal:
        (literal,) = typing.get_args(annotation)
        if literal is None:
            raise _UnsupportedError(f"{name}: Literal[None]")
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        members = {member.value: member for member in annotation}
    elif annotation not in _PLAIN_ANNOTATIONS:
        raise _UnsupportedError(f"{name}: {annotation}")
    validators = []
    for validator in model.__pydantic_decorators__.field_validators.values():
        if name in validator.info.fields:
            if validator.info.mode != "after":
                raise _UnsupportedError(f"{name}: {validator.info.mode} validator")
            validators.append(validator.func)
    return _FieldRules(
        optional=optional,
        literal=literal,
        members=members,
        validators=tuple(validators),
        **_length_and_bound(name, metadata),
    )


def _emit_checks(src: _Source, name: str, rules: _FieldRules, value: str) -> None:
    outer_lines, src.lines = src.lines, []
    if rules.literal is not None:
        src.emit(1, f"if {value} != {src.constant(rules.literal)}:")
        src.emit(2, f"raise ConstraintError('{name}: not ' + {src.constant(str(rules.literal))})")
        src.emit(1, f"{value} = {src.constant(rules.literal)}")
    elif rules.members is not None:
        src.emit(1, f"{value} = {src.constant(rules.members)}.get({value})")
        src.emit(1, f"if {value} is None: raise ConstraintError('{name}: not a member')")
    low, high = rules.min_length, rules.max_length
    if high is not None:
        src.emit(1, f"if not {low or 0} <= len({value}) <= {high}:")
    elif low is not None:
        src.emit(1, f"if len({value}) < {low}:")
    if low is not None or high is not None:
        src.emit(2, f"raise ConstraintError('{name}: length not in [{low}, {high}]')")
    if rules.ge is not None:
        src.emit(1, f"if not {value} >= {rules.ge!r}:")  # also refuses NaN, as pydantic does
        src.emit(2, f"raise ConstraintError('{name}: less than {rules.ge!r}')")
    checks, src.lines = src.lines, outer_lines
    if rules.optional and checks:  # None passes; a value is checked as the non-optional type is
        src.emit(1, f"if {value} is not None:")
        checks = ["    " + line for line in checks]
    src.lines.extend(checks)
    for validator in rules.validators:
        src.emit(1, f"{value} = {src.constant(validator)}({value})")


def _buildable(model: type[BaseModel]) -> bool:
    decorators = model.__pydantic_decorators__
    if decorators.model_validators or decorators.root_validators or decorators.validators:
        return False
    return model.model_config.get("extra") == "forbid" and not model.__pydantic_root_model__


def _emit_build(src: _Source, model: type[BaseModel], variables: Mapping[str, str]) -> str:
    """Checks of every field's variable, then the instance: the expression to return."""
    if set(variables) != set(model.model_fields):
        raise _UnsupportedError("the record's fields are not the model's")
    for name, field in model.model_fields.items():
        _emit_checks(src, name, _field_rules(model, name, field), variables[name])
    fields = ", ".join(f"{name!r}: {variables[name]}" for name in model.model_fields)
    src.emit(1, f"event = _new({src.constant(model)})")
    src.emit(1, f"_set(event, '__dict__', {{{fields}}})")
    names = src.constant(tuple(model.model_fields))
    src.emit(1, f"_set(event, '__pydantic_fields_set__', set({names}))")
    src.emit(1, "_set(event, '__pydantic_extra__', None)")
    src.emit(1, "_set(event, '__pydantic_private__', None)")
    src.constants |= {
        "_new": object.__new__,
        "_set": object.__setattr__,
        "ConstraintError": ConstraintError,
    }
    return "event"


def compile_builder(model: type[BaseModel]) -> Callable[[dict[str, Any]], BaseModel] | None:
    """``build(record)`` making a model instance from an Avro-decoded record, or None.

    Equivalent to ``model.model_validate(record)`` for records whose values have the types the
    model's Avro schema gives them (which decoding guarantees); raises :class:`ConstraintError`
    where pydantic would raise a validation error.
    """
    if not _buildable(model):
        return None
    src = _Source()
    src.emit(0, "def build(record):")
    src.emit(1, f"if len(record) != {len(model.model_fields)}:")
    src.emit(2, "raise ConstraintError('fields do not match the model')")
    variables = {name: f"f{index}" for index, name in enumerate(model.model_fields)}
    for name, variable in variables.items():
        src.emit(1, f"{variable} = record[{name!r}]")
    try:
        src.emit(1, f"return {_emit_build(src, model, variables)}")
    except _UnsupportedError:
        return None
    builder: Callable[[dict[str, Any]], BaseModel] = src.function("build")
    return builder


def compile_decoder(
    schema: Mapping[str, Any], model: type[BaseModel], *, native: bool = True
) -> Callable[[bytes, int], tuple[BaseModel, int]] | None:
    """``decode(data, pos) -> (instance, end)`` for a record schema and its model, or None.

    :func:`compile_reader` and :func:`compile_builder` in one function, with no record dict in
    between: the consumer's hot path. With ``native`` (and the C extension built), the same
    reading and checks run in C, several times faster; otherwise generated Python does them.
    """
    if schema.get("type") != "record" or not _buildable(model):
        return None
    if native and (in_c := _native_decoder(schema, model)) is not None:
        return in_c
    src = _Source()
    src.emit(0, "def decode(data, pos):")
    src.emit(1, "size = len(data)")
    variables: dict[str, str] = {}
    try:
        for index, field in enumerate(schema["fields"]):
            variables[field["name"]] = f"f{index}"
            _read(src, 1, field["type"], f"f{index}")
        src.emit(1, f"return {_emit_build(src, model, variables)}, pos")
    except _UnsupportedError:
        return None
    decoder: Callable[[bytes, int], tuple[BaseModel, int]] = src.function("decode")
    return decoder


# -- the native decoder --------------------------------------------------------------------------

_SIMPLE_OPS = frozenset({"null", "boolean", "int", "long", "float", "double", "string", "bytes"})


def _native_op(schema: Any) -> tuple[Any, ...]:
    """How :mod:`schemas._native` reads a value of ``schema``, as a nested tuple."""
    kind, spec, logical = _kind_and_logical(schema)
    if logical is not None:
        return (logical,)
    if kind in _SIMPLE_OPS:
        return (kind,)
    if kind == "enum":
        return ("enum", tuple(spec["symbols"]))
    if kind == "union":
        null_index, _, other = _nullable(spec["type"])
        return ("nullable", null_index, _native_op(other))
    if kind == "map":
        return ("map", _native_op(spec["values"]))
    if kind == "array":
        return ("array", _native_op(spec["items"]))
    raise _UnsupportedError(f"type {kind}")


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
    """The C decoder for a record and its model; None without the extension or if unsupported."""
    if _native is None:
        return None
    names = [field["name"] for field in schema["fields"]]
    if sorted(names) != sorted(model.model_fields):
        return None
    try:
        ops = tuple(_native_op(field["type"]) for field in schema["fields"])
        checks = []
        for name, field in model.model_fields.items():
            rules = _field_rules(model, name, field)
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
        decoder = _native.Decoder(ops, tuple(checks), model, ConstraintError, _uuid, template)
    except (_UnsupportedError, ValueError):  # ValueError: a shape only Python reads (null items)
        return None
    decode: Callable[[bytes, int], tuple[BaseModel, int]] = decoder.decode
    return decode


def native_decoder_behind(decode: Callable[..., Any]) -> Any | None:
    """The C ``Decoder`` whose method ``decode`` is (from :func:`compile_decoder`), or None."""
    owner = getattr(decode, "__self__", None)
    return owner if _native is not None and isinstance(owner, _native.Decoder) else None


def decode_framed(decoders: dict[int, Any], values: Sequence[bytes]) -> tuple[list[Any], int]:
    """(events, misses): framed values decoded in C by the decoder of their schema id.

    None (counted in misses) where the id has no decoder here, the frame is foreign, or the body
    does not decode exactly; the caller's slower path handles those and names their errors.
    """
    if _native is None:
        return [None] * len(values), len(values)
    return typing.cast("tuple[list[Any], int]", _native.decode_framed(decoders, values))
