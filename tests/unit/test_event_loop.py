"""run_event_loop: the loop AGENTFLUX_EVENT_LOOP names, uvloop by default when installed."""

from __future__ import annotations

import asyncio
import sys

import pytest

from agentflux.kafka import AgentfluxSettings, EventLoopUnavailableError, run_event_loop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


@pytest.mark.parametrize(
    ("choice", "module"), [("auto", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio")]
)
def test_the_configured_loop_runs_the_coroutine(choice: str, module: str) -> None:
    """Settings auto and uvloop run on uvloop (installed with the platform), asyncio on asyncio."""
    settings = AgentfluxSettings(event_loop=choice)  # type: ignore[arg-type]
    assert run_event_loop(_loop_module(), settings) == module


def test_auto_falls_back_to_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """With uvloop not importable, auto runs on asyncio's loop."""
    monkeypatch.setitem(sys.modules, "uvloop", None)  # None in sys.modules: the import fails
    assert run_event_loop(_loop_module(), AgentfluxSettings(event_loop="auto")) == "asyncio"


def test_asking_for_a_missing_uvloop_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """event_loop=uvloop without uvloop raises, naming the setting, and leaves no coroutine unawaited."""
    monkeypatch.setitem(sys.modules, "uvloop", None)
    main = _loop_module()
    with pytest.raises(EventLoopUnavailableError, match="AGENTFLUX_EVENT_LOOP=uvloop"):
        run_event_loop(main, AgentfluxSettings(event_loop="uvloop"))
    assert main.cr_frame is None  # closed, so no "never awaited" warning when it is collected


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """AGENTFLUX_EVENT_LOOP picks the loop when no settings are given."""
    monkeypatch.setenv("AGENTFLUX_EVENT_LOOP", "asyncio")
    assert run_event_loop(_loop_module()) == "asyncio"
