"""Profile the publish or the consume hot path: ``python -m bench.profile publish|consume``.

Runs only the part worth profiling under pyinstrument (statistical; every task on the event
loop is sampled, not just the awaiting one) and prints the
call tree; ``--html PATH`` also writes the interactive report. Generated Avro code shows up as
``<agentflux read>``/``<agentflux write>`` frames. Uses the cluster named by the environment or
starts a local one, as the benchmarks do.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from pyinstrument import Profiler

from agentflux.kafka import run_event_loop
from agentflux.producers import EventPublisher
from bench._cluster import local_or_given_cluster, make_topics
from bench._consume import noop_runner
from bench._events import EVENTS_SEED, generated_events
from bench._measure import settle_heap

if TYPE_CHECKING:
    from agentflux.kafka import AgentfluxSettings
    from agentflux.schemas import BaseEvent


async def _publish(
    settings: AgentfluxSettings, events: list[BaseEvent], profiler: Profiler
) -> None:
    async with EventPublisher(settings) as publisher:
        for event in {type(event): event for event in events}.values():
            await publisher.send(event)  # schemas registered outside the profile
        await publisher.flush()
        settle_heap()
        profiler.start()
        for event in events:
            await publisher.send(event)
        await publisher.flush()
        profiler.stop()


async def _consume(
    settings: AgentfluxSettings, events: list[BaseEvent], profiler: Profiler
) -> None:
    await _publish(settings, events, Profiler(async_mode="disabled"))  # the data, not profiled

    runner = noop_runner(settings, "profile")
    settle_heap()
    async with runner:
        await asyncio.wait_for(runner.ready.wait(), 60)
        profiler.start()
        await runner.wait_handled(len(events))
        profiler.stop()


async def main(what: str, count: int) -> Profiler:
    """Run the chosen path over ``count`` simulated events and return its profile."""
    profiler = Profiler(async_mode="disabled")
    with local_or_given_cluster() as (base, _):
        settings = base.model_copy(update={"topic_prefix": f"profile{uuid.uuid4().hex[:6]}."})
        await make_topics(settings, settings.topic_prefix, [])
        events = generated_events(count, seed=EVENTS_SEED)
        await (_publish if what == "publish" else _consume)(settings, events, profiler)
    return profiler


def cli() -> None:
    """Parse arguments, profile, print the call tree (and write HTML if asked)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["publish", "consume"])
    parser.add_argument("--events", type=int, default=50_000, help="events to run through")
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    args = parser.parse_args()
    profiler = run_event_loop(main(args.what, args.events))  # the loop the platform runs on
    print(profiler.output_text(unicode=True, color=False))
    if args.html:
        args.html.write_text(profiler.output_html())


if __name__ == "__main__":
    cli()
