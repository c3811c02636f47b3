"""The fix for aiokafka's JoinGroup per assignor: checked against aiokafka, gated by version."""

from __future__ import annotations

import hashlib
import inspect
from typing import TYPE_CHECKING

import pytest
from aiokafka.consumer import group_coordinator
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

from agentflux.kafka import _gate
from agentflux.kafka._gate import _group_join

if TYPE_CHECKING:
    from collections.abc import Iterator

# aiokafka's own class, whether or not the fix is installed in this process.
_AIOKAFKA_REBALANCE = next(
    cls
    for cls in group_coordinator.CoordinatorGroupRebalance.__mro__
    if cls.__module__ == group_coordinator.__name__
)


@pytest.fixture
def untested_aiokafka(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The gate as an aiokafka outside the tested range leaves it, for one test."""
    monkeypatch.setattr(_gate.aiokafka, "__version__", "0.99.0")
    _gate.gate.cache_clear()
    yield
    _gate.gate.cache_clear()


def test_the_copy_was_made_from_the_installed_aiokafka_join() -> None:
    """Aiokafka's perform_group_join is the one the fix copies: a changed one is looked at again."""
    source = inspect.getsource(_AIOKAFKA_REBALANCE.perform_group_join)
    assert hashlib.sha256(source.encode()).hexdigest() == _group_join.AIOKAFKA_JOIN_SOURCE_SHA256


def test_on_a_tested_aiokafka_runners_offer_range_then_round_robin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Installed: a join is one request, so round robin is offered second for older members."""
    monkeypatch.setattr(group_coordinator, "CoordinatorGroupRebalance", _AIOKAFKA_REBALANCE)
    assert _group_join.assignors() == (RangePartitionAssignor, RoundRobinPartitionAssignor)
    assert group_coordinator.CoordinatorGroupRebalance is _group_join._OneJoinRebalance


@pytest.mark.usefixtures("untested_aiokafka")
def test_on_an_untested_aiokafka_runners_offer_range_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing of aiokafka replaced; one assignor, so aiokafka's join sends one request."""
    monkeypatch.setattr(group_coordinator, "CoordinatorGroupRebalance", _AIOKAFKA_REBALANCE)
    assert _group_join.assignors() == (RangePartitionAssignor,)
    assert group_coordinator.CoordinatorGroupRebalance is _AIOKAFKA_REBALANCE
