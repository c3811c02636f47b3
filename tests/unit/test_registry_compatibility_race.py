"""Setting a subject's level that the registry made meanwhile succeeds; a lasting 409 does not."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from agentflux.schemas import IncompatibleSchemaError, RegistryClient

# What Apicurio's Confluent-compatible API answers when the subject's rule is there already.
_RULE_EXISTS = {"error_code": 409, "message": "A rule named 'COMPATIBILITY' already exists."}


class _Registry:
    """The first PUT goes through but its answer is lost; then ``conflicts`` answers of 409."""

    def __init__(self, conflicts: int) -> None:
        self.puts: Counter[str] = Counter()
        self.conflicts = conflicts

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.puts[path] += 1
        if self.puts[path] == 1:
            raise httpx.ReadError("connection closed before the answer", request=request)
        if self.puts[path] <= 1 + self.conflicts:
            return httpx.Response(409, json=_RULE_EXISTS)
        return httpx.Response(200, json={"compatibility": "FULL_TRANSITIVE"})


async def test_a_level_whose_rule_was_made_meanwhile_is_set_again() -> None:
    """An answer lost, the retry told 'rule already exists': the same PUT updates it, no error."""
    registry = _Registry(conflicts=1)
    async with RegistryClient("http://registry", transport=httpx.MockTransport(registry)) as client:
        await client.set_compatibility("t-Thing", "FULL_TRANSITIVE")
    assert registry.puts == Counter({"/config/t-Thing": 3})


async def test_a_lasting_conflict_stays_a_typed_error() -> None:
    """A registry that keeps answering 409 is still an IncompatibleSchemaError."""
    registry = _Registry(conflicts=5)
    async with RegistryClient("http://registry", transport=httpx.MockTransport(registry)) as client:
        with pytest.raises(IncompatibleSchemaError, match="already exists"):
            await client.set_compatibility("t-Thing", "FULL_TRANSITIVE")
