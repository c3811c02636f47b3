"""``agentflux schemas check|register``: the compatibility gate, offline and at the registry.

The schemas of the working tree are ``schemas/avro/<category>/<Record>.avsc``; every released
version of a record is kept as ``schemas/avro/history/<record full name>/v<N>.avsc``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from agentflux.schemas import EventCategory, RegistryClient, load_topics, subject_name
from agentflux.schemas._compat import (
    Incompatibility,
    check_levels,
    describe,
    enum_symbols_without_default,
)

__all__ = [
    "SchemaFile",
    "check_schemas",
    "default_root",
    "register_schemas",
    "schema_files",
]

_VERSION = re.compile(r"^v(\d+)\.avsc$")


@dataclass(frozen=True, slots=True)
class SchemaFile:
    """One current schema with its subject, compatibility level and released versions."""

    path: Path
    schema: dict[str, Any]
    full_name: str
    subject: str
    level: str
    history: list[dict[str, Any]]


def default_root() -> Path:
    """The ``schemas/avro`` folder of the installed (in development: the working) tree."""
    return Path(str(resources.files("agentflux.contract").joinpath("avro")))


def _history(root: Path, full_name: str) -> list[dict[str, Any]]:
    folder = root / "history" / full_name
    if not folder.is_dir():
        return []
    versions = sorted(
        (int(match[1]), path) for path in folder.iterdir() if (match := _VERSION.match(path.name))
    )
    return [json.loads(path.read_text()) for _, path in versions]


def schema_files(root: Path | None = None) -> list[SchemaFile]:
    """Every current event schema under ``root`` with what the gate needs to judge it."""
    root = root or default_root()
    declaration = load_topics()
    found: list[SchemaFile] = []
    for category in EventCategory:
        topic = declaration.for_category(category)
        for path in sorted((root / category.value).glob("*.avsc")):
            schema = json.loads(path.read_text())
            full_name = f"{schema['namespace']}.{schema['name']}"
            found.append(
                SchemaFile(
                    path=path,
                    schema=schema,
                    full_name=full_name,
                    subject=subject_name(topic.name, full_name),
                    level=topic.compatibility,
                    history=_history(root, full_name),
                ),
            )
    return found


def _judge(
    schema: dict[str, Any], earlier: list[dict[str, Any]], level: str
) -> list[tuple[int, str, Incompatibility]]:
    """The level's resolution rules and the enum policy, against ``earlier`` (oldest first)."""
    return [
        *check_levels(schema, earlier, level),
        *enum_symbols_without_default(schema, earlier, level),
    ]


def check_schemas(root: Path | None = None) -> tuple[list[str], list[str]]:
    """Judge every schema against its history; return (problems, notes). Offline."""
    problems: list[str] = []
    notes: list[str] = []
    for item in schema_files(root):
        problems.extend(
            describe(item.subject, item.level, _judge(item.schema, item.history, item.level))
        )
        if not item.history:
            notes.append(f"{item.subject}: no released version yet; this will be v1")
        elif item.schema != item.history[-1]:
            notes.append(
                f"{item.subject}: changed since v{len(item.history)}; release it as "
                f"history/{item.full_name}/v{len(item.history) + 1}.avsc",
            )
    return problems, notes


async def _explain(registry: RegistryClient, item: SchemaFile, reasons: list[str]) -> list[str]:
    """Name the field and rule: registries (Apicurio) often refuse without saying why."""
    registered = [
        json.loads((await registry.get_version(item.subject, version))["schema"])
        for version in await registry.get_versions(item.subject)
    ]
    found = describe(item.subject, item.level, _judge(item.schema, registered, item.level))
    prefix = f"the registry refuses {item.subject} under {item.level}"
    return [f"{prefix}: {line}" for line in found] or [f"{prefix}: {r}" for r in reasons]


async def register_schemas(
    registry: RegistryClient, root: Path | None = None
) -> tuple[list[str], dict[str, int]]:
    """Set each subject's level, check every schema, then register all or none.

    Returns (refusals, ids): when the registry refuses any schema, nothing is registered.
    """
    items = schema_files(root)
    for item in items:
        await registry.set_compatibility(item.subject, item.level)
    refusals: list[str] = []
    for item in items:
        reasons = await registry.check_compatibility(item.subject, item.schema)
        if reasons:
            refusals.extend(await _explain(registry, item, reasons))
    if refusals:
        return refusals, {}
    return [], {item.subject: await registry.register(item.subject, item.schema) for item in items}
