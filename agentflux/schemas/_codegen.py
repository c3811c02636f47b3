"""Avro record schemas turned into straight-line Python: readers, writers and model builders.

fastavro interprets a parsed schema for every record, a cost that dominated publishing and
consuming our events. This module turns a record schema into Python source once (``compile`` +
``exec``, as Java's specific records or protobuf's generated code do), which reads and writes
the same bytes several times faster. It is the codec without the C extension, and the reference
the tests hold the C code to (see :mod:`agentflux.schemas._compiled`, which picks between them).

Only what the event schemas use is compiled: primitives, ``uuid`` and ``timestamp-millis``
logical types, enums, maps, arrays and unions with ``null``. For anything else
:class:`UnsupportedError` is raised and the caller keeps using fastavro.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentflux.schemas._codegen_runtime import GENERATED_GLOBALS, varint
from agentflux.schemas._model_rules import FieldRules, UnsupportedError, field_rules

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from pydantic import BaseModel

__all__ = [
    "kind_and_logical",
    "nullable",
    "python_builder",
    "python_decoder",
    "python_reader",
    "python_writer",
]


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
        namespace = GENERATED_GLOBALS | self.constants
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
    raise UnsupportedError(repr(schema))


_LOGICAL_TYPES = frozenset({("long", "timestamp-millis"), ("string", "uuid")})


def kind_and_logical(schema: Any) -> tuple[str, dict[str, Any], str | None]:
    """(type name, schema as a dict, logical type) of a type this module compiles."""
    kind, spec = _normalized(schema)
    logical = spec.get("logicalType")
    if logical is not None and (kind, logical) not in _LOGICAL_TYPES:
        raise UnsupportedError(f"{kind} with logicalType {logical}")
    return kind, spec, logical


def nullable(branches: list[Any]) -> tuple[int, int, Any]:
    """(index of null, index of the other branch, that branch) of a two-branch union with null."""
    if len(branches) != 2 or "null" not in branches:  # noqa: PLR2004  # null plus one type
        raise UnsupportedError(f"union {branches}")
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
    kind, spec, logical = kind_and_logical(schema)
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
        symbols = {symbol: varint(index) for index, symbol in enumerate(spec["symbols"])}
        src.emit(indent, f"out += {src.constant(symbols)}[{value}]")
    elif kind == "union":
        null_index, other_index, other = nullable(spec["type"])
        src.emit(indent, f"if {value} is None:")
        src.emit(indent + 1, f"out.append({null_index << 1})")
        src.emit(indent, "else:")
        src.emit(indent + 1, f"out.append({other_index << 1})")
        _write(src, indent + 1, other, value)
    elif kind in {"map", "array"}:
        _write_container(src, indent, kind, spec, value)
    else:
        raise UnsupportedError(f"type {kind}")


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


def python_writer(schema: Mapping[str, Any]) -> Callable[[bytearray, Mapping[str, Any]], None]:
    """``write(out, record)`` appending the Avro body of a record dict (fastavro's bytes)."""
    src = _Source()
    src.emit(0, "def write(out, record):")
    for index, field in enumerate(schema["fields"]):
        value = f"f{index}"
        src.emit(1, f"{value} = record[{field['name']!r}]")
        _write(src, 1, field["type"], value)
    src.emit(1, "return None")
    writer: Callable[[bytearray, Mapping[str, Any]], None] = src.function("write")
    return writer


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
    kind, spec, logical = kind_and_logical(schema)
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
        null_index, other_index, other = nullable(spec["type"])
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
        raise UnsupportedError(f"type {kind}")


def python_reader(schema: Mapping[str, Any]) -> Callable[[bytes, int], tuple[dict[str, Any], int]]:
    """``read(data, pos) -> (record dict, end)`` for a record schema."""
    src = _Source()
    src.emit(0, "def read(data, pos):")
    src.emit(1, "size = len(data)")
    names = []
    for index, field in enumerate(schema["fields"]):
        target = f"f{index}"
        _read(src, 1, field["type"], target)
        names.append(f"{field['name']!r}: {target}")
    src.emit(1, f"return {{{', '.join(names)}}}, pos")
    reader: Callable[[bytes, int], tuple[dict[str, Any], int]] = src.function("read")
    return reader


# -- model builders ------------------------------------------------------------------------------


def _emit_checks(src: _Source, name: str, rules: FieldRules, value: str) -> None:
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


def _emit_build(src: _Source, model: type[BaseModel], variables: Mapping[str, str]) -> str:
    """Checks of every field's variable, then the instance: the expression to return."""
    if set(variables) != set(model.model_fields):
        raise UnsupportedError("the record's fields are not the model's")
    for name, field in model.model_fields.items():
        _emit_checks(src, name, field_rules(model, name, field), variables[name])
    fields = ", ".join(f"{name!r}: {variables[name]}" for name in model.model_fields)
    src.emit(1, f"event = _new({src.constant(model)})")
    src.emit(1, f"_set(event, '__dict__', {{{fields}}})")
    names = src.constant(tuple(model.model_fields))
    src.emit(1, f"_set(event, '__pydantic_fields_set__', set({names}))")
    src.emit(1, "_set(event, '__pydantic_extra__', None)")
    src.emit(1, "_set(event, '__pydantic_private__', None)")
    return "event"


def python_builder(model: type[BaseModel]) -> Callable[[dict[str, Any]], BaseModel]:
    """``build(record)`` making a model instance from an Avro-decoded record (a buildable model)."""
    src = _Source()
    src.emit(0, "def build(record):")
    src.emit(1, f"if len(record) != {len(model.model_fields)}:")
    src.emit(2, "raise ConstraintError('fields do not match the model')")
    variables = {name: f"f{index}" for index, name in enumerate(model.model_fields)}
    for name, variable in variables.items():
        src.emit(1, f"{variable} = record[{name!r}]")
    src.emit(1, f"return {_emit_build(src, model, variables)}")
    builder: Callable[[dict[str, Any]], BaseModel] = src.function("build")
    return builder


def python_decoder(
    schema: Mapping[str, Any], model: type[BaseModel]
) -> Callable[[bytes, int], tuple[BaseModel, int]]:
    """``decode(data, pos) -> (instance, end)``: the reader and the builder, no dict between."""
    src = _Source()
    src.emit(0, "def decode(data, pos):")
    src.emit(1, "size = len(data)")
    variables: dict[str, str] = {}
    for index, field in enumerate(schema["fields"]):
        variables[field["name"]] = f"f{index}"
        _read(src, 1, field["type"], f"f{index}")
    src.emit(1, f"return {_emit_build(src, model, variables)}, pos")
    decoder: Callable[[bytes, int], tuple[BaseModel, int]] = src.function("decode")
    return decoder
