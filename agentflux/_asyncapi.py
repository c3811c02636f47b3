"""An AsyncAPI 3.0 document of the platform: topics, messages, keys, headers and consumer groups.

Other teams read it to discover what they may consume; it is generated from the same sources
the platform runs on (the topic declaration and the ``.avsc`` files), so it cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = ["ChannelSource", "ConsumerGroupSource", "MessageSource", "build_asyncapi"]

_BINDING_VERSION = "0.5.0"
_AVRO_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"
_CONTENT_TYPE = "application/avro"


@dataclass(frozen=True, slots=True)
class MessageSource:
    """One event type as it appears on a topic."""

    name: str
    event_type: str
    record_name: str
    avro_schema: Mapping[str, Any]
    summary: str


@dataclass(frozen=True, slots=True)
class ChannelSource:
    """One declared topic with its configuration and the messages it carries."""

    topic: str
    description: str
    owner: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]
    messages: Sequence[MessageSource]


@dataclass(frozen=True, slots=True)
class ConsumerGroupSource:
    """A consumer group (shipped, or a team's) and the topics it reads."""

    group_id: str
    description: str
    topics: Sequence[str]


def _headers_schema(headers: Mapping[str, str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            name: {"type": "string", "description": text} for name, text in headers.items()
        },
        "required": sorted(headers),
    }


def _message(source: MessageSource, headers: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": source.name,
        "title": source.event_type,
        "summary": source.summary,
        "contentType": _CONTENT_TYPE,
        "headers": _headers_schema(headers),
        "payload": {"schemaFormat": _AVRO_FORMAT, "schema": dict(source.avro_schema)},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The session id."},
                "schemaIdLocation": "payload",
                "schemaIdPayloadEncoding": "confluent",
                "schemaLookupStrategy": "TopicRecordNameStrategy",
                "bindingVersion": _BINDING_VERSION,
            },
        },
    }


def _channel(source: ChannelSource) -> dict[str, Any]:
    return {
        "address": source.topic,
        "title": source.topic,
        "description": f"{source.description} Owner: {source.owner}.",
        "messages": {m.name: {"$ref": f"#/components/messages/{m.name}"} for m in source.messages},
        "bindings": {
            "kafka": {
                "topic": source.topic,
                "partitions": source.partitions,
                "replicas": source.replication_factor,
                "topicConfiguration": _topic_configuration(source.configs),
                "bindingVersion": _BINDING_VERSION,
            },
        },
    }


def _topic_configuration(configs: Mapping[str, str]) -> dict[str, Any]:
    # The binding knows a few configs by name and type; the rest stay in the description.
    known: dict[str, Any] = {}
    if "cleanup.policy" in configs:
        known["cleanup.policy"] = configs["cleanup.policy"].split(",")
    for name in ("retention.ms", "retention.bytes"):
        if name in configs:
            known[name] = int(configs[name])
    return known


def _channel_key(topic: str) -> str:
    return topic.replace(".", "_")


def build_asyncapi(  # noqa: PLR0913  # each argument is one independent part of the document
    *,
    version: str,
    bootstrap_servers: str,
    registry_url: str,
    channels: Iterable[ChannelSource],
    groups: Iterable[ConsumerGroupSource],
    headers: Mapping[str, str],
) -> dict[str, Any]:
    """Assemble the AsyncAPI 3.0 document as plain data, ready for JSON or YAML."""
    channel_list = list(channels)
    operations: dict[str, Any] = {}
    for channel in channel_list:
        key = _channel_key(channel.topic)
        operations[f"publish_{key}"] = {
            "action": "send",
            "title": f"The agent runtime publishes to {channel.topic}",
            "channel": {"$ref": f"#/channels/{key}"},
            "messages": [{"$ref": f"#/channels/{key}/messages/{m.name}"} for m in channel.messages],
        }
    for group in groups:
        for topic in group.topics:
            key = _channel_key(topic)
            operations[f"{_channel_key(group.group_id)}_consumes_{key}"] = {
                "action": "receive",
                "title": f"{group.group_id} reads {topic}",
                "description": group.description,
                "channel": {"$ref": f"#/channels/{key}"},
                "bindings": {
                    "kafka": {
                        "groupId": {"type": "string", "enum": [group.group_id]},
                        "bindingVersion": _BINDING_VERSION,
                    },
                },
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "agentflux events",
            "version": version,
            "description": (
                "Events of the AI agent runtime on Apache Kafka. Each record is keyed by session "
                "id and framed in the Confluent wire format (magic byte 0, 4-byte schema id, Avro "
                f"binary); schemas live in the registry at {registry_url} under the subject "
                "<topic>-<record full name>. Events of one session are ordered on one partition."
            ),
        },
        "defaultContentType": _CONTENT_TYPE,
        "servers": {
            "default": {
                "host": bootstrap_servers.split(",", maxsplit=1)[0],
                "protocol": "kafka",
                "description": "The cluster named by AGENTFLUX_BOOTSTRAP_SERVERS.",
            },
        },
        "channels": {_channel_key(c.topic): _channel(c) for c in channel_list},
        "operations": operations,
        "components": {
            "messages": {m.name: _message(m, headers) for c in channel_list for m in c.messages},
        },
    }
