"""Fetched records without their headers until asked: aiokafka's consumer, minus most of its cost.

aiokafka turns every fetched record into a ``ConsumerRecord`` with its headers read: ~35 objects
per agentflux event (eleven headers), built and freed for records whose headers the runner never
reads. Profiled, that was a large share of a consumer's CPU, more than decoding the events. The
C reader in ``agentflux/consumers/_batches.c`` builds one small ``Record`` per record instead
(the attributes of a ``ConsumerRecord``; its headers are read from the batch when first asked).

aiokafka has no hook for it, so ``install_lazy_headers`` swaps two names in its fetcher
module, process-wide, for drop-in subclasses: ``MemoryRecords`` (which also keeps the fetched
bytes) and ``PartitionRecords`` (which reads them in C). Only a consumer whose
``key_deserializer`` is ``lazy_headers`` gets the new records; every other consumer in the
process gets aiokafka's own, made by aiokafka's own code. Transactional reads
(``isolation_level="read_committed"``) of a fetch that holds an aborted transaction, and message
formats before v2, take aiokafka's path.
The batch checks are aiokafka's: the CRC (when ``check_crcs``), each record's length, the
record count, no bytes left over; a failure raises aiokafka's ``CorruptRecordException``.

``tests/unit/test_fetching.py`` compares the records with aiokafka's, field by field, over its own
batch builder's output, so a change in the internals used here shows as a failing test.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiokafka import codec
from aiokafka.consumer import fetcher as _fetcher
from aiokafka.errors import CorruptRecordException, UnsupportedCodecError
from aiokafka.record.legacy_records import LegacyRecordBatch
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c

from agentflux.kafka._gate import gate

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["ReadRecords", "install_lazy_headers", "lazy_headers", "unavailable"]

# The C reader's read_records (agentflux.consumers._batches): the consumers hand it over when
# they install lazy headers, so this gate depends on no consumer code.
ReadRecords = Callable[..., list[Any]]
_read_records: ReadRecords | None = None

# Kafka's record batch v2 header (KIP-98), as aiokafka's DefaultRecordBatch reads it.
_BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")
_LENGTH = struct.Struct(">i")
_LOG_OVERHEAD = 12  # base offset and length: what a batch's length does not count
_MIN_BATCH = _LOG_OVERHEAD + 14  # the smallest batch there is (format v0), as aiokafka checks
_MAGIC_AT = 16
_CRC_FROM = 21  # the CRC covers the batch from its attributes on
_CODEC_MASK, _LOG_APPEND_TIME, _CONTROL = 0x07, 0x08, 0x20
_DECOMPRESS: dict[int, Callable[[Any], bytes]] = {
    1: codec.gzip_decode,
    2: codec.snappy_decode,
    3: codec.lz4_decode,
    4: codec.zstd_decode,
}
_READ_UNCOMMITTED = 0  # aiokafka's isolation level constant


def lazy_headers(key: bytes | None) -> bytes | None:
    """Pass as an ``AIOKafkaConsumer``'s ``key_deserializer`` to get records with lazy headers.

    It returns the key unchanged, so without ``install_lazy_headers`` (or without the C
    extension) the consumer gets aiokafka's usual records.
    """
    return key


class _KeepsBytes:
    """aiokafka's ``MemoryRecords`` of one partition's fetched bytes, keeping the bytes too."""

    __slots__ = ("_records", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._records = MemoryRecords(data)

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def next_batch(self) -> Any:
        return self._records.next_batch()


class _PartitionRecords(_fetcher.PartitionRecords):  # type: ignore[misc]  # aiokafka is untyped
    """aiokafka's ``PartitionRecords``, reading a marked consumer's records in C."""

    next_fetch_offset: int  # set by aiokafka's __init__; the consumer's position comes from it

    def _unpack_records(self) -> Iterator[Any]:
        if (
            self._key_deserializer is lazy_headers
            and _read_records is not None
            and self._value_deserializer is None
            # read_committed with no aborted transaction in the fetch skips nothing but control
            # batches, which the C path skips too
            and (self._isolation_level == _READ_UNCOMMITTED or not self._aborted_transactions)
            and isinstance(self._records, _KeepsBytes)
        ):
            return self._read_lazily(self._records.data)
        return super()._unpack_records()  # type: ignore[no-any-return]

    def _read_lazily(self, data: bytes) -> Iterator[Any]:
        # The loop of aiokafka's _unpack_records over the batches, with the records read in C.
        # next_fetch_offset follows every record handed out: the consumer's position is taken
        # from it whenever the caller stops (e.g. at max_records).
        view = memoryview(data)
        for pos, end in _batch_bounds(data):
            if end - pos < _MIN_BATCH:
                raise CorruptRecordException(f"record batch of {end - pos} bytes - {self._tp}")
            if data[pos + _MAGIC_AT] < 2:  # noqa: PLR2004  # message format v2
                yield from self._read_legacy(view[pos:end], data[pos + _MAGIC_AT])
                continue
            if end - pos < _BATCH_HEADER.size:
                raise CorruptRecordException(f"record batch shorter than its header - {self._tp}")
            (base, _, _, _, crc, attributes, last_delta, first_ts, max_ts, _, _, _, count) = (
                _BATCH_HEADER.unpack_from(data, pos)
            )
            if self._check_crcs and calc_crc32c(view[pos + _CRC_FROM : end]) != crc:
                raise CorruptRecordException(f"Invalid CRC - {self._tp}")
            if not attributes & _CONTROL:  # control batches (transaction markers) hold no events
                # Uncompressed records are read in place; compressed ones from their plain copy.
                source, start, stop = data, pos + _BATCH_HEADER.size, end
                if compression := attributes & _CODEC_MASK:
                    source, start, stop = _decompressed(compression, view[start:stop])
                header = (count, base, first_ts, attributes & _LOG_APPEND_TIME, max_ts)
                for record in self._read_records(source, start, stop, header):
                    self.next_fetch_offset = record.offset + 1
                    yield record
            self.next_fetch_offset = base + last_delta + 1

    def _read_records(
        self, source: bytes, start: int, stop: int, header: tuple[int, int, int, int, int]
    ) -> list[Any]:
        assert _read_records is not None  # noqa: S101  # lazy headers are installed only with it
        try:
            return _read_records(
                source,
                start,
                stop,
                *header,
                self._tp.topic,
                self._tp.partition,
                self.next_fetch_offset,
            )
        except ValueError as exc:
            raise CorruptRecordException(f"{exc} - {self._tp}") from exc

    def _read_legacy(self, batch_bytes: memoryview, magic: int) -> Iterator[Any]:
        """A batch of message format v0/v1 (brokers before 4.0), as aiokafka reads it."""
        batch = LegacyRecordBatch(batch_bytes, magic)
        if self._check_crcs and not batch.validate_crc():
            raise CorruptRecordException(f"Invalid CRC - {self._tp}")
        for record in batch:
            if record.offset >= self.next_fetch_offset:
                consumer_record = self._consumer_record(self._tp, record)
                self.next_fetch_offset = record.offset + 1
                yield consumer_record
        self.next_fetch_offset = batch.next_offset


def _batch_bounds(data: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each whole batch; one cut short by the fetch size ends it (fetched again)."""
    pos, size = 0, len(data)
    while size - pos >= _LOG_OVERHEAD:
        end = pos + _LOG_OVERHEAD + _LENGTH.unpack_from(data, pos + 8)[0]
        if end > size:
            return
        yield pos, end
        pos = end


def _decompressed(compression: int, compressed: memoryview) -> tuple[bytes, int, int]:
    decompress = _DECOMPRESS.get(compression)
    if decompress is None:
        raise UnsupportedCodecError(f"Unknown compression codec {compression:#04x}")
    plain = decompress(compressed)
    return plain, 0, len(plain)


def unavailable() -> str | None:
    """Why lazy headers cannot be installed (the gate, aiokafka's fetcher), or None."""
    if not (state := gate()).open:
        return state.reason
    if _fetcher.PartitionRecords is _PartitionRecords:
        return None
    if _fetcher.MemoryRecords is not MemoryRecords or not hasattr(
        _fetcher.PartitionRecords, "_unpack_records"
    ):
        return "aiokafka's fetcher changed: consumers read records with all their headers"
    return None


def install_lazy_headers(read_records: ReadRecords | None) -> bool:
    """Let consumers marked with ``lazy_headers`` read records in C (process-wide).

    ``read_records`` is the C reader's function (None: not built). Idempotent. Returns False,
    and leaves aiokafka as it is, without the reader, with the gate closed, or when aiokafka's
    fetcher no longer has the two names this replaces (then with a warning).
    """
    global _read_records  # noqa: PLW0603  # the reader is the consumers' to give, once
    if read_records is None:
        return False
    if (reason := unavailable()) is not None:
        if gate().open:
            warnings.warn(reason, RuntimeWarning, stacklevel=2)
        return False
    _read_records = read_records
    _fetcher.MemoryRecords = _KeepsBytes
    _fetcher.PartitionRecords = _PartitionRecords
    return True
