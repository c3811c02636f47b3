"""The publisher's record batches: the bytes aiokafka's builder writes, read back by aiokafka."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch
from hypothesis import given, settings
from hypothesis import strategies as st

from agentflux.kafka._gate._event_batch import EventBatch
from agentflux.kafka._gate._lz4 import install_fast_lz4
from agentflux.producers import _batching
from agentflux.producers._batching import HeaderValue, batch_factory
from agentflux.producers._records import RecordWriter

_NAMES = ("event_type", "ce_subject", "nothing", "ünïcode")
_CODEC_IDS = {None: 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
_DETERMINISTIC = [None, "snappy", "lz4", "zstd"]  # gzip writes the time into its own header

Record = tuple[bytes | None, bytes | None, tuple[HeaderValue, ...], int]


def _record(n: int) -> Record:
    """A record with every kind of header value: bytes, str (UTF-8), None, non-ASCII."""
    return (
        f"session-{n % 7}".encode(),
        bytes([n % 251]) * (n % 90),
        (b"agent_switched", f"session-{n % 7}", None, "välue-€"),
        1_700_000_000_000 + n * 3,
    )


def _aiokafka_batch(records: list[Record], codec: str | None, batch_size: int) -> Any:
    """Aiokafka's own builder over the same records (header values as it takes them)."""
    builder = BatchBuilder(batch_size, _CODEC_IDS[codec])
    for key, value, values, timestamp in records:
        headers = [
            (name, v.encode() if isinstance(v, str) else v)
            for name, v in zip(_NAMES, values, strict=True)
        ]
        if builder.append(timestamp=timestamp, key=key, value=value, headers=headers) is None:
            break
    return builder


def _ours(records: list[Record], codec: str | None, batch_size: int) -> EventBatch:
    batch = EventBatch(RecordWriter, _NAMES, batch_size, codec)
    for key, value, values, timestamp in records:
        if batch.append_record(key, value, values, timestamp) is None:
            break
    return batch


class _AiokafkaProducer:
    """What batch_factory asks of a producer: aiokafka's create_batch(), for one codec."""

    def __init__(self, codec: str | None) -> None:
        self._codec = codec

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(1_000_000, _CODEC_IDS[self._codec])


def _read(buffer: bytes | bytearray) -> tuple[DefaultRecordBatch, list[Any]]:
    batch = DefaultRecordBatch(bytes(buffer))
    assert batch.validate_crc()
    return batch, list(batch)


@pytest.fixture(autouse=True, scope="module")
def _fast_lz4() -> None:
    """Aiokafka's builder compresses LZ4 as the publisher does (the same bytes to compare)."""
    install_fast_lz4()


def test_the_record_writer_is_built() -> None:
    """The C writer is there (the tests require the extensions; a missing one fails, never skips)."""
    assert _batching._records is not None
    batch, _append = batch_factory(_AiokafkaProducer(None), _NAMES, 1000, None)()
    assert isinstance(batch, EventBatch)


@pytest.mark.parametrize("codec", _DETERMINISTIC)
def test_batches_are_byte_for_byte_aiokafkas(codec: str | None) -> None:
    """A full batch: same records taken, same size as it grows, same bytes when built."""
    records = [_record(n) for n in range(1000)]
    ours, theirs = _ours(records, codec, 16_384), _aiokafka_batch(records, codec, 16_384)
    assert ours.record_count() == theirs.record_count() < len(records)  # both refused the same
    assert ours.size() == theirs.size()
    ours._set_producer_state(7, 2, 40)  # the producer's calls
    theirs._set_producer_state(7, 2, 40)
    assert ours._build() == theirs._build()


@pytest.mark.parametrize("codec", list(_CODEC_IDS))
def test_every_codec_reads_back_with_aiokafka(codec: str | None) -> None:
    """Keys, values, headers, offsets, timestamps and producer state as aiokafka reads them."""
    records = [_record(n) for n in range(300)]
    ours = _ours(records, codec, 1_000_000)
    ours._set_producer_state(9, 1, 1200)
    batch, read = _read(ours._build())
    assert batch.compression_type == _CODEC_IDS[codec]
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (9, 1, 1200)
    assert batch.first_timestamp == records[0][3]
    assert batch.max_timestamp == records[-1][3]
    assert len(read) == len(records)
    for offset, (record, (key, value, values, timestamp)) in enumerate(
        zip(read, records, strict=True)
    ):
        assert (record.offset, record.key, record.value, record.timestamp) == (
            offset,
            key,
            value,
            timestamp,
        )
        assert record.headers == [
            (name, v.encode() if isinstance(v, str) else v)
            for name, v in zip(_NAMES, values, strict=True)
        ]


def test_the_first_record_always_fits() -> None:
    """A record larger than the batch size still gets a batch of its own (as aiokafka's)."""
    batch = EventBatch(RecordWriter, _NAMES, 100, None)
    assert batch.append_record(b"k", b"x" * 1000, (None, None, None, None)) == 0
    assert batch.append_record(b"k", b"y", (None, None, None, None)) is None
    assert batch.record_count() == 1


def test_timestamps_default_to_now_and_the_max_is_the_latest() -> None:
    """No timestamp: the wall clock in ms; the batch's max timestamp is its latest record's."""
    before = int(time.time() * 1000)
    batch = EventBatch(RecordWriter, _NAMES, 1_000_000, None)
    batch.append_record(b"k", b"1", (None, None, None, None))
    after = int(time.time() * 1000)
    batch.append_record(b"k", b"2", (None, None, None, None), after + 50)
    batch.append_record(b"k", b"3", (None, None, None, None), after + 10)  # out of order
    header, read = _read(batch._build())
    assert before <= read[0].timestamp <= after
    assert header.first_timestamp == read[0].timestamp
    assert header.max_timestamp == after + 50
    assert [r.timestamp for r in read[1:]] == [after + 50, after + 10]


def test_a_closed_batch_refuses_records_and_aiokafkas_append_is_refused() -> None:
    """Closed (handed over, or built) means no more records; send() never joins these batches."""
    batch = EventBatch(RecordWriter, _NAMES, 1_000_000, None)
    assert batch.append(timestamp=None, key=b"k", value=b"v", headers=[]) is None
    batch.append_record(b"k", b"v", (None, None, None, None))
    batch.close()
    assert batch.closed()
    assert batch.append_record(b"k", b"w", (None, None, None, None)) is None
    built = batch._build()
    assert batch._build() is built  # a retried request sends the same bytes
    assert batch.size() == len(built)
    assert [r.value for r in _read(built)[1]] == [b"v"]


@pytest.mark.parametrize(
    ("key", "value", "values", "error"),
    [
        ("k", b"v", (None, None, None, None), TypeError),  # a str key
        (b"k", bytearray(b"v"), (None, None, None, None), TypeError),
        (b"k", b"v", (None, None, None), ValueError),  # one header value short
        (b"k", b"v", [None, None, None, None], ValueError),  # not a tuple
        (b"k", b"v", (None, None, 3, None), TypeError),
        (b"k", b"v", (None, None, "\udcff", None), UnicodeEncodeError),  # not encodable
    ],
)
def test_bad_records_raise_and_write_nothing(
    key: Any, value: Any, values: Any, error: type[Exception]
) -> None:
    """A record the writer cannot take raises a typed error and leaves the batch as it was."""
    batch = EventBatch(RecordWriter, _NAMES, 1_000_000, None)
    batch.append_record(b"k", b"first", (None, None, None, None))
    size = batch.size()
    with pytest.raises(error):
        batch.append_record(key, value, values)
    assert (batch.record_count(), batch.size()) == (1, size)
    assert [r.value for r in _read(batch._build())[1]] == [b"first"]


def test_without_the_extension_aiokafkas_builder_writes_the_same_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No compiler at install: the batches are aiokafka's create_batch() builders, same records."""
    records = [_record(n) for n in range(50)]
    monkeypatch.setattr(_batching, "_records", None)
    fallback, append_record = batch_factory(_AiokafkaProducer("lz4"), _NAMES, 1_000_000, "lz4")()
    assert not isinstance(fallback, EventBatch)
    for n, (key, value, values, timestamp) in enumerate(records):
        assert append_record(key, value, values, timestamp) == n
    monkeypatch.undo()
    assert fallback._build() == _ours(records, "lz4", 1_000_000)._build()


_header_values = st.tuples(*[st.none() | st.binary(max_size=40) | st.text(max_size=20)] * 4)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.none() | st.binary(max_size=50),
            st.none() | st.binary(max_size=300),
            _header_values,
            st.integers(min_value=0, max_value=2**40),
        ),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from(_DETERMINISTIC),
    st.integers(min_value=70, max_value=5000),
)
def test_any_records_are_written_as_aiokafka_writes_them(
    records: list[Record], codec: str | None, batch_size: int
) -> None:
    """Any keys, values, header values, timestamps and batch size: aiokafka's exact bytes."""
    ours, theirs = _ours(records, codec, batch_size), _aiokafka_batch(records, codec, batch_size)
    assert ours.record_count() == theirs.record_count()
    assert ours._build() == theirs._build()
