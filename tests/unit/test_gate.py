"""The gate to aiokafka's internals: version range, the off switch, and every public path."""

from __future__ import annotations

import ast
import hashlib
import inspect
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiokafka.consumer import consumer as aiokafka_consumer
from aiokafka.consumer import fetcher as aiokafka_fetcher
from aiokafka.consumer import group_coordinator
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.producer.message_accumulator import BatchBuilder

from agentflux._accelerate import accelerations_wanted
from agentflux._accelerations import accelerations
from agentflux.consumers._reader import install_record_reader
from agentflux.kafka import _gate
from agentflux.kafka._gate import _accumulator, _clients, _group_join, _lz4, state_for
from agentflux.kafka._gate import tested_range as aiokafka_range
from agentflux.kafka._gate._event_batch import EventBatch
from agentflux.kafka._gate._fetch_sessions import install_fetch_sessions
from agentflux.producers._batching import batch_factory

if TYPE_CHECKING:
    from collections.abc import Iterator

_ROOT = Path(__file__).parents[2]
_GATE = _ROOT / "agentflux" / "kafka" / "_gate"
# aiokafka modules whose use is a reach into its internals (the public API is aiokafka,
# aiokafka.admin, aiokafka.errors, aiokafka.structs, aiokafka.abc, aiokafka.codec).
_PRIVATE_MODULES = (
    "aiokafka.consumer.",
    "aiokafka.producer.",
    "aiokafka.protocol",
    "aiokafka.record",
    "aiokafka.client",
    "aiokafka.conn",
)
_PRIVATE_ATTRIBUTES = {"_client", "_fetcher", "_message_accumulator", "_send_request"}


@pytest.fixture
def closed_gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The gate as AGENTFLUX_ACCELERATE=0 closes it, for one test."""
    monkeypatch.setenv("AGENTFLUX_ACCELERATE", "0")
    _gate.gate.cache_clear()
    yield
    _gate.gate.cache_clear()


def test_the_tested_range_opens_the_gate() -> None:
    """Aiokafka inside the tested range: the adapters may use its internals."""
    assert state_for("0.14.0", wanted=True).open


@pytest.mark.parametrize("version", ["0.13.0", "0.15.0", "1.0.0", "nightly"])
def test_an_untested_aiokafka_closes_the_gate_and_says_why(version: str) -> None:
    """Outside the tested range the gate is closed, naming the version and the range."""
    state = state_for(version, wanted=True)
    assert not state.open
    assert version in state.reason
    assert aiokafka_range() in state.reason


def test_the_switch_closes_the_gate_on_a_tested_version() -> None:
    """AGENTFLUX_ACCELERATE=0 closes the gate, and says that is why."""
    state = state_for("0.14.0", wanted=False)
    assert not state.open
    assert state.tested
    assert "AGENTFLUX_ACCELERATE=0" in state.reason


def test_pyproject_pins_aiokafka_to_the_aiokafka_range() -> None:
    """The dependency pin and the gate's range are the same versions."""
    project = tomllib.loads((_ROOT / "pyproject.toml").read_text())["project"]
    pins = [dep for dep in project["dependencies"] if dep.startswith("aiokafka")]
    assert pins == [f"aiokafka[lz4,zstd]{aiokafka_range()}"]


def _private_reaches(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aiokafka"):
            module = node.module + "."
            if module.startswith(_PRIVATE_MODULES):
                found.append(f"{path.name}:{node.lineno} from {node.module} import ...")
        elif isinstance(node, ast.Attribute) and node.attr in _PRIVATE_ATTRIBUTES:
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
    return found


def test_no_module_outside_the_gate_reaches_into_aiokafka() -> None:
    """Every private aiokafka import or attribute is inside agentflux/kafka/_gate."""
    outside = [
        reach
        for path in (_ROOT / "agentflux").rglob("*.py")
        if _GATE not in path.parents
        for reach in _private_reaches(path)
    ]
    assert outside == []


def test_the_gate_does_reach_into_aiokafka() -> None:
    """The scan above can fail: it finds the gate's own reaches."""
    assert any(_private_reaches(path) for path in _GATE.glob("*.py"))


@pytest.mark.usefixtures("closed_gate")
def test_with_the_gate_closed_nothing_of_aiokafka_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Closed: no LZ4 encoder, fetcher, records or consumer class of aiokafka's is replaced."""
    monkeypatch.setattr(aiokafka_fetcher, "PartitionRecords", aiokafka_fetcher.PartitionRecords)
    monkeypatch.setattr(aiokafka_fetcher, "MemoryRecords", aiokafka_fetcher.MemoryRecords)
    monkeypatch.setattr(aiokafka_consumer, "Fetcher", aiokafka_fetcher.Fetcher)
    before = (
        aiokafka_fetcher.PartitionRecords,
        aiokafka_fetcher.MemoryRecords,
        aiokafka_consumer.Fetcher,
    )
    assert not _lz4.install_fast_lz4()
    assert not install_record_reader()
    assert not install_fetch_sessions()
    after = (
        aiokafka_fetcher.PartitionRecords,
        aiokafka_fetcher.MemoryRecords,
        aiokafka_consumer.Fetcher,
    )
    assert after == before


class _Producer:
    """What batch_factory asks of a producer: aiokafka's public create_batch()."""

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(1_000_000, 0)


@pytest.mark.usefixtures("closed_gate")
async def test_with_the_gate_closed_the_publisher_fills_aiokafkas_own_batches() -> None:
    """Closed: batches come from create_batch(), handed over without the accumulator hook."""
    batch, append_record = batch_factory(_Producer(), ("a", "b"), 1_000_000, None)()  # type: ignore[arg-type]
    assert type(batch) is BatchBuilder
    assert append_record(b"k", b"v", (b"1", None)) == 0
    assert _accumulator.taken_and_delivered(_Producer(), ("t", 0), batch) is None  # type: ignore[arg-type]


@pytest.fixture
def untested_aiokafka(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An aiokafka outside the tested range, as far as the gate can tell, for one test."""
    monkeypatch.setattr(_gate.aiokafka, "__version__", "0.13.0")
    _gate.gate.cache_clear()
    yield
    _gate.gate.cache_clear()


@pytest.mark.usefixtures("untested_aiokafka")
async def test_on_an_untested_aiokafka_even_the_client_fixes_take_the_public_path() -> None:
    """Untested aiokafka: the gate is closed, and the client calls that are no accelerations too."""
    assert not _gate.gate().open
    assert not _gate.gate().tested
    assert await _clients.metadata_from_broker(None, ["t"], 1) is None  # type: ignore[arg-type]
    assert await _clients.delete_group_on(None, 1, "g") is None  # type: ignore[arg-type]


@pytest.mark.usefixtures("closed_gate")
def test_the_switch_leaves_the_client_fixes_on() -> None:
    """AGENTFLUX_ACCELERATE=0 closes the accelerations, not the fixes on a tested aiokafka."""
    assert not _gate.gate().open
    assert _gate.gate().tested


@pytest.mark.skipif(not accelerations_wanted(), reason="AGENTFLUX_ACCELERATE=0 closes the gate")
def test_with_the_gate_open_the_publisher_writes_its_batches_in_c() -> None:
    """Open (here: aiokafka in range, extensions built): the C-written batch."""
    batch, _append = batch_factory(_Producer(), ("a",), 1_000_000, None)()  # type: ignore[arg-type]
    assert isinstance(batch, EventBatch)


def test_accelerations_follow_the_switch() -> None:
    """Here (compiler, tested aiokafka) all are on, or all off with AGENTFLUX_ACCELERATE=0."""
    found = accelerations()
    assert len(found) == 6
    if accelerations_wanted():
        assert [a.name for a in found if not a.active] == []
    else:
        assert [a.name for a in found if a.active] == []
        assert all("AGENTFLUX_ACCELERATE=0" in a.reason for a in found)


def _doctor(**env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "agentflux", "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "AGENTFLUX_BOOTSTRAP_SERVERS": "127.0.0.1:1", **env},
    )
    return result.stdout


def _acceleration_rows(output: str) -> list[list[str]]:
    lines = output.split("accelerations:\n", 1)[1].splitlines()
    return [line.split(maxsplit=2) for line in lines]


def test_doctor_shows_every_acceleration_on() -> None:
    """`agentflux doctor` lists the six accelerations, all on, and the versions."""
    output = _doctor(AGENTFLUX_ACCELERATE="1")
    rows = _acceleration_rows(output)
    assert len(rows) == 6
    assert {row[0] for row in rows} == {"on"}
    assert "aiokafka" in output
    assert "127.0.0.1:1 unreachable" in output


def test_doctor_shows_each_acceleration_off_with_its_reason() -> None:
    """With AGENTFLUX_ACCELERATE=0 every acceleration is off, and the line says why."""
    rows = _acceleration_rows(_doctor(AGENTFLUX_ACCELERATE="0"))
    assert len(rows) == 6
    assert all(row[0] == "off" for row in rows)
    assert all("AGENTFLUX_ACCELERATE=0" in row[-1] for row in rows)


# aiokafka's own rebalance class, whether or not the join fix is installed in this process.
_AIOKAFKA_REBALANCE = next(
    cls
    for cls in group_coordinator.CoordinatorGroupRebalance.__mro__
    if cls.__module__ == group_coordinator.__name__
)


def test_the_join_fix_was_copied_from_the_installed_aiokafka_join() -> None:
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


def test_a_tested_aiokafka_whose_join_changed_keeps_its_own_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A patch release with another join: nothing replaced, range alone, a warning saying why."""
    monkeypatch.setattr(group_coordinator, "CoordinatorGroupRebalance", _AIOKAFKA_REBALANCE)
    monkeypatch.setattr(_group_join, "AIOKAFKA_JOIN_SOURCE_SHA256", "0" * 64)
    with pytest.warns(RuntimeWarning, match="group join changed"):
        assert _group_join.assignors() == (RangePartitionAssignor,)
    assert group_coordinator.CoordinatorGroupRebalance is _AIOKAFKA_REBALANCE
