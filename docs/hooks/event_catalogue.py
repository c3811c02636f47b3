"""mkdocs hook: the Event catalogue page (events.md), generated from the contract at build time.

The contract is data (``schemas/avro/**/*.avsc`` and ``schemas/topics.yaml``), so this hook
reads the files themselves rather than the Python package: what the page says is exactly what
other teams and other languages read. Nothing here is checked in as a page.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from mkdocs.structure.files import File

from agentflux._schema_review import avro_type  # the words `agentflux schemas diff` uses too

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

PAGE = "events.md"
_VERSION_FILE = re.compile(r"^v(\d+)\.avsc$")
_DAY_MS = 86_400_000


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _default(field: dict[str, Any]) -> str:
    if "default" not in field:
        return "required"
    return f"`{json.dumps(field['default'])}`"


def _retention(milliseconds: int) -> str:
    if milliseconds < 0:
        return "forever"
    return f"{milliseconds // _DAY_MS} days"


def _history(avro_root: Path, full_name: str) -> list[dict[str, Any]]:
    folder = avro_root / "history" / full_name
    if not folder.is_dir():
        return []
    numbered = sorted(
        (int(match[1]), path)
        for path in folder.iterdir()
        if (match := _VERSION_FILE.match(path.name))
    )
    return [json.loads(path.read_text()) for _, path in numbered]


def _version(schema: dict[str, Any], history: list[dict[str, Any]]) -> str:
    if not history:
        return "v1, not released yet"
    if schema == history[-1]:
        return f"v{len(history)} (released: `history/{_full_name(schema)}/v{len(history)}.avsc`)"
    return f"v{len(history) + 1}, not released yet (v{len(history)} is the latest released)"


def _full_name(schema: dict[str, Any]) -> str:
    return f"{schema['namespace']}.{schema['name']}"


def _fields_table(fields: list[dict[str, Any]]) -> list[str]:
    lines = ["| field | type | default | doc |", "|---|---|---|---|"]
    lines.extend(
        f"| `{f['name']}` | `{avro_type(f['type'])}` | {_default(f)} | {_cell(f.get('doc', ''))} |"
        for f in fields
    )
    return lines


def render_catalogue(contract: Path) -> str:
    """The whole Event catalogue page for the contract folder ``contract`` (``schemas/``)."""
    avro_root = contract / "avro"
    declaration = yaml.safe_load((contract / "topics.yaml").read_text())
    envelope = json.loads((avro_root / "envelope.avsc").read_text())
    envelope_names = {field["name"] for field in envelope["fields"]}
    topics = {topic["category"]: topic for topic in declaration["topics"]}
    out = [
        "# Event catalogue",
        "",
        (
            "Generated from `schemas/avro/**/*.avsc` and `schemas/topics.yaml` each time the "
            "site is built; edit those files, not this page."
        ),
        "",
        (
            "Every event type is an Avro record on its category's topic, keyed by session id. "
            "Its registry subject is `<topic>-<record full name>` (the topic-record name "
            "strategy). Each record starts with the envelope fields, then its own."
        ),
        "",
        "## The envelope",
        "",
        _cell(envelope.get("doc", "")),
        "",
        *_fields_table(envelope["fields"]),
        "",
    ]
    for category, topic in topics.items():
        out += [
            f"## {category}: `{topic['name']}`",
            "",
            topic.get("description", ""),
            "",
            (
                f"Partitions {topic['partitions']}, replication {topic['replication_factor']}, "
                f"retention {_retention(int(topic['retention_ms']))}, "
                f"compatibility `{topic['compatibility']}`, owner `{topic.get('owner', '')}`."
            ),
            "",
        ]
        for path in sorted((avro_root / category).glob("*.avsc")):
            schema = json.loads(path.read_text())
            fields = schema["fields"]
            event_type = next(f.get("default", "") for f in fields if f["name"] == "event_type")
            own = [f for f in fields if f["name"] not in envelope_names]
            out += [
                f"### {schema['name']}",
                "",
                schema.get("doc", ""),
                "",
                f"- event type: `{event_type}`",
                f"- record: `{_full_name(schema)}` (`schemas/avro/{category}/{path.name}`)",
                f"- subject: `{topic['name']}-{_full_name(schema)}`",
                f"- version: {_version(schema, _history(avro_root, _full_name(schema)))}",
                "",
                *(_fields_table(own) if own else ["No fields beyond the envelope."]),
                "",
            ]
    return "\n".join(out)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated page to the site."""
    contract = Path(config.config_file_path).parent / "schemas"
    files.append(File.generated(config, PAGE, content=render_catalogue(contract)))
    return files
