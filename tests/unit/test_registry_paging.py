"""The registry client reads every subject however the registry pages its answers."""

from __future__ import annotations

import json

import httpx

from agentflux.schemas import RegistryClient

_ALL = [f"topic-{i:04d}-agentflux.events.agent.AgentSwitched" for i in range(2345)]


def _paging(request: httpx.Request) -> httpx.Response:
    """Apicurio's behaviour: limit/offset honoured, 1000 by default."""
    limit = int(request.url.params.get("limit", 1000))
    offset = int(request.url.params.get("offset", 0))
    return httpx.Response(200, json=_ALL[offset : offset + limit])


def _no_paging(request: httpx.Request) -> httpx.Response:  # ignores the query
    """A registry that ignores limit/offset and answers everything every time."""
    return httpx.Response(200, content=json.dumps(_ALL).encode())


async def test_subjects_are_read_page_by_page() -> None:
    """2345 subjects come back whole from a registry that answers 1000 at a time."""
    async with RegistryClient("http://registry", transport=httpx.MockTransport(_paging)) as client:
        assert await client.subjects() == _ALL


async def test_subjects_from_a_registry_without_paging_are_not_repeated() -> None:
    """A registry that ignores the paging parameters gives each subject once, and the loop ends."""
    async with RegistryClient(
        "http://registry", transport=httpx.MockTransport(_no_paging)
    ) as client:
        assert await client.subjects() == _ALL
