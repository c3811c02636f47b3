"""UUIDs and timestamps to and from their Avro and header forms, in C when the extension is built.

Every published event formats its id (the Avro body, then two headers) and its time (the
``ce_time`` header); every consumed event parses its id and time. These are the conversions the
generated codec, the C codec and the headers share, and the one place that imports the optional
C extension (not at all with ``AGENTFLUX_ACCELERATE=0``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from agentflux._accelerate import accelerations_wanted
from agentflux._builds import build_is_current, load_extension

if TYPE_CHECKING:
    import types
    from collections.abc import Callable


# The calls this code makes into the C codec; ``_native.c`` states the interface it was built for.
NATIVE_INTERFACE = 3
NATIVE_MODULE = "agentflux.schemas._native"


def native_build_is_current(module: types.ModuleType) -> bool:
    """Whether a built ``_native`` takes the calls this code makes (a stale build does not)."""
    return build_is_current(module, NATIVE_INTERFACE)


def _load_native() -> types.ModuleType | None:
    """The C codec, built with the package; without it (or turned off) generated Python works.

    A build from an older source (an editable install whose extension was not rebuilt after an
    update) is left unused: the generated Python gives the same results, and ``agentflux
    doctor`` says why the codec is off.
    """
    if not accelerations_wanted():
        return None
    return load_extension(NATIVE_MODULE, NATIVE_INTERFACE)[0]


_native = _load_native()

__all__ = [
    "EPOCH",
    "NATIVE_INTERFACE",
    "NATIVE_MODULE",
    "UUID_LAYOUT_KNOWN",
    "millis",
    "native_build_is_current",
    "parse_uuid",
    "utc_text",
    "uuid_bytes",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_CANONICAL_UUID_LENGTH = 36
_UUID_SAFETY_UNKNOWN = uuid.SafeUUID.unknown  # looked up once, not per event


def millis(value: datetime | int) -> int:
    """Milliseconds since the epoch of an aware datetime (an int is taken as milliseconds)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("timestamp-millis needs an aware datetime")
        return (value - EPOCH) // _ONE_MS
    return value


def utc_text(value: datetime) -> bytes:
    """RFC 3339 text of a datetime, ``Z`` for UTC: ``isoformat()`` with ``+00:00`` replaced.

    Every published event's ``ce_time`` header, formatted in C when the extension is built (UTC
    values; any other offset, a naive value or a subclass takes the Python expression).
    """
    text = None if _native is None else _native.utc_text(value)
    return text if text is not None else value.isoformat().replace("+00:00", "Z").encode()


_last_uuid_bytes: tuple[object, bytes] = (None, b"")


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
headers); formatting a UUID costs far more than comparing one, so the later times are a
comparison. In C when the extension is built (no Python frame per call on the hot path)."""


def _direct_uuid(text: str) -> uuid.UUID:
    # uuid.UUID() parses every spelling it accepts; the canonical one is built directly.
    if len(text) == _CANONICAL_UUID_LENGTH and text[8] == text[13] == text[18] == text[23] == "-":
        value = object.__new__(uuid.UUID)
        object.__setattr__(value, "int", int(text.replace("-", ""), 16))
        object.__setattr__(value, "is_safe", _UUID_SAFETY_UNKNOWN)
        return value
    return uuid.UUID(text)


def _uuid_layout_known() -> bool:
    """Whether uuid.UUID is still two slots, ``int`` and ``is_safe``, that nothing else derives.

    Building a UUID without ``__init__`` (here and in the C decoder) relies on that layout, the
    same from 3.8 to 3.13; a release that changes it gets ``uuid.UUID(text)`` (and the Python
    decoder) instead of wrong objects.
    """
    text = "12345678-9abc-4def-8123-456789abcdef"
    return getattr(uuid.UUID, "__slots__", None) == ("int", "is_safe", "__weakref__") and (
        _direct_uuid(text) == uuid.UUID(text) and hash(_direct_uuid(text)) == hash(uuid.UUID(text))
    )


UUID_LAYOUT_KNOWN = _uuid_layout_known()


def uuid_parser(*, layout_known: bool) -> Callable[[str], uuid.UUID]:
    """The UUID parser for decoding: built directly on the known layout, else ``uuid.UUID``."""
    return _direct_uuid if layout_known else uuid.UUID


parse_uuid = uuid_parser(layout_known=UUID_LAYOUT_KNOWN)
"""A ``uuid.UUID`` from its text; the canonical spelling is parsed on a shorter path."""
