"""The latency benchmark's consumers, each in its own process, as consumer groups run in production.

The publishing side (the runtime) and the consuming side (a group's service) are different
processes in production; in one Python thread each side's CPU would delay the other's event
loop and the figure would measure that. Send and receive times are both ``time.perf_counter()``
(CLOCK_MONOTONIC on Linux, one clock for every process on the machine). Each child also reports
the CPU it spent from its assignment to its last event: at a fixed rate, what a consumer costs
the machine (two cores here, shared by the broker, the publisher and the consumer).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from typing import TYPE_CHECKING, Any, Literal, Self

from aiokafka import AIOKafkaConsumer

from agentflux.consumers import GroupRunner
from agentflux.kafka import AgentfluxSettings, connection_kwargs, run_event_loop
from agentflux.schemas import EVENT_MODELS, BaseEvent

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import Connection
    from types import TracebackType

__all__ = ["READY", "ChildProcess", "ConsumerProcess"]

Kind = Literal["platform", "raw"]
READY = "ready"  # what a child sends once it can start
_START_TIMEOUT_S = 120.0


async def _platform(
    settings: AgentfluxSettings, topics: list[str], expected: int, conn: Connection
) -> tuple[dict[str, float], float]:
    received: dict[str, float] = {}

    async def note(event: BaseEvent) -> None:
        received[str(event.event_id)] = time.perf_counter()

    runner = GroupRunner(
        f"lat-{uuid.uuid4().hex[:6]}",
        topics,
        settings=settings,
        handlers=dict.fromkeys(EVENT_MODELS.values(), note),
    )
    async with runner:
        await runner.ready.wait()
        conn.send(READY)
        cpu = time.process_time()
        await runner.wait_handled(expected)
        cpu = time.process_time() - cpu
    return received, cpu


async def _raw(
    settings: AgentfluxSettings, topics: list[str], expected: int, conn: Connection
) -> tuple[dict[str, float], float]:
    received: dict[str, float] = {}
    consumer = AIOKafkaConsumer(
        *topics,
        **connection_kwargs(settings),
        group_id=f"rawlat-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",  # fresh topics: everything is what is about to be sent
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        conn.send(READY)
        cpu = time.process_time()
        while len(received) < expected:
            batches = await consumer.getmany(timeout_ms=100)
            for batch in batches.values():
                for record in batch:
                    event_id = next(v for k, v in record.headers if k == "event_id")
                    received[event_id.decode()] = time.perf_counter()
            if batches:
                await consumer.commit()
        cpu = time.process_time() - cpu
    finally:
        await consumer.stop()
    return received, cpu


def _child(
    kind: Kind, settings: dict[str, Any], topics: list[str], expected: int, conn: Connection
) -> None:
    consume = _platform if kind == "platform" else _raw
    parsed = AgentfluxSettings(**settings)
    conn.send(run_event_loop(consume(parsed, topics, expected, conn), parsed))


class ChildProcess:
    """A benchmark's side in a spawned process of its own, talked to over a pipe.

    Entering starts it and returns once it sends ``ready``; leaving waits for it to finish
    (and kills it if it hangs). ``target(*args, conn)`` runs in the child.
    """

    def __init__(self, name: str, target: Callable[..., None], *args: Any) -> None:
        """Prepare the child; nothing runs before entering."""
        context = multiprocessing.get_context("spawn")  # no forked event loop or sockets
        self._name = name
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(target=target, args=(*args, child_conn), daemon=True)

    async def _receive(self, timeout_s: float) -> Any:
        if not await asyncio.to_thread(self._conn.poll, timeout_s):
            raise TimeoutError(f"the {self._name} process sent nothing within {timeout_s:.0f} s")
        return self._conn.recv()

    async def __aenter__(self) -> Self:
        """Start the child and wait until it reports ready."""
        self._process.start()
        if await self._receive(_START_TIMEOUT_S) != READY:
            raise RuntimeError(f"the {self._name} process did not report ready")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Wait for the child to finish (stop it if it hangs)."""
        await asyncio.to_thread(self._process.join, 30)
        if self._process.is_alive():
            self._process.kill()
            await asyncio.to_thread(self._process.join)


class ConsumerProcess(ChildProcess):
    """A platform runner or a raw ``getmany`` loop over ``topics`` in a child process.

    Entering returns once the child's consumer has its partitions; :meth:`received` waits for
    ``expected`` events and returns when each arrived, by event id, and the child's CPU seconds.
    """

    def __init__(
        self, kind: Kind, settings: AgentfluxSettings, topics: list[str], expected: int
    ) -> None:
        """Prepare the child; nothing runs before entering."""
        super().__init__("consumer", _child, kind, settings.model_dump(), topics, expected)

    async def received(self, timeout_s: float = 120.0) -> tuple[dict[str, float], float]:
        """Receive times (``perf_counter``) by event id once all arrived, and the CPU seconds."""
        times: dict[str, float]
        times, cpu = await self._receive(timeout_s)
        return times, cpu
