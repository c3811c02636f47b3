"""A shipped group's service that hangs mid-batch after N events, for the kill tests.

Run as a script: ``python tests/_hanging_consumer.py GROUP STORE_URL GROUP_ID HANG_AFTER MARKER
[--batch]``. It applies the group's real view until ``HANG_AFTER`` events are applied, then,
inside the open store transaction, writes ``MARKER`` and waits forever, so the test's SIGKILL
lands mid-batch at a known point instead of racing a fast consumer. ``--batch``: the view applies
whole fetches (its ``apply_batch``), and the hang comes after the first part of a fetch.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from agentflux.consumers import GroupRunner, open_store
from agentflux.consumers._groups import SHIPPED_GROUPS
from agentflux.consumers._ports import apply_events
from agentflux.kafka import AgentfluxSettings

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from agentflux.consumers._ports import Position, Transaction, View
    from agentflux.schemas import BaseEvent


class HangingView:
    """Wraps a view; after ``hang_after`` applies it blocks forever inside the transaction."""

    def __init__(self, inner: View, hang_after: int, marker: Path) -> None:
        self._inner = inner
        self._left = hang_after
        self._marker = marker

    @property
    def name(self) -> str:
        """The wrapped view's name."""
        return self._inner.name

    @property
    def ddl(self) -> Sequence[str]:
        """The wrapped view's tables."""
        return self._inner.ddl

    async def apply(self, tx: Transaction, event: BaseEvent, position: Position) -> None:
        """Apply, or hang once the budget is spent."""
        if self._left <= 0:
            self._marker.write_text("hung\n")
            await asyncio.Event().wait()
        self._left -= 1
        await self._inner.apply(tx, event, position)


class HangingBatchView(HangingView):
    """As ``HangingView``, a fetch at a time: the part within the budget applied, then the hang."""

    async def apply_batch(
        self, tx: Transaction, events: Sequence[tuple[BaseEvent, Position]]
    ) -> None:
        """Apply the events within the budget as one batch; hang if any are left."""
        within = list(events[: max(self._left, 0)])
        self._left -= len(within)
        await apply_events(self._inner, tx, within)
        if len(within) < len(events):
            self._marker.write_text("hung\n")
            await asyncio.Event().wait()


async def kill_when_hung(
    arguments: list[str], marker: Path, env: dict[str, str], timeout_s: float
) -> None:
    """Run this script with ``arguments`` (``marker`` among them) and SIGKILL it once it hangs."""
    command = [sys.executable, __file__, *arguments]
    hanging = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        async with asyncio.timeout(timeout_s):
            while not marker.exists():
                assert hanging.poll() is None, "the hanging consumer exited early"  # a test helper
                await asyncio.sleep(0.05)  # poll for the marker the child writes
        hanging.send_signal(signal.SIGKILL)
        hanging.wait()
    finally:
        hanging.kill()


async def serve_until(
    command: list[str],
    env: dict[str, str],
    log: Path,
    done: Callable[[], Awaitable[bool]],
    timeout_s: float,
) -> None:
    """Run a service (output to ``log``) until ``done()``, then SIGTERM it: it must exit 0."""
    with log.open("wb") as sink:
        service = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        async with asyncio.timeout(timeout_s):
            while not await done():
                await asyncio.sleep(0.1)  # poll what the service recorded
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=60) == 0  # a clean shutdown on SIGTERM
    finally:
        service.kill()


async def _main(  # noqa: PLR0913  # the script's arguments, passed through
    group: str, store_url: str, group_id: str, hang_after: int, marker: Path, *, batch: bool
) -> None:
    spec = SHIPPED_GROUPS[group]
    hanging = HangingBatchView if batch else HangingView
    settings = AgentfluxSettings()
    async with open_store(store_url) as store:
        runner = GroupRunner(
            group_id,
            spec.topics(settings),
            settings=settings,
            views=[hanging(spec.view(), hang_after, marker)],
            store=store,
        )
        async with runner:
            await asyncio.Event().wait()


if __name__ == "__main__":
    name, url, gid, after, marker_path = sys.argv[1:6]
    asyncio.run(
        _main(name, url, gid, int(after), Path(marker_path), batch="--batch" in sys.argv[6:])
    )
