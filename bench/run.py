"""agentflux against raw aiokafka, side by side on the same broker: ``python -m bench.run [--quick]``.

Writes ``bench/results/latest.json`` and ``bench/results/latest.md`` (figures and ratios);
``--quick`` writes ``quick.json`` and ``quick.md`` beside them instead; ``--stores`` runs only the
store side (the views rebuilt into SQLite and PostgreSQL) into ``stores.{json,md}``; ``--live`` only
the live groups on PostgreSQL (lag at 10k events/s, publish -> visible) into ``live.{json,md}``. With every acceleration
off (``AGENTFLUX_ACCELERATE=0``: aiokafka's public API only) the names end in ``-public-path``.
Uses the cluster named by ``AGENTFLUX_BOOTSTRAP_SERVERS``/``AGENTFLUX_REGISTRY_URL`` or starts a
local one for the run.
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from pathlib import Path
from typing import Any

from agentflux._accelerate import accelerations_wanted
from agentflux._accelerations import accelerations
from agentflux.kafka import run_event_loop
from bench._cluster import local_or_given_cluster, make_topics
from bench._consume import bench_consume, bench_rebuild
from bench._end_to_end import bench_latency
from bench._events import EVENTS_SEED, generated_events
from bench._live import bench_live, live_markdown
from bench._machine import machine_report, yardstick_us
from bench._publish import bench_publish, bench_publish_fresh
from bench._report import run_markdown, write_report
from bench._stores import bench_stores, stores_markdown

__all__ = ["main"]

_QUICK_WARMUP_S = 2.0


async def main(quick: bool) -> dict[str, Any]:  # noqa: FBT001  # the CLI flag, passed straight through
    """Run every benchmark and return the report."""
    count = 10_000 if quick else 100_000
    rounds = 1 if quick else 3
    with local_or_given_cluster() as (base, broker):
        settings = base.model_copy(update={"topic_prefix": f"bench{uuid.uuid4().hex[:6]}."})
        await make_topics(settings, settings.topic_prefix, [f"{settings.topic_prefix}raw-publish"])
        events = generated_events(count, seed=EVENTS_SEED)
        report: dict[str, Any] = {
            "machine": await machine_report(),
            "accelerations": {found.name: found.active for found in accelerations()},
            "mode": "quick" if quick else "full",
            "rounds": rounds,
            "publish": await bench_publish(settings, events, rounds),
            "publish_fresh": await bench_publish_fresh(settings, count // 2, rounds),
        }
        # The machine's speed drifts within a run on a shared VM: taken after each part too.
        yardsticks = report["machine"]["sum_range_1000_us_after"] = {"publish": yardstick_us()}
        report["consume"] = await bench_consume(settings, count, rounds)
        yardsticks["consume"] = yardstick_us()
        report["latency"] = [
            await bench_latency(
                settings, 1000, 2000, _QUICK_WARMUP_S, pairs=1, jit_warmup_s=0, broker=broker
            )
            if quick
            else await bench_latency(settings, 1000, 20_000, broker=broker)
        ]
        if not quick:
            report["latency"].append(await bench_latency(settings, 10_000, 50_000, broker=broker))
        yardsticks["latency"] = yardstick_us()
        with tempfile.TemporaryDirectory() as directory:
            report["rebuild"] = await bench_rebuild(settings, count, Path(directory))
            report["stores"] = await bench_stores(settings, count, Path(directory), rounds=rounds)
            if not quick:  # a minute of 10k events/s and half a minute at 1k: never quick
                report["live"] = await bench_live(settings, Path(directory), broker)
    return report


async def live_only() -> dict[str, Any]:
    """Only the live groups on PostgreSQL (``make bench-live``), with the machine's figures."""
    with (
        local_or_given_cluster() as (settings, broker),
        tempfile.TemporaryDirectory() as directory,
    ):
        return {
            "machine": await machine_report(),
            "live": await bench_live(settings, Path(directory), broker),
        }


async def stores_only(quick: bool) -> dict[str, Any]:  # noqa: FBT001  # the CLI flag, passed straight through
    """Only the store side (``make bench-stores``), with the machine's figures."""
    rounds = 1 if quick else 2
    with local_or_given_cluster() as (settings, _), tempfile.TemporaryDirectory() as directory:
        return {
            "machine": await machine_report(),
            "mode": "quick" if quick else "full",
            "rounds": rounds,
            "stores": await bench_stores(
                settings, 20_000 if quick else 100_000, Path(directory), rounds=rounds
            ),
        }


def cli() -> None:
    """Parse arguments, run, write the report files, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one round of smaller runs: under a minute, a local cluster's start included",
    )
    parser.add_argument(
        "--stores", action="store_true", help="only the store side: the views' rebuild throughput"
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="only the live groups on PostgreSQL: lag at 10k events/s, publish -> visible",
    )
    args = parser.parse_args()
    # A quick run never replaces the full figures, nor a run on the public path the accelerated.
    public = "" if accelerations_wanted() else "-public-path"
    stores = f"stores{'-quick' if args.quick else ''}{public}"
    if args.stores:
        _write_stores(stores, run_event_loop(stores_only(args.quick)))
        return
    if args.live:
        _write_live("live" + public, run_event_loop(live_only()))
        return
    report = run_event_loop(main(args.quick))
    write_report(("quick" if args.quick else "latest") + public, report, run_markdown(report))
    # The store side's own files too: the docs' store table reads them.
    _write_stores(stores, {key: report[key] for key in ("machine", "mode", "rounds", "stores")})
    if "live" in report:
        _write_live("live" + public, {key: report[key] for key in ("machine", "live")})


def _write_live(name: str, report: dict[str, Any]) -> None:
    # The lines go in the JSON too: the docs' Performance page shows them as they are.
    report["live"]["markdown"] = live_markdown(report["live"])
    table = ["# agentflux live groups", "", *report["live"]["markdown"]]
    write_report(name, report, "\n".join(table) + "\n")


def _write_stores(name: str, report: dict[str, Any]) -> None:
    table = ["# agentflux store benchmarks", "", *stores_markdown(report["stores"])]
    write_report(name, report, "\n".join(table) + "\n")


if __name__ == "__main__":
    cli()
