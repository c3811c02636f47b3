# Types of the C extension built from _native.c.

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

class Decoder:
    def __init__(
        self,
        ops: tuple[tuple[Any, ...], ...],
        checks: tuple[tuple[Any, ...], ...],
        model: type[BaseModel],
        constraint_error: type[Exception],
        parse_uuid: Callable[[str], Any],
        fields_template: dict[str, Any],
    ) -> None: ...
    def decode(self, data: bytes, pos: int, /) -> tuple[BaseModel, int]: ...

def decode_framed(
    decoders: dict[int, Any],
    values: Sequence[bytes],
    rows: dict[int, tuple[Any, ...]] | None = None,
    /,
) -> tuple[list[Any], int]: ...

class Encoder:
    def __init__(
        self,
        ops: tuple[tuple[Any, ...], ...],
        names: tuple[str, ...],
        uuid_bytes: Callable[[Any], bytes],
    ) -> None: ...
    def write(self, out: bytearray, record: Mapping[str, Any], /) -> None: ...

def uuid_text(value: object, /) -> bytes: ...
def utc_text(value: object, /) -> bytes | None: ...
def model_json(
    fields: dict[str, Any], names: tuple[str, ...], keys: tuple[bytes, ...], /
) -> str | None: ...
def event_header_values(
    constants: tuple[bytes, bytes, bytes, bytes], fields: dict[str, Any], traceparent: str, /
) -> tuple[bytes | str, ...] | None: ...
def new_traceparent() -> str: ...
def forget_traceparents() -> None: ...
