"""Every Python example in README.md and docs/ runs: fast ones here, broker ones on the cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _docs_examples import ROOT, all_examples, examples_in, markdown_files, run_example

import agentflux.producers
from agentflux.producers import EventBus, EventPublisher, ToolExecutionCompletedEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from _docs_examples import Example
    from conftest import Cluster

EXAMPLES = all_examples()
FAST = [e for e in EXAMPLES if not e.broker]
BROKER = [e for e in EXAMPLES if e.broker]
AGENTFLUX = Path(sys.executable).parent / "agentflux"


def test_every_python_fence_is_collected() -> None:
    """Each opening ```python fence of the README and docs is an example the suite runs."""
    for path in markdown_files():
        openings = [
            line
            for line in path.read_text().splitlines()
            if line.lstrip().startswith(("```python", "```py"))
        ]
        assert len(examples_in(path)) == len(openings), path


def test_the_readme_and_the_guides_have_examples() -> None:
    """The collector finds examples where the docs promise them (a broken parser finds none)."""
    where = {e.path.relative_to(ROOT).as_posix() for e in EXAMPLES}
    assert {"README.md", "docs/publishing.md", "docs/consuming.md"} <= where
    assert FAST
    assert BROKER


@pytest.fixture
def reader_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A reader's fresh folder: no .env of ours, files the example writes land in tmp_path."""
    for name in list(os.environ):
        if name.startswith("AGENTFLUX_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("example", FAST, ids=[e.name for e in FAST])
async def test_fast_example_runs(example: Example, reader_environment: None) -> None:
    """A docs example that needs no broker runs to its end without an error."""
    await run_example(example)


def _agentflux(cluster: Cluster, *args: str) -> None:
    env = {
        **os.environ,
        "AGENTFLUX_BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
        "AGENTFLUX_REGISTRY_URL": cluster.registry_url,
    }
    subprocess.run([str(AGENTFLUX), *args], env=env, check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def platform_ready(cluster: Cluster) -> Cluster:
    """The cluster as Getting started leaves it: declared topics applied, schemas registered."""
    _agentflux(cluster, "topics", "apply")
    _agentflux(cluster, "schemas", "register")
    return cluster


@pytest.fixture
async def broker_environment(
    platform_ready: Cluster,
    reader_environment: None,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[None]:
    """AGENTFLUX_* pointing at the cluster, a fresh process-wide bus, a tool event to consume."""
    monkeypatch.setenv("AGENTFLUX_BOOTSTRAP_SERVERS", platform_ready.bootstrap_servers)
    monkeypatch.setenv("AGENTFLUX_REGISTRY_URL", platform_ready.registry_url)
    # The example imports the module's event_bus: a fresh one, as in a new runtime process.
    bus = EventBus()
    monkeypatch.setattr(agentflux.producers, "event_bus", bus)
    async with EventPublisher(platform_ready.settings) as publisher:
        await publisher.publish(
            ToolExecutionCompletedEvent(
                session_id="docs-s-1", call_id="call-1", tool_name="grep", duration_ms=12
            )
        )
    yield
    await bus.close()  # a no-op when the example closed it, as it should


@pytest.mark.broker
@pytest.mark.parametrize("example", BROKER, ids=[e.name for e in BROKER])
async def test_broker_example_runs(example: Example, broker_environment: None) -> None:
    """A docs example that publishes or consumes runs to its end on the real cluster."""
    await run_example(example)
