"""Records read in C with lazy headers are aiokafka's records, field for field, batch for batch."""

from __future__ import annotations

import struct
import sys
import warnings
from typing import Any

import pytest
from aiokafka.consumer import fetcher
from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.legacy_records import LegacyRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import ConsumerRecord, TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from agentflux.consumers._reader import install_record_reader, read_records
from agentflux.kafka._gate import _lazy_headers as _fetching
from agentflux.kafka._gate._lazy_headers import lazy_headers

_TP = TopicPartition("agent.events", 4)
_FIELDS = (
    "topic",
    "partition",
    "offset",
    "timestamp",
    "timestamp_type",
    "key",
    "value",
    "checksum",
    "serialized_key_size",
    "serialized_value_size",
)
_CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
_HEADERS = [
    ("event_type", b"AgentStarted"),
    ("traceparent", b"00-" + b"0" * 32 + b"-" + b"1" * 16 + b"-01"),
    ("empty", b""),
    ("null", None),
    ("naïve-ключ", b"\xff\x00"),
]
_READ_COMMITTED = 1

Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int]


def _records(count: int) -> list[Record]:
    return [
        (
            None if n % 7 == 0 else f"session-{n % 5}".encode(),
            None if n % 11 == 0 else b"\x00\x00\x00\x00\x07" + bytes([n % 256]) * (n % 300),
            _HEADERS[: n % (len(_HEADERS) + 1)],
            1_700_000_000_000 + n * 3,
        )
        for n in range(count)
    ]


def _batch(  # noqa: PLR0913  # a batch's independent properties, each set by some test
    records: list[Record],
    *,
    compression: int = 3,
    base_offset: int = 0,
    extra_attributes: int = 0,
    count: int | None = None,
    max_timestamp: int | None = None,
) -> bytes:
    """A v2 batch of ``records`` as a broker would hand it out (base offset set, CRC valid)."""
    builder: Any = DefaultRecordBatchBuilder(2, compression, 0, -1, -1, -1, 1 << 24)
    for delta, (key, value, headers, timestamp) in enumerate(records):
        builder.append(delta, timestamp=timestamp, key=key, value=value, headers=headers)
    batch = bytearray(builder.build())
    struct.pack_into(">q", batch, 0, base_offset)  # the broker assigns offsets: not in the CRC
    attributes = struct.unpack_from(">h", batch, 21)[0] | extra_attributes
    struct.pack_into(">h", batch, 21, attributes)
    if count is not None:
        struct.pack_into(">i", batch, 57, count)
    if max_timestamp is not None:
        struct.pack_into(">q", batch, 35, max_timestamp)
    struct.pack_into(">I", batch, 17, calc_crc32c(bytes(batch[21:])))
    return bytes(batch)


def _partition(  # noqa: PLR0913  # one keyword per fetch-response field the tests vary
    data: bytes,
    fetch_offset: int = 0,
    *,
    lazy: bool = True,
    marked: bool | None = None,
    isolation_level: int = 0,
    aborted: list[tuple[int, int]] | None = None,
) -> Any:
    """The fetcher's PartitionRecords of ``data``: ours (lazy) or aiokafka's.

    ``aborted``: the fetch response's aborted transactions, (producer id, first offset) pairs.
    """
    records = _fetching._KeepsBytes(data) if lazy else MemoryRecords(data)
    kind = _fetching._PartitionRecords if lazy else PartitionRecords
    deserializer = lazy_headers if (lazy if marked is None else marked) else None
    return kind(
        _TP,
        records,
        aborted or [],
        fetch_offset,
        deserializer,
        None,
        check_crcs=True,
        isolation_level=isolation_level,
    )


@pytest.fixture(autouse=True)
def _c_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lazy records read with the C reader, as after install_record_reader()."""
    monkeypatch.setattr(_fetching, "_read_records", read_records)


def _read(
    data: bytes, fetch_offset: int = 0, *, lazy: bool = True, isolation_level: int = 0
) -> list[Any]:
    return list(_partition(data, fetch_offset, lazy=lazy, isolation_level=isolation_level))


def _assert_same(lazy: list[Any], theirs: list[ConsumerRecord[bytes, bytes]]) -> None:
    assert len(lazy) == len(theirs)
    for ours, record in zip(lazy, theirs, strict=True):
        assert type(ours).__name__ == "Record"
        assert [getattr(ours, name) for name in _FIELDS] == [
            getattr(record, name) for name in _FIELDS
        ]
        assert ours.headers == tuple(record.headers)


@pytest.mark.parametrize("compression", _CODECS.values(), ids=list(_CODECS))
def test_records_equal_aiokafkas_in_every_compression(compression: int) -> None:
    """Keys, values, null ones, headers (null values, non-ASCII names) read as aiokafka does."""
    data = _batch(_records(300), compression=compression, base_offset=1000) + _batch(
        _records(40), compression=compression, base_offset=1300
    )
    lazy = _read(data, fetch_offset=1000)
    _assert_same(lazy, _read(data, fetch_offset=1000, lazy=False))
    assert [r.offset for r in lazy] == list(range(1000, 1340))


def test_records_before_the_fetch_offset_are_skipped() -> None:
    """A fetch from inside a batch returns its records from that offset on, as aiokafka does."""
    data = _batch(_records(50), base_offset=200) + _batch(_records(50), base_offset=250)
    lazy = _read(data, fetch_offset=230)
    _assert_same(lazy, _read(data, fetch_offset=230, lazy=False))
    assert lazy[0].offset == 230


def test_the_position_follows_every_record_handed_out() -> None:
    """Stopping after any record leaves next_fetch_offset where aiokafka's iteration leaves it."""
    data = _batch(_records(5), base_offset=10) + _batch(_records(5), base_offset=15)
    for taken in range(11):
        positions = []
        for lazy in (True, False):
            partition = _partition(data, 10, lazy=lazy)
            for _ in range(taken):
                next(partition, None)
            positions.append(partition.next_fetch_offset)
        assert positions[0] == positions[1], taken


def test_log_append_time_gives_every_record_the_brokers_time() -> None:
    """A batch stamped by the broker (LogAppendTime) reads its max timestamp for every record."""
    data = _batch(_records(20), extra_attributes=0x08, max_timestamp=1_800_000_000_000)
    lazy = _read(data)
    _assert_same(lazy, _read(data, lazy=False))
    assert {(r.timestamp, r.timestamp_type) for r in lazy} == {(1_800_000_000_000, 1)}


def test_control_batches_are_skipped_and_passed() -> None:
    """A transaction marker batch yields nothing and the position moves past it."""
    data = _batch(_records(3), base_offset=0, extra_attributes=0x30) + _batch(
        _records(2), base_offset=3
    )
    lazy = _read(data)
    _assert_same(lazy, _read(data, lazy=False))
    assert [r.offset for r in lazy] == [3, 4]


def test_a_batch_cut_short_by_the_fetch_size_is_left_for_the_next_fetch() -> None:
    """Only whole batches are read; the partial last one is not an error (aiokafka's rule)."""
    whole = _batch(_records(10), base_offset=0)
    data = whole + _batch(_records(10), base_offset=10)[:-7]
    assert [r.offset for r in _read(data)] == list(range(10))


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "Invalid CRC"),
        (lambda b: b, "bytes left in the batch"),  # with a count one short: see below
    ],
    ids=["crc", "count"],
)
def test_damaged_batches_raise_aiokafkas_corrupt_record_error(damage: Any, error: str) -> None:
    """A flipped byte fails the CRC; a wrong record count fails the record reading."""
    batch = damage(_batch(_records(8), compression=0, count=7 if error != "Invalid CRC" else None))
    with pytest.raises(CorruptRecordException, match=error):
        _read(batch)
    with pytest.raises(CorruptRecordException):
        _read(batch, lazy=False)


def test_a_record_count_beyond_the_batch_raises() -> None:
    """More records announced than the batch holds: a typed error, not a read past the end."""
    batch = _batch(_records(4), compression=3, count=9)
    with pytest.raises(CorruptRecordException, match="ends inside"):
        _read(batch)


def test_a_record_whose_length_lies_raises() -> None:
    """A record whose length field does not match its contents is refused, as aiokafka does."""
    plain = bytearray(_batch([(b"k", b"value", [], 1)], compression=0))
    plain[61] = 2 * (plain[61] // 2 + 1)  # its length varint, one larger (zigzag)
    struct.pack_into(">I", plain, 17, calc_crc32c(bytes(plain[21:])))
    with pytest.raises(CorruptRecordException):
        _read(bytes(plain))


@pytest.mark.parametrize("magic", [0, 1])
def test_message_formats_before_v2_read_as_aiokafka_reads_them(magic: int) -> None:
    """Batches of brokers before Kafka 4 (formats v0, v1) take aiokafka's own record reading."""
    builder: Any = LegacyRecordBatchBuilder(magic, 0, 1 << 20)
    for offset in range(5):
        builder.append(
            offset,
            timestamp=None if magic == 0 else 1_700_000_000_000,
            key=b"k",
            value=b"v%d" % offset,
        )
    data = bytes(builder.build())
    lazy = _read(data, fetch_offset=2)
    theirs = _read(data, fetch_offset=2, lazy=False)
    assert all(isinstance(r, ConsumerRecord) for r in lazy)
    assert [(r.offset, r.value) for r in lazy] == [(r.offset, r.value) for r in theirs]
    assert lazy[-1].offset == 4  # (aiokafka returns offset 1 of v0 too: its quirk, kept)


def test_unmarked_consumers_and_aborted_transactions_get_aiokafkas_records() -> None:
    """Unmarked, or reading committed data of a fetch with an aborted one: aiokafka's records."""
    data = _batch(_records(5))
    plain = _partition(data, marked=False)
    aborted = _partition(data, isolation_level=_READ_COMMITTED, aborted=[(7, 0)])
    assert all(isinstance(r, ConsumerRecord) for r in [*plain, *aborted])
    _assert_same(_read(data), list(_partition(data, lazy=False, isolation_level=_READ_COMMITTED)))


def test_committed_reads_without_aborted_transactions_are_read_in_c() -> None:
    """read_committed of a fetch with no aborted transaction gives the same records, read in C."""
    data = _batch(_records(5))
    committed = _read(data, isolation_level=_READ_COMMITTED)
    _assert_same(committed, list(_partition(data, lazy=False, isolation_level=_READ_COMMITTED)))


def test_headers_are_read_once_and_kept() -> None:
    """A record's headers are built on first use, then the same tuple is returned."""
    record = _read(_batch(_records(5)))[4]
    first = record.headers
    assert first is record.headers
    assert first == tuple(_HEADERS[:4])
    assert record.checksum is None


def test_records_are_read_only_and_release_their_batch() -> None:
    """Record fields cannot be assigned; dropping the records drops their hold on the bytes."""
    data = _batch(_records(30), compression=0)
    before = sys.getrefcount(data)
    records = _read(data)
    with pytest.raises(AttributeError):
        records[0].value = b"other"
    assert "offset=0" in repr(records[0])
    del records
    assert sys.getrefcount(data) == before


def test_a_header_name_that_is_not_utf8_raises_when_read() -> None:
    """Header names are text: bytes that are not UTF-8 fail when the headers are asked for."""
    data = bytearray(_batch([(b"k", b"v", [("ab", b"x")], 1)], compression=0))
    at = bytes(data).index(b"ab")
    data[at] = 0xFF
    struct.pack_into(">I", data, 17, calc_crc32c(bytes(data[21:])))
    (record,) = _read(bytes(data))
    assert record.value == b"v"
    with pytest.raises(UnicodeDecodeError):
        _ = record.headers


_HEADER_NAMES = st.text(max_size=12)
_HEADER_VALUES = st.none() | st.binary(max_size=40)
_RECORD = st.tuples(
    st.none() | st.binary(max_size=30),
    st.none() | st.binary(max_size=300),
    st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=4),
    st.integers(min_value=0, max_value=2**40),
)


@settings(max_examples=150, deadline=None)
@given(
    batches=st.lists(st.lists(_RECORD, min_size=1, max_size=12), min_size=1, max_size=4),
    compression=st.sampled_from(list(_CODECS.values())),
    skip=st.integers(min_value=0, max_value=10),
)
def test_any_records_read_as_aiokafka_reads_them(
    batches: list[list[Record]], compression: int, skip: int
) -> None:
    """Any keys, values, headers and timestamps, in any codec, read exactly as aiokafka's."""
    data, base = b"", 100
    for records in batches:
        data += _batch(records, compression=compression, base_offset=base)
        base += len(records)
    _assert_same(_read(data, 100 + skip), _read(data, 100 + skip, lazy=False))


def test_install_swaps_the_fetchers_two_names_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installing replaces aiokafka's MemoryRecords and PartitionRecords; again changes nothing."""
    monkeypatch.setattr(fetcher, "MemoryRecords", MemoryRecords)
    monkeypatch.setattr(fetcher, "PartitionRecords", PartitionRecords)
    assert install_record_reader()
    assert fetcher.PartitionRecords is _fetching._PartitionRecords
    assert fetcher.MemoryRecords is _fetching._KeepsBytes
    assert install_record_reader()
    assert fetcher.MemoryRecords is _fetching._KeepsBytes


def test_an_unknown_fetcher_is_left_alone_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If aiokafka's fetcher no longer reads MemoryRecords, nothing is replaced and it says so."""
    monkeypatch.setattr(fetcher, "PartitionRecords", PartitionRecords)
    monkeypatch.setattr(fetcher, "MemoryRecords", object)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not install_record_reader()
    assert fetcher.PartitionRecords is PartitionRecords
    assert "fetcher changed" in str(caught[0].message)
