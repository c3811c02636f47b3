"""LZ4 record batches compressed the way Kafka's own producer compresses them.

aiokafka compresses every LZ4 batch with LZ4-HC at level 9, taking KIP-390's "default level 9"
for a level of the HC compressor. Kafka's Java producer reads the same default differently: its
``KafkaLZ4BlockOutputStream`` uses LZ4's *fast* compressor at the default level and LZ4-HC only
when a level is set explicitly. HC costs several times the fast compressor's CPU per published
event (a large share of the publisher's whole cost) for batches only somewhat smaller; whoever
wants density over speed is better served by zstd.

aiokafka offers no compression level, so ``install_fast_lz4`` replaces the LZ4 encoder its
record batch builders (the C one and the pure-Python one) call. The frames are the ones Kafka
writes (independent 64 KiB blocks, no content checksum); any Kafka client reads them. The
replacement is process-wide: every aiokafka producer in the process then compresses LZ4 as the
Java producer does. ``tests/unit/test_lz4.py`` builds a batch with aiokafka's own builder, so a
change in aiokafka's internals shows as a failing test, and here as a warning, never a failure.
With the gate closed (see ``agentflux.kafka._gate``) aiokafka compresses LZ4 its own way.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

import cramjam
import structlog

from agentflux.kafka._gate import gate

if TYPE_CHECKING:
    import types

__all__ = ["fast_lz4_encode", "install_fast_lz4", "unavailable"]

_log = structlog.get_logger("agentflux.kafka")

# The modules whose ``lz4_encode`` global the v2 record batch builders call.
_BUILDER_MODULES: Final = (
    "aiokafka.record._crecords.default_records",
    "aiokafka.record.default_records",
)
_FAST_LEVEL: Final = 0  # LZ4 frame levels below 3 use the fast compressor (acceleration 1)


def fast_lz4_encode(payload: bytes | bytearray | memoryview, level: int | None = None) -> bytes:  # noqa: ARG001  # aiokafka's signature; the level is not ours to take
    """``payload`` as one LZ4 frame of independent blocks, by LZ4's fast compressor."""
    compressor = cramjam.lz4.Compressor(
        level=_FAST_LEVEL, content_checksum=False, block_linked=False
    )
    compressor.compress(payload)
    return bytes(compressor.finish())


def _builder_modules() -> list[types.ModuleType]:
    modules = []
    for name in _BUILDER_MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            continue  # aiokafka built without its C extension: only the Python builder exists
    return modules


def unavailable() -> str | None:
    """Why the fast LZ4 encoder cannot be installed, or None when it can."""
    if not (state := gate()).open:
        return state.reason
    if not all(hasattr(module, "lz4_encode") for module in _builder_modules()):
        return "aiokafka's record builders no longer call lz4_encode"
    return None


def install_fast_lz4() -> bool:
    """Make aiokafka's record batch builders compress LZ4 with the fast compressor.

    Idempotent; returns whether every builder module now uses it (False when the gate is closed,
    and, with a warning, if aiokafka no longer looks the encoder up where this expects: batches
    are then still valid, only compressed by aiokafka's own choice).
    """
    if (reason := unavailable()) is not None:
        if gate().open:
            _log.warning("aiokafka's LZ4 encoder not found, its own is used", reason=reason)
        return False
    for module in _builder_modules():
        vars(module)["lz4_encode"] = fast_lz4_encode  # the name the builders call
    return True
