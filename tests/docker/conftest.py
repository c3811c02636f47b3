"""The Docker tests run only when asked: ``AGENTFLUX_TEST_CLUSTER=docker`` (``make test-docker``).

They need a Docker engine and the project's images (``make images``); every other run leaves
them out (deselected, counted in pytest's summary) rather than failing for want of an engine.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from _clusters import CLUSTER_ENV

if TYPE_CHECKING:
    import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests marked ``docker`` unless the Docker cluster was asked for."""
    if os.environ.get(CLUSTER_ENV) == "docker":
        return
    kept = [item for item in items if item.get_closest_marker("docker") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
