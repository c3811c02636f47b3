"""A marked consumer reads from the real broker exactly what a plain aiokafka consumer reads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaProducer
from conftest import consume_count, read_to_end

from agentflux.consumers._reader import install_record_reader
from agentflux.kafka import connection_kwargs
from agentflux.kafka._gate._lazy_headers import lazy_headers

if TYPE_CHECKING:
    from conftest import Cluster

_FIELDS = ("topic", "partition", "offset", "timestamp", "timestamp_type", "key", "value")


@pytest.mark.broker
async def test_marked_consumer_reads_what_aiokafka_reads(cluster: Cluster, new_topic: str) -> None:
    """Compressed and plain batches from the broker: same records, headers read on demand."""
    sent = 0
    for compression in ("lz4", None):
        producer = AIOKafkaProducer(
            **connection_kwargs(cluster.settings), compression_type=compression, linger_ms=20
        )
        await producer.start()
        try:
            for n in range(400):
                headers = [("n", str(n).encode()), ("codec", str(compression).encode())]
                await producer.send(
                    new_topic, b"value-%d" % n * (n % 9), key=b"s%d" % (n % 13), headers=headers
                )
            await producer.flush()
            sent += 400
        finally:
            await producer.stop()
    assert install_record_reader()
    marked = await consume_count(
        cluster.settings,
        new_topic,
        sent,
        key_deserializer=lazy_headers,
        max_poll_records=37,  # many partial takes of the fetched batches
    )
    plain = await read_to_end(cluster.settings, [new_topic])

    def key(record: Any) -> tuple[int, int]:
        return record.partition, record.offset

    assert len(marked) == len(plain) == sent
    assert {type(r).__name__ for r in marked} == {"Record"}
    for ours, theirs in zip(sorted(marked, key=key), sorted(plain, key=key), strict=True):
        assert [getattr(ours, f) for f in _FIELDS] == [getattr(theirs, f) for f in _FIELDS]
        assert ours.headers == tuple(theirs.headers)
