"""The publisher's record batches: event records written in C, framed as aiokafka's builder does.

The publisher hands aiokafka batches it builds itself (``send_batch``, see ``_batching``).
aiokafka's ``BatchBuilder`` takes every record's headers as a list of (str, bytes) tuples; an
event's eleven header names never change, so ``EventBatch`` writes records with a
``RecordWriter`` (``agentflux/producers/_records.c``) that knows the names and takes only the
values, and frames the batch here, once per batch: the v2 header (KIP-98), compression,
CRC-32C. The bytes are the ones aiokafka's builder writes for the same records
(``tests/unit/test_event_batch.py`` compares them in every codec).

aiokafka's producer reads a batch through the methods it calls on its own builder
(``_set_producer_state``, ``_build``, ``size``, ``record_count``, ``closed``, ``close``);
``EventBatch`` provides them. Its ``append`` (aiokafka's, used by ``send()``) refuses every
record, so a ``send()`` on the same producer starts a batch of aiokafka's own, never joins this
one. Subclassing ``BatchBuilder`` without calling its ``__init__`` is a reach into aiokafka's
internals, hence here, behind the gate; without the C writer or with the gate closed the
publisher fills aiokafka's own builder from ``create_batch()`` (its public API) instead.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Final

from aiokafka import codec as kafka_codecs
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.util import calc_crc32c

from agentflux.kafka._gate import gate
from agentflux.kafka._gate._lz4 import fast_lz4_encode

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["EventBatch", "unavailable"]

# Message format v2's batch header: base offset, length, partition leader epoch, magic, CRC,
# attributes, last offset delta, first/max timestamps, producer id/epoch, base sequence, count.
_HEADER: Final = struct.Struct(">qiibIhiqqqhii")
_LENGTH_FROM: Final = 12  # the length counts the bytes after itself
_CRC_AT: Final = 17
_CRC_FROM: Final = 21  # the CRC covers the attributes and everything after them
_NO_LEADER_EPOCH: Final = -1
_MAGIC: Final = 2

# codec: (attribute bits, compressor); LZ4 as Kafka's Java producer writes it (see _lz4).
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
        self,
        record_writer: Callable[[tuple[str, ...], int], Any],
        header_names: tuple[str, ...],
        batch_size: int,
        compression_type: str | None,
    ) -> None:
        """An empty batch of at most ``batch_size`` bytes before compression, header included.

        ``record_writer`` is the C ``RecordWriter`` type (``agentflux.producers._records``).
        """
        # BatchBuilder.__init__ is not called: it makes aiokafka's record builder, unused here.
        self._writer = record_writer(header_names, batch_size - _HEADER.size)
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


def unavailable() -> str | None:
    """Why the publisher cannot hand aiokafka batches of its own (the gate), or None."""
    if not (state := gate()).open:
        return state.reason
    needed = ("_set_producer_state", "_build", "size", "record_count", "closed", "close")
    if not all(hasattr(BatchBuilder, name) for name in needed):
        return "aiokafka's BatchBuilder changed: the publisher fills aiokafka's own batches"
    return None
