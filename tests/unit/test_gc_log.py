"""The local brokers' GC logs: stop-the-world pauses read back with their wall-clock times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from agentflux._local import read_gc_pauses
from agentflux._local._gclog import gc_log_options

if TYPE_CHECKING:
    from pathlib import Path

_CURRENT = """\
[2026-12-02T00:07:51.000+0000][102.1s] Using G1
[2026-12-02T00:07:52.048+0000][103.720s] GC(65) Pause Young (Concurrent Start) (G1 Evacuation Pause) 341M->218M(483M) 16.112ms
[2026-12-02T00:07:52.050+0000][103.722s] GC(66) Concurrent Mark Cycle
[2026-12-02T00:07:52.381+0000][104.053s] GC(66) Pause Remark 225M->225M(483M) 23.168ms
[2026-12-02T00:07:52.381+0000][104.053s] Safepoint "G1PauseRemark", Time since last: 304463897 ns, Total: 23698385 ns
[2026-12-02T00:07:52.520+0000][104.192s] GC(66) Pause Cleanup 229M->229M(483M) 0.119ms
[2026-12-02T00:07:52.990+0000][104.662s] GC(66) Concurrent Mark Cycle 474.155ms
[2026-12-02T00:07:53.100+0000][104.800s] GC(67) Pause Young (Normal) (G1 Evacuation Pause)
[104.9s][info][gc] GC(67) Pause Young (Normal) (G1 Evacuation Pause) 277M->182M(315M) 9.4ms
"""
_ROTATED = """\
[2026-12-02T00:06:00.500+0000][41.2s] GC(12) Pause Full (System.gc()) 300M->120M(483M) 191.227ms
"""


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_pauses_are_read_with_their_end_times_and_durations(tmp_path: Path) -> None:
    """Each pause line gives its kind, its length and the wall-clock time it ended."""
    log = tmp_path / "gc.log"
    log.write_text(_CURRENT)
    pauses = read_gc_pauses(log)
    assert [(p.kind, p.seconds) for p in pauses] == [
        ("Young", pytest.approx(0.016112)),
        ("Remark", pytest.approx(0.023168)),
        ("Cleanup", pytest.approx(0.000119)),
    ]
    assert pauses[0].ended == pytest.approx(_at("2026-12-02T00:07:52.048"))
    assert pauses[0].started == pytest.approx(_at("2026-12-02T00:07:52.048") - 0.016112)


def test_concurrent_phases_safepoints_and_pause_starts_are_not_pauses(tmp_path: Path) -> None:
    """Concurrent phases, safepoints, pause starts and lines without a wall-clock time are not."""
    log = tmp_path / "gc.log"
    log.write_text(_CURRENT)
    assert {p.kind for p in read_gc_pauses(log)} == {"Young", "Remark", "Cleanup"}
    assert len(read_gc_pauses(log)) == 3  # the three complete pause lines


def test_rotated_files_are_read_too_oldest_first(tmp_path: Path) -> None:
    """Pauses in the JVM's rotated files (gc.log.0, ...) come back, all in time order."""
    (tmp_path / "gc.log").write_text(_CURRENT)
    (tmp_path / "gc.log.0").write_text(_ROTATED)
    (tmp_path / "other.log").write_text(_ROTATED)  # another file in the directory
    pauses = read_gc_pauses(tmp_path / "gc.log")
    assert [p.kind for p in pauses] == ["Full", "Young", "Remark", "Cleanup"]
    assert pauses == sorted(pauses, key=lambda p: p.ended)


def test_a_missing_log_has_no_pauses(tmp_path: Path) -> None:
    """A node that has not started yet (no log) reads as no pauses, not an error."""
    assert read_gc_pauses(tmp_path / "gc.log") == []


def test_the_jvm_option_logs_wall_clock_times_to_the_file(tmp_path: Path) -> None:
    """The option names the file and the decorators the reader needs, with rotation."""
    (option,) = gc_log_options(tmp_path / "gc.log")
    assert option.startswith(f"-Xlog:gc:file={tmp_path / 'gc.log'}:time,")
    assert "filecount=" in option
