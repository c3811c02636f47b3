"""LZ4 batches compressed by the fast compressor, as Kafka's Java producer does by default."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from aiokafka.codec import lz4_decode, lz4_encode
from aiokafka.record import default_records

from agentflux.kafka import AgentfluxSettings
from agentflux.kafka._gate._lz4 import fast_lz4_encode, install_fast_lz4
from agentflux.producers import EventPublisher

_LZ4 = 3  # the batch attribute's compression bits
_HEADER = 61  # bytes before the (compressed) records of a v2 batch
_BUILDERS = {
    "c": ("aiokafka.record._crecords.default_records", "DefaultRecordBatchBuilder"),
    "python": ("aiokafka.record.default_records", "_DefaultRecordBatchBuilderPy"),
}
_RECORDS = [
    (f"session-{n % 7}".encode(), b'{"role":"assistant","text":"%d"}' % n * 9) for n in range(300)
]


def _batch(module_name: str, builder_name: str, compression: int) -> bytes:
    builder: Any = getattr(importlib.import_module(module_name), builder_name)(
        2, compression, 0, -1, -1, -1, 1 << 20
    )
    for offset, (key, value) in enumerate(_RECORDS):
        builder.append(
            offset, timestamp=1_700_000_000_000, key=key, value=value, headers=[("h", b"v")]
        )
    return bytes(builder.build())


@pytest.mark.parametrize("builder", _BUILDERS.values(), ids=list(_BUILDERS))
def test_installed_builders_compress_with_the_fast_compressor(
    builder: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The builders write LZ4-HC frames by aiokafka alone, the fast compressor's once installed."""
    module = importlib.import_module(builder[0])
    monkeypatch.setattr(module, "lz4_encode", lz4_encode)  # aiokafka's own, whatever ran before
    plain = _batch(*builder, compression=0)[_HEADER:]
    assert _batch(*builder, compression=_LZ4)[_HEADER:] != fast_lz4_encode(plain)

    assert install_fast_lz4()
    batch = _batch(*builder, compression=_LZ4)
    assert batch[_HEADER:] == fast_lz4_encode(plain)
    read = default_records.DefaultRecordBatch(batch)
    assert read.compression_type == _LZ4
    assert [(record.key, record.value) for record in read] == _RECORDS


@pytest.mark.parametrize("size", [0, 1, 1000, 65_536, 300_000])
def test_fast_frames_decode_with_aiokafka(size: int) -> None:
    """A frame of any size (several 64 KiB blocks too) decodes back with aiokafka's decoder."""
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    assert lz4_decode(fast_lz4_encode(payload)) == payload


def test_fast_frames_cost_less_than_aiokafkas_and_stay_compressed() -> None:
    """The fast frame of repetitive records is smaller than the input, if not as small as HC's."""
    plain = b"".join(key + value for key, value in _RECORDS)
    fast, dense = fast_lz4_encode(plain), lz4_encode(plain)
    assert len(dense) <= len(fast) < len(plain) / 4


def test_install_reports_an_aiokafka_without_the_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """If aiokafka stops looking the encoder up where expected, installing says so, not raises."""
    monkeypatch.delattr(default_records, "lz4_encode")
    assert not install_fast_lz4()


@pytest.mark.parametrize(("compression", "fast"), [("lz4", True), ("zstd", False)])
async def test_a_publisher_compressing_lz4_installs_the_fast_compressor(
    compression: str,
    fast: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An lz4 publisher puts the fast compressor in aiokafka's builders; another leaves them."""
    for module_name, _ in _BUILDERS.values():
        monkeypatch.setattr(importlib.import_module(module_name), "lz4_encode", lz4_encode)
    publisher = EventPublisher(
        AgentfluxSettings(bootstrap_servers="127.0.0.1:9", registry_url="http://127.0.0.1:9"),
        compression_type=compression,
    )
    await publisher.close()  # never started: closes the clients it made
    for module_name, _ in _BUILDERS.values():
        encoder = importlib.import_module(module_name).lz4_encode
        assert (encoder is fast_lz4_encode) is fast
