"""Commands pointed at a group, topic or dead letter the real cluster does not have."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pytest
from _cli import run_cli

from agentflux._cli_errors import ExitCode
from agentflux.kafka import AgentfluxSettings

if TYPE_CHECKING:
    from _cli import CliResult
    from conftest import Cluster

pytestmark = pytest.mark.broker

_LEFTOVERS = ("Traceback", "Task was destroyed", "Unclosed AIOKafka", "coroutine was never")


def _settings(cluster: Cluster) -> AgentfluxSettings:
    return AgentfluxSettings(
        bootstrap_servers=cluster.bootstrap_servers, registry_url=cluster.registry_url
    )


def _failure(result: CliResult) -> dict[str, object]:
    """The one JSON object a failing command logs (stderr is not a terminal here)."""
    for leftover in _LEFTOVERS:
        assert leftover not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    failure: dict[str, object] = json.loads(lines[0])
    assert failure["exit_code"] == result.code
    return failure


async def test_unknown_group_topic_and_dead_letter_are_not_found(cluster: Cluster) -> None:
    """lag/replay of an unknown group, tail of an unknown topic, dlq show of a missing record: 4."""
    settings, name = _settings(cluster), f"nobody-{uuid.uuid4().hex[:8]}"

    lag = await run_cli(settings, "lag", "--group", name)
    assert lag.code == ExitCode.NOT_FOUND
    assert _failure(lag)["event"] == f"no consumer group '{name}' at {settings.bootstrap_servers}"

    replay = await run_cli(settings, "replay", "--group", name, "--to", "earliest")
    assert replay.code == ExitCode.NOT_FOUND
    assert "has no committed offsets" in str(_failure(replay)["event"])

    tail = await run_cli(settings, "tail", "--topic", name, "--idle-timeout", "1")
    assert tail.code == ExitCode.NOT_FOUND
    assert _failure(tail)["event"] == f"topic '{name}' does not exist on the cluster"

    shown = await run_cli(
        settings, "dlq", "show", "-g", "audit", "--group-id", name, "--offset", "7"
    )
    assert shown.code == ExitCode.NOT_FOUND
    assert "no record at partition 0 offset 7" in str(_failure(shown)["event"])


async def test_lag_of_every_group_leaves_nothing_behind(cluster: Cluster) -> None:
    """`agentflux lag` (any groups, or none) ends cleanly: no lost task, no unclosed client."""
    lag = await run_cli(_settings(cluster), "lag")
    assert lag.code == ExitCode.OK, lag.stderr
    assert lag.stderr == ""
