"""The publisher's record batches: event records written in C, framed as aiokafka's builder does.

The publisher hands aiokafka batches it builds itself (``send_batch``, see ``_batching``).
aiokafka's ``BatchBuilder`` takes every record's headers as a list of (str, bytes) tuples; an
event's eleven header names never change, so :class:`EventBatch` writes records with a
``RecordWriter`` (``_records.c``) that knows the names and takes only the values, and frames the
batch here, once per batch: the v2 header (KIP-98), compression, CRC-32C. The bytes are the ones
aiokafka's builder writes for the same records (``tests/unit/test_event_batch.py`` compares them
in every codec).

aiokafka's producer reads a batch through the methods it calls on its own builder
(``_set_producer_state``, ``_build``, ``size``, ``record_count``, ``closed``, ``close``);
:class:`EventBatch` provides them. Its ``append`` (aiokafka's, used by ``send()``) refuses every
record, so a ``send()`` on the same producer starts a batch of aiokafka's own, never joins this
one. Without the C extension (no compiler at install) :func:`new_event_batch` returns aiokafka's
builder with the same ``append_record`` on top.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Final

from aiokafka import codec as kafka_codecs
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.util import calc_crc32c

from agentflux.schemas import fast_lz4_encode, header_pairs

_records: types.ModuleType | None
try:
    from agentflux.producers import _records
except ImportError:  # built without a C compiler: aiokafka's builder, as before
    _records = None

if TYPE_CHECKING:
    import types
    from collections.abc import Callable

__all__ = ["EventBatch", "EventBatchBuilder", "HeaderValue", "new_event_batch"]

HeaderValue = bytes | str | None

# Message format v2's batch header: base offset, length, partition leader epoch, magic, CRC,
# attributes, last offset delta, first/max timestamps, producer id/epoch, base sequence, count.
_HEADER: Final = struct.Struct(">qiibIhiqqqhii")
_LENGTH_FROM: Final = 12  # the length counts the bytes after itself
_CRC_AT: Final = 17
_CRC_FROM: Final = 21  # the CRC covers the attributes and everything after them
_NO_LEADER_EPOCH: Final = -1
_MAGIC: Final = 2

# codec: (attribute bits, compressor); LZ4 as Kafka's Java producer writes it (see schemas._lz4).
_CODECS: Final[dict[str | None, tuple[int, Callable[[bytes], bytes] | None]]] = {
    None: (0, None),
    "gzip": (1, kafka_codecs.gzip_encode),
    "snappy": (2, kafka_codecs.snappy_encode),
    "lz4": (3, fast_lz4_encode),
    "zstd": (4, kafka_codecs.zstd_encode),
}


class EventBatch(BatchBuilder):  # type: ignore[misc]  # aiokafka is untyped
    """One record batch of the publisher's, for ``AIOKafkaProducer.send_batch``."""

    # The writer's own append: no Python frame per record (a closed writer refuses records).
    # append_record(key, value, header_values, timestamp=None): the record's offset in the
    # batch, or None when the batch is full or closed; timestamp in ms since the epoch, default now.
    append_record: Callable[..., int | None]

    def __init__(
        self, header_names: tuple[str, ...], batch_size: int, compression_type: str | None
    ) -> None:
        """An empty batch of at most ``batch_size`` bytes before compression, header included."""
        # BatchBuilder.__init__ is not called: it makes aiokafka's record builder, unused here.
        assert _records is not None  # noqa: S101  # new_event_batch checks it
        self._writer = _records.RecordWriter(header_names, batch_size - _HEADER.size)
        self.append_record = self._writer.append
        self._attributes, self._compress = _CODECS[compression_type]
        self._buffer: bytearray | None = None
        self._producer_state = (-1, -1, 0)  # aiokafka's builder's, until the producer sets it

    def append(self, **_: Any) -> None:
        """Refuse aiokafka's append (``send()`` joining a queued batch), see the module."""
        return

    def close(self) -> None:
        """No more records."""
        self._writer.close()

    def closed(self) -> bool:
        """Whether records are refused."""
        closed: bool = self._writer.closed
        return closed

    def record_count(self) -> int:
        """Records in the batch."""
        count: int = self._writer.count
        return count

    def size(self) -> int:
        """Bytes of the batch: uncompressed until built, as aiokafka's builder counts them."""
        if self._buffer is not None:
            return len(self._buffer)
        size: int = _HEADER.size + self._writer.size
        return size

    def _set_producer_state(
        self, producer_id: int, producer_epoch: int, base_sequence: int
    ) -> None:
        self._producer_state = (producer_id, producer_epoch, base_sequence)

    def _build(self) -> bytearray:
        self._writer.close()
        if self._buffer is None:
            self._buffer = self._framed()
        return self._buffer

    def _framed(self) -> bytearray:
        writer = self._writer
        records = writer.records()
        if self._compress is not None:  # even when it grows, as aiokafka's and Java's builders
            records = self._compress(records)
        buffer = bytearray(_HEADER.size)
        buffer += records
        producer_id, producer_epoch, base_sequence = self._producer_state
        _HEADER.pack_into(
            buffer,
            0,
            0,  # base offset: the broker assigns offsets
            len(buffer) - _LENGTH_FROM,
            _NO_LEADER_EPOCH,
            _MAGIC,
            0,  # the CRC, written below over the finished bytes
            self._attributes,
            max(writer.count - 1, 0),
            writer.first_timestamp,
            writer.max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            writer.count,
        )
        struct.pack_into(">I", buffer, _CRC_AT, calc_crc32c(memoryview(buffer)[_CRC_FROM:]))
        return buffer


class _AiokafkaEventBatch(BatchBuilder):  # type: ignore[misc]  # aiokafka is untyped
    """aiokafka's own builder with ``append_record``: the path without the C extension."""

    def __init__(
        self, header_names: tuple[str, ...], batch_size: int, compression_type: str | None
    ) -> None:
        super().__init__(batch_size, _CODECS[compression_type][0])
        self._header_names = header_names

    def append_record(
        self,
        key: bytes | None,
        value: bytes | None,
        header_values: tuple[HeaderValue, ...],
        timestamp: int | None = None,
    ) -> int | None:
        """Add a record; its offset in the batch, or None when the batch is full or closed."""
        headers = header_pairs(self._header_names, header_values)
        appended = self.append(timestamp=timestamp, key=key, value=value, headers=headers)
        return None if appended is None else int(appended.offset)


EventBatchBuilder = EventBatch | _AiokafkaEventBatch


def new_event_batch(
    header_names: tuple[str, ...], batch_size: int, compression_type: str | None
) -> EventBatchBuilder:
    """An empty batch whose records carry ``header_names``, for ``send_batch``."""
    if _records is None:
        return _AiokafkaEventBatch(header_names, batch_size, compression_type)
    return EventBatch(header_names, batch_size, compression_type)
