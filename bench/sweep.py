"""End-to-end latency across rates, agentflux and raw aiokafka side by side.

``python -m bench.sweep [--rates 250,500,750,1000] [--seconds 12] [--pairs 1]``

Where a fixed rate's p99 lands on this machine as the rate grows, and what each process costs
per event at each rate: at low rates a process's CPU goes to waking up, not to events, so the
machine's wake-up cost (the report's second yardstick) sets how busy the cores are. Each rate
runs as :func:`bench._end_to_end.bench_latency` does (fresh topics, warm-up traffic, platform and raw
alternating), from the highest rate down: the broker's JIT is warmed once, for half a minute
of each side's traffic at the highest rate (a fresh broker; the full benchmark's throughput
parts warm it before its 20 s of each).
Writes
``bench/results/sweep.{json,md}`` (not kept in git). Uses the cluster the environment names or
starts a local one, as ``bench.run`` does; the broker rows need a local one.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from agentflux.kafka import run_event_loop
from bench._cluster import local_or_given_cluster
from bench._end_to_end import bench_latency
from bench._machine import machine_report
from bench._report import machine_lines, write_report

__all__ = ["main"]

_JIT_WARMUP_S = 30.0  # of each side's traffic


async def main(rates: list[float], seconds: float, pairs: int) -> dict[str, Any]:
    """Measure each of ``rates`` for ``seconds`` of events per run; return the report."""
    with local_or_given_cluster() as (base, broker):
        settings = base.model_copy(update={"topic_prefix": f"sweep{uuid.uuid4().hex[:6]}."})
        report: dict[str, Any] = {"machine": await machine_report(), "latency": []}
        for index, rate in enumerate(sorted(rates, reverse=True)):
            figures = await bench_latency(
                settings,
                rate,
                int(rate * seconds),
                pairs=pairs,
                broker=broker,
                jit_warmup_s=_JIT_WARMUP_S if index == 0 else 0,  # the broker warms up once
            )
            report["latency"].insert(0, figures)  # the table reads from the lowest rate up
    return report


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        "# agentflux latency sweep",
        "",
        *machine_lines(report["machine"]),
        (
            "Command: `make bench-sweep`. Publish call -> handler, ms; CPU µs per event of the "
            "publisher / consumer / broker processes; broker GC pauses: the share of the slowest 1 % "
            "of events a pause fell into."
        ),
        "",
        (
            "| rate, events/s | agentflux p50 / p99 / p99.9 | raw p50 / p99 / p99.9 | agentflux CPU | "
            "raw CPU | slowest 1 % in a GC pause, agentflux / raw |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for lat in report["latency"]:
        cells = [f"{int(lat['rate'])}"]
        cells.extend(
            f"{lat[f'{side}_p50_ms']} / {lat[f'{side}_p99_ms']} / {lat[f'{side}_p999_ms']}"
            for side in ("platform", "raw")
        )
        cells.extend(
            f"{lat[f'{side}_publisher_cpu_us']} / {lat[f'{side}_consumer_cpu_us']} / "
            f"{lat.get(f'{side}_broker_cpu_us', '-')}"
            for side in ("platform", "raw")
        )
        cells.append(
            " / ".join(
                f"{lat[f'{side}_broker_gc']['slowest_1pct_in_pause_pct']} %"
                if f"{side}_broker_gc" in lat
                else "-"
                for side in ("platform", "raw")
            )
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cli() -> None:
    """Parse arguments, run, write the report files, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--rates",
        default="250,500,750,1000",
        help="comma-separated events per second, each measured in turn",
    )
    parser.add_argument(
        "--seconds", type=float, default=12.0, help="measured events per run, in seconds"
    )
    parser.add_argument("--pairs", type=int, default=1, help="runs of each side per rate")
    args = parser.parse_args()
    rates = [float(rate) for rate in args.rates.split(",")]
    report = run_event_loop(main(rates, args.seconds, args.pairs))
    write_report("sweep", report, _markdown(report))


if __name__ == "__main__":
    cli()
