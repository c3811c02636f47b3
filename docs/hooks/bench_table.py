"""mkdocs hook: the Performance page's current table, generated from bench/results/latest.json.

``make bench`` writes that file; the page carries the marker below where the table goes, so
the figures on the site are always those of the last full run kept in git.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

RESULTS = Path("bench") / "results" / "latest.json"
PUBLIC_PATH_RESULTS = Path("bench") / "results" / "latest-public-path.json"
STORES_RESULTS = Path("bench") / "results" / "stores.json"
LIVE_RESULTS = Path("bench") / "results" / "live.json"


def _marker(results: Path) -> str:
    return f"<!-- generated: {results.as_posix()} -->"


class BenchResultsError(ValueError):
    """The results file lacks the figures the table is made of."""


def _number(value: Any) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:g}"
    return f"{int(value):,}".replace(",", " ")


def _row(figure: str, platform: Any, raw: Any, ratio: Any = None) -> str:
    cells = [_number(v) if isinstance(v, int | float) else (v or "") for v in (platform, raw)]
    ratio_cell = f"**{ratio:.2f}&times;**" if isinstance(ratio, int | float) else ""
    return f"| {figure} | {cells[0]} | {cells[1]} | {ratio_cell} |"


def _machine(results: dict[str, Any]) -> str:
    machine = results.get("machine", {})
    return (
        f"Machine: {machine.get('cpus', '?')} CPUs, Python {machine.get('python', '?')}, "
        f"event loop {machine.get('event_loop', 'asyncio')}; yardstick `sum(range(1000))` "
        f"{machine.get('sum_range_1000_us', '?')} µs; mode `{results.get('mode', '?')}`, "
        f"{results.get('rounds', '?')} rounds."
    )


def _latency_rows(results: dict[str, Any]) -> list[str]:
    rows = []
    for run in results.get("latency", []):
        rate = _number(run["rate"])
        rows.append(
            _row(
                f"end-to-end latency at {rate} events/s, p50 / p99 / p99.9 ms",
                f"{run['platform_p50_ms']} / {run['platform_p99_ms']} / {run['platform_p999_ms']}",
                f"{run['raw_p50_ms']} / {run['raw_p99_ms']} / {run['raw_p999_ms']}",
            )
        )
    return rows


def render_table(results: dict[str, Any]) -> str:
    """The current-figures table (Markdown) of one benchmark results document."""
    try:
        publish, consume = results["publish"], results["consume"]
        rows = [
            _row(
                f"publish with `send()`, events/s ({_number(publish['events'])} events)",
                publish["platform_events_per_s"],
                publish["raw_events_per_s"],
                publish["ratio"],
            ),
            _row(
                "publish CPU, µs/event",
                publish["platform_cpu_us_per_event"],
                publish["raw_cpu_us_per_event"],
            ),
        ]
        if "enqueue" in publish:
            enqueue = publish["enqueue"]
            rows += [
                _row(
                    "publish with `enqueue()`, events/s",
                    enqueue["platform_events_per_s"],
                    enqueue["raw_events_per_s"],
                    enqueue["ratio"],
                ),
                _row(
                    "publish with `enqueue()`, CPU µs/event",
                    enqueue["platform_cpu_us_per_event"],
                    enqueue["raw_cpu_us_per_event"],
                ),
            ]
        rows += [
            _row(
                f"consume, events/s ({_number(consume['events'])} events)",
                consume["platform_events_per_s"],
                consume["raw_events_per_s"],
                consume["ratio"],
            ),
            _row(
                "consume CPU, µs/event",
                consume["platform_cpu_us_per_event"],
                consume["raw_cpu_us_per_event"],
            ),
            *_latency_rows(results),
        ]
        if "rebuild" in results:
            rebuild = results["rebuild"]
            rows.append(
                _row(
                    f"rebuild of the context view into SQLite, events/s "
                    f"({_number(rebuild['events'])} events)",
                    rebuild["events_per_s"],
                    None,
                )
            )
    except KeyError as missing:
        raise BenchResultsError(f"{RESULTS} has no {missing}: did its format change?") from None
    header = ["| figure | agentflux | raw aiokafka | ratio |", "|---|---|---|---|"]
    return "\n".join([_machine(results), "", *header, *rows])


def _spaced(value: int) -> str:
    return f"{value:,}".replace(",", " ")


def render_stores_table(results: dict[str, Any]) -> str:
    """The store side's table (Markdown): each view's rebuild rate into SQLite and PostgreSQL."""
    try:
        stores = results["stores"]
        server = stores["postgres"]
        rows = [
            f"| {view} | {_spaced(runs['events'])} | "
            + " | ".join(
                " / ".join(_spaced(run["events_per_s"]) for run in runs[kind])
                for kind in ("sqlite", "postgresql")
            )
            + f" | {sum(run['deadlocks'] for run in runs['postgresql'])} / "
            f"{sum(run['fallbacks'] or 0 for run in runs['postgresql'])} |"
            for view, runs in stores["views"].items()
        ]
        caption = (
            f"PostgreSQL {server['server_version'].split()[0]} (fsync {server['fsync']}, "
            f"synchronous_commit {server['synchronous_commit']}); events/s of each of "
            f"{stores['rounds']} rounds. Read + decode alone, no store: "
            f"{_spaced(stores['decode_events_per_s'])} events/s."
        )
    except KeyError as missing:
        raise BenchResultsError(
            f"{STORES_RESULTS} has no {missing}: did its format change?"
        ) from None
    header = [
        "| view | events | SQLite, events/s | PostgreSQL, events/s | deadlocks / batches retried |",
        "|---|---|---|---|---|",
    ]
    return "\n".join([_machine(results), caption, "", *header, *rows, *_server_time(stores)])


def _server_time(stores: dict[str, Any]) -> list[str]:
    """Each view's costliest statements on the server in its last build, when the run has them."""
    lines = [
        f"- **{view}**: "
        + "; ".join(
            f"`{found['statement']}…` {found['server_us_per_event']:g} µs" for found in statements
        )
        for view, runs in stores["views"].items()
        if (statements := runs["postgresql"][-1].get("statements"))
    ]
    if not lines:
        return []
    return ["", "PostgreSQL's execution time per event, costliest statements first:", "", *lines]


def render_live_table(results: dict[str, Any]) -> str:
    """The live groups' figures (Markdown), as the bench wrote them beside its numbers."""
    try:
        lines: list[str] = results["live"]["markdown"]
    except KeyError as missing:
        raise BenchResultsError(
            f"{LIVE_RESULTS} has no {missing}: did its format change?"
        ) from None
    return "\n".join([_machine(results), *lines])


# Where each table goes on the page, what it is made of, and the command that writes it.
MARKERS = {
    _marker(RESULTS): (RESULTS, render_table, "make bench"),
    _marker(PUBLIC_PATH_RESULTS): (PUBLIC_PATH_RESULTS, render_table, "make bench-public-path"),
    _marker(STORES_RESULTS): (STORES_RESULTS, render_stores_table, "make bench-stores"),
    _marker(LIVE_RESULTS): (LIVE_RESULTS, render_live_table, "make bench-live"),
}


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Put the current tables where the Performance page asks for them."""
    root = Path(config.config_file_path).parent
    for marker, (results, render, command) in MARKERS.items():
        if marker in markdown:
            path = root / results
            table = (
                render(json.loads(path.read_text()))
                if path.exists()
                else f"No `{results.as_posix()}` yet: `{command}` writes it."
            )
            markdown = markdown.replace(marker, table)
    return markdown
