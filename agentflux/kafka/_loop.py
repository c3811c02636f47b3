"""Running a process of the platform on the event loop its settings name (uvloop by default)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

from agentflux.kafka._settings import AgentfluxSettings

if TYPE_CHECKING:
    from collections.abc import Coroutine

__all__ = ["EventLoopUnavailableError", "run_event_loop"]

_T = TypeVar("_T")


class EventLoopUnavailableError(RuntimeError):
    """The settings ask for an event loop that is not installed."""


def run_event_loop(main: Coroutine[Any, Any, _T], settings: AgentfluxSettings | None = None) -> _T:
    """Run ``main`` to completion, as ``run`` does, on the configured event loop.

    ``AGENTFLUX_EVENT_LOOP``: ``auto`` (the default) runs on uvloop when it is installed and on
    asyncio's own loop otherwise; ``uvloop`` insists on it (``EventLoopUnavailableError``
    if it is missing); ``asyncio`` never uses it. Each wake-up of uvloop's loop costs less CPU
    than asyncio's, and at a fixed rate a publisher or consumer wakes at every event.
    """
    choice = (settings or AgentfluxSettings()).event_loop
    if choice != "asyncio":
        try:
            import uvloop  # noqa: PLC0415  # optional: absent on Windows, or not installed
        except ImportError as exc:
            if choice == "uvloop":
                main.close()  # never awaited: close it rather than leave a warning behind
                raise EventLoopUnavailableError(
                    "AGENTFLUX_EVENT_LOOP=uvloop but uvloop is not installed "
                    "(pip install uvloop, or set it to auto or asyncio)"
                ) from exc
        else:
            return uvloop.run(main)
    return asyncio.run(main)
