"""What the generated readers and writers call at run time, bound into their globals once.

Kept apart from the code generator: these run for every event, the generator once per schema.
"""

from __future__ import annotations

import struct
from datetime import timedelta
from typing import Any

from agentflux.schemas._conversions import EPOCH, millis, parse_uuid, uuid_bytes

__all__ = ["GENERATED_GLOBALS", "ConstraintError", "varint"]

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_SEVEN_BITS = 0x7F
_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")


class ConstraintError(ValueError):
    """A decoded value breaks a constraint of its model (length, bound, event type, ...)."""


def varint(value: int) -> bytes:
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


GENERATED_GLOBALS: dict[str, Any] = {
    "_varint": varint,
    "_read_varint": _read_varint,
    "_millis": millis,
    "_pack_double": _DOUBLE.pack,
    "_pack_float": _FLOAT.pack,
    "_unpack_double": _DOUBLE.unpack_from,
    "_unpack_float": _FLOAT.unpack_from,
    "_UUID": parse_uuid,
    "_uuid_bytes": uuid_bytes,
    "_EPOCH": EPOCH,
    "_timedelta": timedelta,
    "_INT_MIN": _INT_MIN,
    "_INT_MAX": _INT_MAX,
    "ConstraintError": ConstraintError,
    "_new": object.__new__,
    "_set": object.__setattr__,
}
"""The names generated code refers to (its module globals, with each function's constants)."""
