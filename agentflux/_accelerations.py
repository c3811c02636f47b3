"""Which accelerations this process runs with, and why each one that is off is off.

Every acceleration has a public, slower path that gives the same results; none of them is ever
silently off: ``agentflux doctor`` prints this table, every service logs it in one line at
start, and a command run without the C extensions says so once.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from agentflux._accelerate import ACCELERATE_ENV, accelerations_wanted
from agentflux._builds import load_extension
from agentflux.consumers._reader import record_reader_unavailable
from agentflux.kafka._gate import _accumulator, _fetch_sessions, _lz4
from agentflux.producers._batching import record_writer_unavailable
from agentflux.schemas._conversions import NATIVE_INTERFACE, NATIVE_MODULE

__all__ = [
    "Acceleration",
    "accelerations",
    "accelerations_line",
    "missing_extensions",
]

# The C extensions built at install (optional: without a compiler the install goes on).
_EXTENSIONS = (
    "agentflux.schemas._native",
    "agentflux.consumers._batches",
    "agentflux.producers._records",
)


@dataclass(frozen=True, slots=True)
class Acceleration:
    """One acceleration: on or off, what it does, and why it is off."""

    name: str
    active: bool
    does: str
    reason: str = ""  # why it is off; empty when active


def missing_extensions() -> list[str]:
    """The C extensions that are not built (the install found no compiler, or failed)."""
    missing = []
    for name in _EXTENSIONS:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def _native_codec_unavailable() -> str | None:
    _, unused_because = load_extension(NATIVE_MODULE, NATIVE_INTERFACE)
    if unused_because:
        return unused_because
    if not accelerations_wanted():
        return f"turned off by {ACCELERATE_ENV}=0"
    return None


def accelerations() -> list[Acceleration]:
    """Every acceleration of this process, in the order a reader meets them."""
    checks = (
        (
            "native codec",
            "Avro events decoded and encoded in C, audit records' JSON too",
            _native_codec_unavailable(),
        ),
        (
            "record reader",
            "fetched records read in C, headers when asked",
            record_reader_unavailable(),
        ),
        (
            "record writer",
            "the publisher's record batches written in C",
            record_writer_unavailable(),
        ),
        ("fetch sessions", "incremental fetches (KIP-227)", _fetch_sessions.unavailable()),
        (
            "batch hook",
            "records join a batch until the sender takes it",
            _accumulator.unavailable(),
        ),
        ("fast LZ4", "LZ4 compressed as Kafka's Java producer does", _lz4.unavailable()),
    )
    return [
        Acceleration(name, active=reason is None, does=does, reason=reason or "")
        for name, does, reason in checks
    ]


def accelerations_line() -> str:
    """One line for a log: which are on, which are off (and why)."""
    found = accelerations()
    on = [a.name for a in found if a.active]
    off = [f"{a.name} ({a.reason})" for a in found if not a.active]
    if not off:
        return f"accelerations: all on ({', '.join(on)})"
    return f"accelerations off: {'; '.join(off)}" + (f"; on: {', '.join(on)}" if on else "")
