"""The consumers' accelerations: records read in C with lazy headers, and fetch sessions.

Both replace parts of aiokafka's consumer through the gate (``agentflux.kafka._gate``); the C
record reader (``_batches.c``) is the consumers' own and handed to it here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentflux._builds import load_extension
from agentflux.kafka._gate import _lazy_headers
from agentflux.kafka._gate._fetch_sessions import install_fetch_sessions

if TYPE_CHECKING:
    from agentflux.kafka._gate._lazy_headers import ReadRecords

__all__ = [
    "RECORD_READER_INTERFACE",
    "install_consumer_accelerations",
    "install_record_reader",
    "record_reader_unavailable",
]

# The calls this code makes into _batches.c; the C side states the interface it was built for.
RECORD_READER_INTERFACE = 1

# Not built (no C compiler) or built from an older source: aiokafka's records, every header read.
_batches, _unused_because = load_extension("agentflux.consumers._batches", RECORD_READER_INTERFACE)
read_records: ReadRecords | None = None if _batches is None else _batches.read_records


def record_reader_unavailable() -> str | None:
    """Why records are not read in C (build, gate, aiokafka's fetcher), or None when they are."""
    if read_records is None:
        return _unused_because
    return _lazy_headers.unavailable()


def install_record_reader() -> bool:
    """Let consumers marked with ``lazy_headers`` read records in C; whether they now do."""
    return _lazy_headers.install_lazy_headers(read_records)


def install_consumer_accelerations() -> None:
    """Install both for the runner's consumers (idempotent, process-wide)."""
    # Records without their headers until asked (the runner reads them only to dead-letter a
    # record): a large share of consuming's CPU less.
    install_record_reader()
    # Fetches that name only what changed: most of a consumer's CPU at low rates across many
    # partitions.
    install_fetch_sessions()
