"""The benchmark report: the markdown table and the ``bench/results/<name>.{json,md}`` files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench._stores import stores_markdown

__all__ = ["machine_lines", "run_markdown", "write_report"]

_RESULTS = Path(__file__).parent / "results"


def machine_lines(machine: dict[str, Any]) -> list[str]:
    """:func:`machine_report`'s figures as the first lines of a markdown report."""
    after = machine.get("sum_range_1000_us_after")
    wakeup = machine["wakeup_cpu_us"]
    return [
        (
            f"Machine: {machine['cpus']} CPUs, Python {machine['python']}, {machine['platform']}"
            f" (event loop: {machine.get('event_loop', 'asyncio')});"
        ),
        f"`sum(range(1000))` in {machine['sum_range_1000_us']} µs (a yardstick of the machine's "
        "speed)" + (";" if after else "."),
        *(
            [
                "after publish / consume / latency: "
                + " / ".join(f"{us}" for us in after.values())
                + " µs."
            ]
            if after
            else []
        ),
        (
            f"An event-loop wake-up (`asyncio.sleep`) costs {wakeup['busy_loop']} µs of CPU in a loop "
            f"that never idles, {wakeup['after_1ms_idle']} µs after a 1 ms idle (what each process "
            "pays per event at low rates)."
        ),
        *(
            [
                (
                    f"A 1 ms sleep before the runs (the cluster idle) wakes {late['p50']} / "
                    f"{late['p99']} / {late['max']} ms late (p50 / p99 / max): the floor each "
                    "wake-up on an event's path adds to the latency rows."
                )
            ]
            if (late := machine.get("wakeup_late_ms"))
            else []
        ),
    ]


def _accelerations_line(found: dict[str, bool]) -> str:
    off = [name for name, active in found.items() if not active]
    if not off:
        return "Accelerations: all on (`agentflux doctor`)."
    return f"Accelerations off: {', '.join(off)} (`AGENTFLUX_ACCELERATE=0`: aiokafka's public API)."


def run_markdown(report: dict[str, Any]) -> str:
    """``bench.run``'s report as its markdown table, the machine's lines first."""
    pub, con, reb = report["publish"], report["consume"], report["rebuild"]
    fresh = report["publish_fresh"]
    lines = [
        f"# agentflux benchmarks ({report['mode']})",
        "",
        *machine_lines(report["machine"]),
        _accelerations_line(report.get("accelerations", {})),
        "",
        "Command: `make bench` (or `make bench-quick`). Same broker, same run, platform vs raw aiokafka;",
        "throughput figures: one round of each side."
        if report["rounds"] == 1
        else f"throughput figures: medians of {report['rounds']} rounds alternating the two sides.",
        "",
        "| figure | agentflux | raw aiokafka | ratio |",
        "|---|---|---|---|",
        f"| publish, events/s ({pub['events']} events) | {pub['platform_events_per_s']} | {pub['raw_events_per_s']} | {pub['ratio']} |",
        f"| publish CPU, µs/event | {pub['platform_cpu_us_per_event']} | {pub['raw_cpu_us_per_event']} | |",
        f"| publish with `enqueue()` (no future per event), events/s | {pub['enqueue']['platform_events_per_s']} | {pub['enqueue']['raw_events_per_s']} | {pub['enqueue']['ratio']} |",
        f"| publish with `enqueue()`, CPU µs/event | {pub['enqueue']['platform_cpu_us_per_event']} | {pub['enqueue']['raw_cpu_us_per_event']} | |",
        f"| publish floor: the same records into aiokafka's batch builder, events/s / CPU µs/event | | {pub['floor_events_per_s']} / {pub['floor_cpu_us_per_event']} | |",
        f"| publish CPU of events just built (published {fresh['chunk']} at a time as built, {fresh['events']} events), `send()` / `enqueue()` µs/event | {fresh['platform_send_cpu_us_per_event']} / {fresh['platform_enqueue_cpu_us_per_event']} | {fresh['raw_cpu_us_per_event']} | |",
        f"| consume, events/s ({con['events']} events) | {con['platform_events_per_s']} | {con['raw_events_per_s']} | {con['ratio']} |",
        f"| consume CPU, µs/event | {con['platform_cpu_us_per_event']} | {con['raw_cpu_us_per_event']} | |",
    ]
    lines.extend(
        f"| end-to-end latency at {int(lat['rate'])}/s, p50 / p99 / p99.9 ms | {lat['platform_p50_ms']} / {lat['platform_p99_ms']} / "
        f"{lat['platform_p999_ms']} | {lat['raw_p50_ms']} / {lat['raw_p99_ms']} / {lat['raw_p999_ms']} | |\n"
        f"| rate achieved (mean of {lat['runs_per_side']} runs each, percentiles over all), events/s | {lat['platform_achieved_rate']} | {lat['raw_achieved_rate']} | |\n"
        f"| CPU per event at that rate, publisher / consumer µs | {lat['platform_publisher_cpu_us']} / {lat['platform_consumer_cpu_us']} | "
        f"{lat['raw_publisher_cpu_us']} / {lat['raw_consumer_cpu_us']} | |" + _broker_rows(lat)
        for lat in report["latency"]
    )
    lines.append(
        f"| rebuild of the context view into SQLite, events/s ({reb['events']} events) | {reb['events_per_s']} | | |"
    )
    if "stores" in report:
        lines.extend(["", *stores_markdown(report["stores"])])
    return "\n".join(lines) + "\n"


def _broker_rows(lat: dict[str, Any]) -> str:
    """The latency runs' broker rows: CPU, GC pauses, events they fell into (if watched)."""
    if "platform_broker_gc" not in lat:
        return ""
    gc = {side: lat[f"{side}_broker_gc"] for side in ("platform", "raw")}
    return (
        f"\n| broker CPU per event at that rate, µs | {lat['platform_broker_cpu_us']} | "
        f"{lat['raw_broker_cpu_us']} | |\n"
        "| broker GC pauses during the runs: count / total ms / longest ms | "
        + " | ".join(
            f"{gc[side]['pauses']} / {gc[side]['pause_ms']} / {gc[side]['max_pause_ms']}"
            for side in ("platform", "raw")
        )
        + " | |\n| events a broker GC pause fell into: all / the slowest 1 %, % | "
        + " | ".join(
            f"{gc[side]['events_in_pause_pct']} / {gc[side]['slowest_1pct_in_pause_pct']}"
            for side in ("platform", "raw")
        )
        + " | |"
    )


def write_report(name: str, report: dict[str, Any], table: str) -> None:
    """Write ``bench/results/<name>.json`` and ``<name>.md``; print the table."""
    _RESULTS.mkdir(exist_ok=True)
    (_RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (_RESULTS / f"{name}.md").write_text(table)
    print(table)
