"""A registration that meets its own schema already registered returns its id, on the real registry."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import pytest

from agentflux.schemas import RegistryClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from conftest import Cluster

pytestmark = pytest.mark.broker

_SCHEMA = {"type": "record", "name": "Thing", "fields": [{"name": "a", "type": "string"}]}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None) -> None:
    """Copy ``reader`` to ``writer`` until it ends (no writer: read and drop)."""
    while data := await reader.read(65536):
        if writer is None:
            return  # the answer started: the request went through, and its answer is lost
        writer.write(data)
        await writer.drain()


@contextlib.asynccontextmanager
async def _answer_lost_once(registry_url: str) -> AsyncIterator[str]:
    """A proxy to the registry that forwards its first connection's request and drops its answer."""
    upstream = urlsplit(registry_url)
    connections = 0

    async def relay(client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        first = connections == 1
        registry_in, registry_out = await asyncio.open_connection(upstream.hostname, upstream.port)
        pipes = {
            asyncio.ensure_future(_pipe(client_in, registry_out)),
            asyncio.ensure_future(_pipe(registry_in, None if first else client_out)),
        }
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:  # either side done (the answer dropped, or the client gone): close both
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            for writer in (client_out, registry_out):
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield urlunsplit(upstream._replace(netloc=f"127.0.0.1:{port}"))


async def test_a_registration_whose_answer_was_lost_is_retried_to_its_id(cluster: Cluster) -> None:
    """The first POST registers but its answer never comes; the retry meets it and returns its id."""
    subject = f"lost-{uuid.uuid4().hex[:8]}-Thing"
    async with (
        _answer_lost_once(cluster.settings.registry_url) as proxied,
        RegistryClient(proxied, retries=2) as client,
    ):
        schema_id = await client.register(subject, _SCHEMA)
    async with RegistryClient.from_settings(cluster.settings) as direct:
        assert await direct.lookup(subject, _SCHEMA) == schema_id


async def test_clients_registering_one_new_schema_together_all_get_its_id(
    cluster: Cluster,
) -> None:
    """Ten runtimes registering a new event type at once: one id each, no 'already exists' error."""
    clients = [RegistryClient.from_settings(cluster.settings) for _ in range(10)]
    try:
        for _ in range(5):  # a race is a matter of timing: several fresh subjects
            subject = f"race-{uuid.uuid4().hex[:8]}-Thing"
            ids = await asyncio.gather(*(client.register(subject, _SCHEMA) for client in clients))
            assert len(set(ids)) == 1, ids
            assert await clients[0].lookup(subject, _SCHEMA) == ids[0]
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
