"""The codec through the real registry: every event round-trips; bad bytes get typed errors."""

from __future__ import annotations

import io
import json
import struct
from typing import TYPE_CHECKING

import fastavro
import pytest
from _samples import sample_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentflux.schemas import (
    AgentSwitchedEvent,
    AvroCodec,
    BaseEvent,
    CodecError,
    CorruptPayloadError,
    RegistryClient,
    UnknownEvent,
    UnknownSchemaIdError,
    subject_name,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from conftest import Cluster

pytestmark = pytest.mark.broker


@pytest.fixture
async def registry(cluster: Cluster) -> AsyncIterator[RegistryClient]:
    """A registry client on the test cluster's registry."""
    async with RegistryClient.from_settings(cluster.settings) as client:
        yield client


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: type(e).__name__)
async def test_every_event_round_trips(
    registry: RegistryClient, topic_name: str, event: BaseEvent
) -> None:
    """Model -> Confluent-framed bytes -> model is the identity, read by a fresh codec."""
    data = await AvroCodec(registry, auto_register=True).encode(event, topic_name)
    assert data[0] == 0
    schema_id = struct.unpack(">I", data[1:5])[0]
    stored = await registry.get_version(subject_name(topic_name, event.RECORD_NAME))
    assert stored["id"] == schema_id  # registered under the topic-record subject
    assert await AvroCodec(registry).decode(data) == event


async def test_unknown_record_type_is_reported(registry: RegistryClient, topic_name: str) -> None:
    """A record type the reader has no model for decodes to UnknownEvent, not an exception."""
    foreign = {
        "type": "record",
        "name": "Invoice",
        "namespace": "billing",
        "fields": [{"name": "event_type", "type": "string"}, {"name": "total", "type": "double"}],
    }
    schema_id = await registry.register(f"{topic_name}-billing.Invoice", foreign)
    body = io.BytesIO()
    fastavro.schemaless_writer(
        body, fastavro.parse_schema(foreign), {"event_type": "invoice_paid", "total": 9.5}
    )
    decoded = await AvroCodec(registry).decode(struct.pack(">bI", 0, schema_id) + body.getvalue())
    assert isinstance(decoded, UnknownEvent)
    assert decoded.record_name == "billing.Invoice"
    assert decoded.event_type == "invoice_paid"
    assert decoded.data["total"] == 9.5


async def test_corrupt_payloads_raise_typed_errors(
    registry: RegistryClient, topic_name: str
) -> None:
    """Short, unframed, truncated, padded and unknown-id payloads raise CodecError subclasses."""
    codec = AvroCodec(registry, auto_register=True)  # ad-hoc topics: registered as encoded
    good = await codec.encode(
        AgentSwitchedEvent(session_id="s", from_agent="a", to_agent="b"), topic_name
    )
    cases = {
        b"": CorruptPayloadError,
        b"\x00\x00": CorruptPayloadError,
        b"\x01" + good[1:]: CorruptPayloadError,
        good[:-4]: CorruptPayloadError,
        good + b"\x00": CorruptPayloadError,
        b"\x00\x7f\xff\xff\xf0" + good[5:]: UnknownSchemaIdError,
    }
    for payload, error in cases.items():
        with pytest.raises(error):
            await codec.decode(payload)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tail=st.binary(max_size=200))
async def test_any_bytes_decode_or_raise_codec_error(registry: RegistryClient, tail: bytes) -> None:
    """Whatever follows a known schema id, decoding returns an event or raises CodecError."""
    codec = AvroCodec(registry, auto_register=True)  # ad-hoc topics: registered as encoded
    topic = "hypothesis-codec-probe"
    header = (
        await codec.encode(AgentSwitchedEvent(session_id="s", from_agent="a", to_agent="b"), topic)
    )[:5]
    try:
        decoded = await codec.decode(header + tail)
    except CodecError:
        return
    assert isinstance(decoded, (BaseEvent, UnknownEvent))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    from_agent=st.text(min_size=1, max_size=50),
    to_agent=st.text(min_size=1, max_size=50),
    reason=st.text(max_size=300),
    correlation=st.none() | st.text(min_size=1, max_size=128),
)
async def test_any_valid_event_round_trips(
    registry: RegistryClient, from_agent: str, to_agent: str, reason: str, correlation: str | None
) -> None:
    """Any valid AgentSwitched event, odd Unicode included, survives encode and decode."""
    codec = AvroCodec(registry, auto_register=True)  # ad-hoc topics: registered as encoded
    event = AgentSwitchedEvent(
        session_id="s",
        from_agent=from_agent,
        to_agent=to_agent,
        reason=reason,
        correlation_id=correlation,
    )
    assert await codec.decode(await codec.encode(event, "hypothesis-codec-probe")) == event


async def test_registry_schema_is_the_shipped_avsc(
    registry: RegistryClient, topic_name: str
) -> None:
    """What the codec registers is exactly the .avsc file shipped in the package."""
    event = sample_events()[0]
    data = await AvroCodec(registry, auto_register=True).encode(event, topic_name)
    stored = json.loads(await registry.get_schema(struct.unpack(">I", data[1:5])[0]))
    assert stored["name"] == event.RECORD_NAME.rpartition(".")[2]
    assert [f["name"] for f in stored["fields"]][:4] == [
        "event_id",
        "event_type",
        "occurred_at",
        "session_id",
    ]
