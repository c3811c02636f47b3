"""aiokafka's clients where their public API stops short: one broker's metadata, groups, a stop.

None of these is an acceleration: they reach into aiokafka on the versions it was tested with
(``gate().tested``), whatever ``AGENTFLUX_ACCELERATE`` says; on another version each takes the
public path described on it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka.protocol.admin import DeleteGroupsRequest
from aiokafka.protocol.metadata import MetadataRequest

from agentflux.kafka._gate import gate

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

__all__ = ["close_cut_short", "delete_group_on", "metadata_from_broker"]

_log = structlog.get_logger("agentflux.kafka")


async def metadata_from_broker(
    admin: AIOKafkaAdminClient, names: list[str], node_id: int
) -> list[dict[str, Any]] | None:
    """These topics' metadata as broker ``node_id`` sees it; None on an untested aiokafka.

    aiokafka's admin asks a random broker and has no public call for a given one.
    """
    if not gate().tested:
        return None
    response = await admin._send_request(MetadataRequest(names), node_id)  # noqa: SLF001
    topics: list[dict[str, Any]] = response.to_object()["topics"]
    return topics


async def delete_group_on(
    admin: AIOKafkaAdminClient, coordinator: int, group: str
) -> list[tuple[str, int]] | None:
    """Delete ``group`` on its coordinator: (group, error code) pairs; None on an untested aiokafka.

    aiokafka's admin client has no delete_consumer_groups yet (the request itself is public).
    """
    if not gate().tested:
        return None
    response = await admin._send_request_to_node(coordinator, DeleteGroupsRequest([group]))  # noqa: SLF001
    results: list[tuple[str, int]] = response.results
    return results


async def close_cut_short(consumer: AIOKafkaConsumer) -> None:
    """Close what a consumer's cut-short ``stop()`` left open (aio-libs/aiokafka issue 647).

    On an untested aiokafka nothing can reach them: a warning says connections may linger until
    the process ends.
    """
    if not gate().tested:
        _log.warning("consumer stop cut short inside aiokafka; its connections may linger")
        return
    _log.warning("consumer stop cut short inside aiokafka, closing its connections")
    # The fetch tasks left running would reconnect after the client closed.
    pending: set[asyncio.Task[Any]] = getattr(
        getattr(consumer, "_fetcher", None), "_pending_tasks", set()
    )
    for fetch in pending:
        fetch.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await consumer._client.close()  # noqa: SLF001  # what stop() did not reach
