"""The generated pages cover what they are generated from, and hand-written lists stay complete."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from agentflux.cli import app
from agentflux.kafka import AgentfluxSettings
from agentflux.schemas import EVENT_MODELS

if TYPE_CHECKING:
    from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _hook(name: str) -> ModuleType:
    """A docs hook module, loaded by path as mkdocs loads it."""
    spec = importlib.util.spec_from_file_location(
        f"docs_hook_{name}", ROOT / "docs/hooks" / f"{name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_catalogue_has_every_event_type_with_its_topic() -> None:
    """Each event model's type and record appear in the generated catalogue, under its topic's section."""
    page = _hook("event_catalogue").render_catalogue(ROOT / "schemas")
    for event_type, model in EVENT_MODELS.items():
        assert f"- event type: `{event_type}`" in page
        assert f"### {model.__name__.removesuffix('Event')}\n" in page
    declared = yaml.safe_load((ROOT / "schemas/topics.yaml").read_text())["topics"]
    for topic in declared:
        assert f"## {topic['category']}: `{topic['name']}`" in page


def test_the_catalogue_writes_avro_types_readably() -> None:
    """Unions, logical types, enums and maps read as a person writes them, not as JSON."""
    avro_type = _hook("event_catalogue").avro_type
    assert avro_type(["null", "string"]) == "null | string"
    assert (
        avro_type({"type": "long", "logicalType": "timestamp-millis"}) == "long (timestamp-millis)"
    )
    assert avro_type({"type": "enum", "name": "D", "symbols": ["A", "B"]}) == "enum D {A, B}"
    assert avro_type({"type": "map", "values": "string"}) == "map<string, string>"


def test_the_cli_reference_has_every_command() -> None:
    """Every top-level command and command group of the typer app has its section."""
    page = _hook("cli_reference").render_cli()
    names = [c.name or c.callback.__name__ for c in app.registered_commands if c.callback]
    names += [g.name for g in app.registered_groups if isinstance(g.name, str)]
    assert len(names) > 10
    for name in names:
        assert f"## `agentflux {name}`" in page, name


def test_the_bench_table_shows_the_latest_ratios() -> None:
    """The current table carries latest.json's publish and consume ratios and each latency rate."""
    results = json.loads((ROOT / "bench/results/latest.json").read_text())
    table = _hook("bench_table").render_table(results)
    assert f"**{results['publish']['ratio']:.2f}&times;**" in table
    assert f"**{results['consume']['ratio']:.2f}&times;**" in table
    assert table.count("end-to-end latency at") == len(results["latency"])


def test_the_bench_table_refuses_results_it_cannot_read() -> None:
    """A results file of another format fails the docs build with a message, not a KeyError."""
    bench_table = _hook("bench_table")
    with pytest.raises(bench_table.BenchResultsError, match="publish"):
        bench_table.render_table({"consume": {}})


def test_the_store_table_shows_every_view_into_both_stores() -> None:
    """The store table has a row per view with each round's SQLite and PostgreSQL rate, and refuses another format."""
    results = json.loads((ROOT / "bench/results/stores.json").read_text())
    bench_table = _hook("bench_table")
    table = bench_table.render_stores_table(results)
    for view, runs in results["stores"]["views"].items():
        row = next(line for line in table.splitlines() if line.startswith(f"| {view} |"))
        rates = [f"{run['events_per_s']:,}".replace(",", " ") for run in runs["postgresql"]]
        assert " / ".join(rates) in row
    with pytest.raises(bench_table.BenchResultsError, match="stores"):
        bench_table.render_stores_table({"machine": {}})


def test_the_store_table_gives_the_servers_costliest_statements_when_the_run_has_them() -> None:
    """A run with pg_stat_statements figures lists each view's statements; one without, none."""
    results = json.loads((ROOT / "bench/results/stores.json").read_text())
    bench_table = _hook("bench_table")

    def with_statements(view_statements: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        views = {
            view: {
                **runs,
                "postgresql": [
                    *runs["postgresql"][:-1],
                    {
                        **{k: v for k, v in runs["postgresql"][-1].items() if k != "statements"},
                        **(
                            {"statements": view_statements[view]} if view in view_statements else {}
                        ),
                    },
                ],
            }
            for view, runs in results["stores"]["views"].items()
        }
        return {**results, "stores": {**results["stores"], "views": views}}

    assert "execution time per event" not in bench_table.render_stores_table(with_statements({}))
    copy = {"statement": 'COPY "audit_chain"', "calls": 10, "server_us_per_event": 12.58}
    lines = bench_table.render_stores_table(with_statements({"audit": [copy]})).splitlines()
    assert '- **audit**: `COPY "audit_chain"…` 12.58 µs' in lines
    assert not any(line.startswith("- **context**") for line in lines)


def test_the_live_table_shows_each_group_and_the_latency() -> None:
    """The live table has a row per group and the publish -> visible p99, and refuses another format."""
    results = json.loads((ROOT / "bench/results/live.json").read_text())
    bench_table = _hook("bench_table")
    table = bench_table.render_live_table(results)
    for view in results["live"]["keep_up"]["groups"]:
        assert any(line.startswith(f"| {view} |") for line in table.splitlines()), view
    assert f"p99 {results['live']['visible']['p99_ms']} ms" in table
    with pytest.raises(bench_table.BenchResultsError, match="live"):
        bench_table.render_live_table({"machine": {}})


def test_every_setting_is_documented() -> None:
    """Each AGENTFLUX_* setting of the settings model has its row in Running on a real cluster."""
    page = (ROOT / "docs/production.md").read_text()
    for name in AgentfluxSettings.model_fields:
        assert f"`AGENTFLUX_{name.upper()}`" in page, name
