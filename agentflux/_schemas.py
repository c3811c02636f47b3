"""``agentflux schemas check|register``: the compatibility gate, offline and at the registry.

The schemas of the working tree are ``schemas/avro/<category>/<Record>.avsc``; every released
version of a record is kept as ``schemas/avro/history/<record full name>/v<N>.avsc``.
Registration is the only way schemas reach a shared registry (publishers only look them up):
it passes the offline gate, then the registry's own check at each subject's level, and
registers all schemas or none.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
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
    "Registration",
    "SchemaFile",
    "SubjectState",
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


def schema_files(root: Path | None = None, *, topic_prefix: str = "") -> list[SchemaFile]:
    """Every current event schema under ``root`` with what the gate needs to judge it.

    ``topic_prefix`` is the publishers' (``AGENTFLUX_TOPIC_PREFIX``): their subjects are
    ``<prefix><topic>-<record full name>``.
    """
    root = root or default_root()
    declaration = load_topics()
    found: list[SchemaFile] = []
    for category in EventCategory:
        topic = declaration.for_category(category)
        topic_name = topic_prefix + topic.name
        for path in sorted((root / category.value).glob("*.avsc")):
            schema = json.loads(path.read_text())
            full_name = f"{schema['namespace']}.{schema['name']}"
            found.append(
                SchemaFile(
                    path=path,
                    schema=schema,
                    full_name=full_name,
                    subject=subject_name(topic_name, full_name),
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


def check_schemas(
    root: Path | None = None, *, topic_prefix: str = ""
) -> tuple[list[str], list[str]]:
    """Judge every schema against its history; return (problems, notes). Offline."""
    problems: list[str] = []
    notes: list[str] = []
    for item in schema_files(root, topic_prefix=topic_prefix):
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


@dataclass(frozen=True, slots=True)
class SubjectState:
    """One schema to register, and what the registry had of its subject beforehand."""

    item: SchemaFile
    level: str | None  # the subject's own level; None: it follows the registry's global level
    versions: list[int]
    schema_id: int | None  # this very schema's id, when the subject has it already

    @property
    def level_ok(self) -> bool:
        """The subject is at its topic's level already."""
        return self.level == self.item.level


@dataclass(frozen=True, slots=True)
class Registration:
    """What ``agentflux schemas register`` found and did (with ``dry_run``: would do)."""

    dry_run: bool
    problems: list[str]  # the offline gate's, against the released history
    notes: list[str]
    # At the registry, at the policy's level: each refused subject with why.
    refusals: dict[str, list[str]] = field(default_factory=dict)
    subjects: list[SubjectState] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)  # subject -> id; empty unless registered

    @property
    def refused(self) -> bool:
        """Nothing was (or would be) registered: the gate or the registry said no."""
        return bool(self.problems or self.refusals)

    def reasons(self) -> list[str]:
        """Why nothing was registered: the gate's problems, then the registry's refusals."""
        return [*self.problems, *(line for lines in self.refusals.values() for line in lines)]


async def _subject_state(registry: RegistryClient, item: SchemaFile) -> SubjectState:
    level, versions, schema_id = await asyncio.gather(
        registry.get_compatibility(item.subject),
        registry.get_versions(item.subject),
        registry.lookup(item.subject, item.schema),
    )
    return SubjectState(item, level, versions, schema_id)


async def _refusal(registry: RegistryClient, state: SubjectState, *, ask: bool) -> list[str]:
    """Why this schema may not become the subject's next version; [] when it may.

    The registry is asked (``ask``) when the subject is at its policy's level; its versions are
    also judged by the gate's own rules, which name the field and rule (Apicurio often refuses
    without saying why) and hold the enum rule the registry does not.
    """
    item = state.item
    if state.schema_id is not None or not state.versions:
        return []  # registered already, or the subject's first version: nothing to break
    answers = await asyncio.gather(*(registry.get_version(item.subject, v) for v in state.versions))
    registered = [json.loads(answer["schema"]) for answer in answers]
    judged = describe(item.subject, item.level, _judge(item.schema, registered, item.level))
    reasons = await registry.check_compatibility(item.subject, item.schema) if ask else []
    if reasons:
        return [f"by the registry: {line}" for line in judged] or [
            f"by the registry: {item.subject} under {item.level}: {reason}" for reason in reasons
        ]
    return [f"against the registry's versions: {line}" for line in judged]


async def _refusals(
    registry: RegistryClient, states: list[SubjectState], *, levels_set: bool
) -> dict[str, list[str]]:
    found = await asyncio.gather(
        *(_refusal(registry, state, ask=levels_set or state.level_ok) for state in states)
    )
    return {state.item.subject: lines for state, lines in zip(states, found, strict=True) if lines}


async def _restore_levels(registry: RegistryClient, changed: list[SubjectState]) -> None:
    """Put back the levels the subjects had before this registration was refused."""
    for state in changed:
        if state.level is None:
            await registry.delete_compatibility(state.item.subject)
        else:
            await registry.set_compatibility(state.item.subject, state.level)


async def register_schemas(
    registry: RegistryClient,
    root: Path | None = None,
    *,
    topic_prefix: str = "",
    dry_run: bool = False,
) -> Registration:
    """Gate every schema offline and at the registry, set each subject's level, register all.

    All or nothing: when the gate or the registry refuses one schema, nothing is registered and
    the subjects' levels are left as they were. With ``dry_run`` nothing is changed; a subject
    at another level than its policy's is then judged by the gate's rules against the
    registry's versions only (the registry checks at a subject's current level).
    """
    problems, notes = check_schemas(root, topic_prefix=topic_prefix)
    if problems:
        return Registration(dry_run, problems, notes)
    items = schema_files(root, topic_prefix=topic_prefix)
    states = list(await asyncio.gather(*(_subject_state(registry, item) for item in items)))
    if dry_run:
        refusals = await _refusals(registry, states, levels_set=False)
        return Registration(dry_run, problems, notes, refusals, states)
    changed = [state for state in states if not state.level_ok]
    await asyncio.gather(
        *(registry.set_compatibility(state.item.subject, state.item.level) for state in changed)
    )
    refusals = await _refusals(registry, states, levels_set=True)
    if refusals:
        await _restore_levels(registry, changed)
        return Registration(dry_run, problems, notes, refusals, states)
    ids = await asyncio.gather(
        *(registry.register(state.item.subject, state.item.schema) for state in states)
    )
    return Registration(
        dry_run,
        problems,
        notes,
        subjects=states,
        ids={state.item.subject: schema_id for state, schema_id in zip(states, ids, strict=True)},
    )
