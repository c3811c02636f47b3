"""Callers asking the registry the same thing at the same time share one request."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
import pytest

from agentflux.schemas import RegistryClient, RegistryUnavailableError

_SCHEMA = {"type": "record", "name": "Thing", "fields": [{"name": "a", "type": "string"}]}


class _SlowRegistry:
    """Answers after the test lets it (so callers overlap), counting every request by path."""

    def __init__(self, *, status: int = 200) -> None:
        self.requests: Counter[str] = Counter()
        self.release = asyncio.Event()
        self.status = status

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests[f"{request.method} {request.url.path}"] += 1
        await self.release.wait()
        if self.status != httpx.codes.OK:
            return httpx.Response(self.status, text="down for maintenance")
        if request.method == "GET":
            return httpx.Response(200, json={"schema": json.dumps(_SCHEMA)})
        return httpx.Response(200, json={"id": 7})


async def _overlapping(registry: _SlowRegistry, calls: list[asyncio.Task[object]]) -> None:
    """Let the registry answer once every call is waiting on it."""
    while sum(registry.requests.values()) == 0:
        await asyncio.sleep(0)
    await asyncio.sleep(0)  # the other calls reach the shared request
    registry.release.set()
    await asyncio.wait(calls)


async def test_concurrent_schema_fetches_of_one_id_make_one_request() -> None:
    """Fifty partitions meeting schema id 7 at once cost the registry one GET."""
    registry = _SlowRegistry()
    async with RegistryClient("http://registry", transport=httpx.MockTransport(registry)) as client:
        calls = [asyncio.ensure_future(client.get_schema(7)) for _ in range(50)]
        await _overlapping(registry, calls)  # type: ignore[arg-type]
        assert {json.loads(call.result()) == _SCHEMA for call in calls} == {True}
        await client.get_schema(7)  # remembered: no request at all
    assert registry.requests == Counter({"GET /schemas/ids/7": 1})


async def test_concurrent_registrations_of_one_schema_make_one_request() -> None:
    """Sessions publishing a new event type together register its schema once."""
    registry = _SlowRegistry()
    async with RegistryClient("http://registry", transport=httpx.MockTransport(registry)) as client:
        calls = [asyncio.ensure_future(client.register("t-Thing", _SCHEMA)) for _ in range(20)]
        calls += [asyncio.ensure_future(client.lookup("t-Thing", _SCHEMA)) for _ in range(20)]
        await _overlapping(registry, calls)  # type: ignore[arg-type]
        assert {call.result() for call in calls} == {7}
    assert registry.requests == Counter(
        {"POST /subjects/t-Thing/versions": 1, "POST /subjects/t-Thing": 1}
    )


async def test_a_shared_failure_reaches_every_caller_and_is_not_remembered() -> None:
    """Every waiting caller gets the typed error; the next call asks the registry again."""
    registry = _SlowRegistry(status=503)
    transport = httpx.MockTransport(registry)
    async with RegistryClient("http://registry", retries=0, transport=transport) as client:
        calls = [asyncio.ensure_future(client.get_schema(7)) for _ in range(10)]
        await _overlapping(registry, calls)  # type: ignore[arg-type]
        assert {type(call.exception()) for call in calls} == {RegistryUnavailableError}
        registry.status = 200
        assert json.loads(await client.get_schema(7)) == _SCHEMA
    assert registry.requests == Counter({"GET /schemas/ids/7": 2})


async def test_a_cancelled_caller_leaves_the_request_to_the_others() -> None:
    """Cancelling one waiting caller neither cancels the shared request nor fails the rest."""
    registry = _SlowRegistry()
    async with RegistryClient("http://registry", transport=httpx.MockTransport(registry)) as client:
        leaving = asyncio.ensure_future(client.get_schema(7))
        staying = asyncio.ensure_future(client.get_schema(7))
        while not registry.requests:
            await asyncio.sleep(0)
        leaving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        registry.release.set()
        assert json.loads(await staying) == _SCHEMA
    assert registry.requests == Counter({"GET /schemas/ids/7": 1})
