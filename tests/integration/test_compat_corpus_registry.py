"""The registry's compatibility endpoint against the corpus, at BACKWARD and at FORWARD."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from _compat_corpus import CORPUS, DISAGREEMENTS, Change

from agentflux.schemas import RegistryClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from conftest import Cluster

pytestmark = pytest.mark.broker


@pytest.fixture
async def registry(cluster: Cluster) -> AsyncIterator[RegistryClient]:
    """A registry client on the test cluster's registry."""
    async with RegistryClient.from_settings(cluster.settings) as client:
        yield client


def _expected(case: Change, direction: str) -> bool:
    verdict: bool = getattr(case, direction)
    known = [
        d
        for d in DISAGREEMENTS
        if (d.case, d.checker, d.direction) == (case.name, "registry", direction)
    ]
    return known[0].says if known else verdict


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
async def test_registry_agrees(registry: RegistryClient, topic_name: str, case: Change) -> None:
    """The registry accepts the new version at each level exactly when the corpus says so."""
    subject = f"{topic_name}-{case.old['namespace']}.{case.old['name']}"
    await registry.register(subject, case.old)
    verdicts = {}
    for level, direction in (("BACKWARD", "backward"), ("FORWARD", "forward")):
        await registry.set_compatibility(subject, level)
        verdicts[direction] = await registry.check_compatibility(subject, case.new) == []
    assert verdicts == {d: _expected(case, d) for d in ("backward", "forward")}
