"""Logging configured once by the command line: JSON lines or console, every logger, quiet views."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from _samples import sample_events

from agentflux._local._ports import free_ports
from agentflux._logging import LogSettings, configure_logging
from agentflux.consumers import AuditView, Position, SqliteStore

if TYPE_CHECKING:
    import pytest


class _Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("AGENTFLUX_")}
    return subprocess.run(
        [sys.executable, "-c", "from agentflux.cli import main; main()", *args],
        env=keep | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_json_format_gives_one_object_per_line_from_every_logger(tmp_path: Path) -> None:
    """AGENTFLUX_LOG_FORMAT=json: every line is a JSON object, aiokafka's and the failure's too."""
    port = free_ports(1)[0]
    done = _cli(
        "lag",
        env={
            "AGENTFLUX_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
            "AGENTFLUX_LOG_FORMAT": "json",
            "AGENTFLUX_LOG_LEVEL": "DEBUG",
        },
        cwd=tmp_path,
    )
    lines = (done.stdout + done.stderr).splitlines()
    events = [json.loads(line) for line in lines]  # raises on any line that is not JSON
    assert all(isinstance(event, dict) for event in events)
    loggers = {event["logger"] for event in events}
    assert any(name.startswith("aiokafka") for name in loggers), loggers
    failure = events[-1]
    assert failure["logger"] == "agentflux.cli"
    assert failure["exit_code"] == done.returncode == 3
    assert failure["event"] == f"no Kafka answers at 127.0.0.1:{port}"
    assert {"timestamp", "level"} <= failure.keys()


def test_format_follows_the_stream_unless_set() -> None:
    """Console lines on a terminal, JSON lines elsewhere; AGENTFLUX_LOG_FORMAT wins over both."""
    terminal, pipe = _Terminal(), io.StringIO()
    assert configure_logging(LogSettings(), stream=terminal) == "console"
    structlog.get_logger("agentflux.test").warning("on a terminal", n=1)
    assert "on a terminal" in terminal.getvalue()
    assert not terminal.getvalue().startswith("{")

    assert configure_logging(LogSettings(), stream=pipe) == "json"
    logging.getLogger("aiokafka.conn").error("stdlib %s", "too")
    assert json.loads(pipe.getvalue())["event"] == "stdlib too"

    assert configure_logging(LogSettings(format="json"), stream=_Terminal()) == "json"
    assert configure_logging(LogSettings(format="console"), stream=io.StringIO()) == "console"
    assert len([h for h in logging.getLogger().handlers if type(h).__name__ == "_OwnHandler"]) == 1


def test_contextvars_reach_every_line() -> None:
    """Group, topic and partition bound for a batch appear on the lines logged while handling it."""
    stream = io.StringIO()
    configure_logging(LogSettings(format="json"), stream=stream)
    with structlog.contextvars.bound_contextvars(group="g", topic="t", partition=3):
        structlog.get_logger("agentflux.runner").warning("handler failed")
        logging.getLogger("aiokafka").warning("from the client")
    for line in stream.getvalue().splitlines():
        assert json.loads(line) | {"group": "g", "topic": "t", "partition": 3} == json.loads(line)


async def test_audit_view_logs_no_line_per_event_at_the_default_level(tmp_path: Path) -> None:
    """Applying events to the audit view logs nothing at INFO: the store is the audit trail."""
    stream = io.StringIO()
    configure_logging(LogSettings(format="json", level="INFO"), stream=stream)
    await _apply_audit(tmp_path / "audit.db")
    assert stream.getvalue() == ""


def test_audit_view_logs_each_event_at_debug(tmp_path: Path) -> None:
    """AGENTFLUX_LOG_LEVEL=DEBUG: one line per audited event (in a process of its own)."""
    code = (
        "import asyncio, pathlib, sys; sys.path.insert(0, sys.argv[1])\n"
        "from agentflux._logging import LogSettings, configure_logging\n"
        "from test_logging import _apply_audit\n"
        "configure_logging(LogSettings(format='json', level='DEBUG'))\n"
        "asyncio.run(_apply_audit(pathlib.Path('audit.db')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    audited = [line for line in lines if line["logger"] == "agentflux.audit"]
    assert [line["event"] for line in audited] == ["audited"] * len(sample_events())


async def _apply_audit(path: Path) -> None:
    """Every sample event applied to a fresh audit view at ``path``."""
    view = AuditView()
    async with SqliteStore(path) as store:
        await store.migrate(view.ddl)
        async with store.transaction() as tx:
            for offset, event in enumerate(sample_events()):
                await view.apply(tx, event, Position("audit.events", 0, offset))


def test_importing_the_library_configures_nothing(tmp_path: Path) -> None:
    """A program that imports agentflux (its CLI module included) keeps its own logging set-up."""
    code = (
        "import logging, structlog, agentflux.consumers, agentflux.producers, agentflux.cli\n"
        "print(len(logging.getLogger().handlers), structlog.is_configured())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert done.stdout.split() == ["0", "False"]


def test_handler_follows_stderr_when_swapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no stream given, each record goes to the sys.stderr of the moment (CliRunner swaps it)."""
    configure_logging(LogSettings(format="json"))
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logging.getLogger("aiokafka").error("one")
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("aiokafka").error("two")
    assert json.loads(first.getvalue())["event"] == "one"
    assert json.loads(second.getvalue())["event"] == "two"
