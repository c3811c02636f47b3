"""A registration that finds its own schema already registered succeeds; a real conflict does not."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from agentflux.schemas import IncompatibleSchemaError, RegistryClient

_SCHEMA = {"type": "record", "name": "Thing", "fields": [{"name": "a", "type": "string"}]}
# What Apicurio's Confluent-compatible API answers when the artifact is there already.
_ALREADY_EXISTS = {
    "error_code": 409,
    "message": "An artifact with ID 't-Thing' in group 'null' already exists.",
}


class _Registry:
    """The first registration goes through but its answer is lost; later ones meet it there."""

    def __init__(self, *, registered: bool) -> None:
        self.requests: Counter[str] = Counter()
        self.registered = registered

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = f"{request.method} {request.url.path}"
        self.requests[path] += 1
        if path == "POST /subjects/t-Thing/versions":
            if self.requests[path] == 1:
                raise httpx.ReadError("connection closed before the answer", request=request)
            return httpx.Response(409, json=_ALREADY_EXISTS)
        if self.registered:
            return httpx.Response(200, json={"subject": "t-Thing", "version": 1, "id": 7})
        return httpx.Response(404, json={"error_code": 40403, "message": "Schema not found"})


async def test_a_retried_registration_that_meets_its_schema_returns_its_id() -> None:
    """An answer lost, the retry told 'already exists': the id is looked up, no error."""
    registry = _Registry(registered=True)
    async with RegistryClient("http://registry", transport=httpx.MockTransport(registry)) as client:
        assert await client.register("t-Thing", _SCHEMA) == 7
        assert await client.register("t-Thing", _SCHEMA) == 7  # remembered
    assert registry.requests == Counter(
        {"POST /subjects/t-Thing/versions": 2, "POST /subjects/t-Thing": 1}
    )


async def test_a_conflict_with_another_schema_stays_a_typed_error() -> None:
    """A 409 for a schema that is not the one registered there is still IncompatibleSchemaError."""
    registry = _Registry(registered=False)
    async with RegistryClient("http://registry", transport=httpx.MockTransport(registry)) as client:
        with pytest.raises(IncompatibleSchemaError, match="already exists"):
            await client.register("t-Thing", _SCHEMA)
