"""What changed in each event schema since its last release, judged at every level.

The review behind ``agentflux schemas diff`` and ``agentflux schemas release``
(:mod:`agentflux._cli_schema_review`): each current schema is compared with its latest released
version (the history folder, or the latest version of its subject at the registry), fields
matched by name, and judged against every released version by the gate's own rules
(``agentflux._schemas``), at each compatibility level and at its topic's.

The field-by-field comparison is written here: fastavro and Apache Avro's Python package parse
and resolve schemas but offer no structural diff, and a generic JSON diff (e.g. deepdiff) would
report list positions, not fields, enum symbols and defaults in a reviewer's words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from agentflux._schemas import (
    _judge,  # the gate's verdict, so that the review never disagrees with `schemas check`
    default_root,
    schema_files,
)
from agentflux.consumers._groups import SHIPPED_GROUPS
from agentflux.schemas import COMPATIBILITY_LEVELS, EventCategory
from agentflux.schemas._compat import describe

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from agentflux._schemas import SchemaFile
    from agentflux.schemas import RegistryClient

__all__ = [
    "LEVELS",
    "Change",
    "ReleasePlan",
    "ReviewReport",
    "SchemaReview",
    "avro_type",
    "avsc_text",
    "reading_groups",
    "release_plan",
    "review_history",
    "review_registry",
    "schema_changes",
    "write_release",
]

#: The levels a review reports on (``NONE`` holds always and says nothing).
LEVELS: tuple[str, ...] = tuple(level for level in COMPATIBILITY_LEVELS if level != "NONE")

_NAMED = {"record", "enum", "fixed"}
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Change:
    """A difference in a reviewer's words: where (field path, "" = the record), what, both sides."""

    path: str
    what: str
    before: str = ""
    after: str = ""


@dataclass(frozen=True, slots=True)
class SchemaReview:
    """One schema that differs from its latest released version (or has none)."""

    item: SchemaFile
    released: int  # how many versions the review judged it against
    changes: tuple[Change, ...]
    holds: dict[str, bool]  # each of LEVELS: does it hold against every released version
    problems: tuple[str, ...]  # what breaks the topic's level ([] when it holds)
    readers: tuple[str, ...]  # the consumer groups that read the type

    @property
    def is_new(self) -> bool:
        """No version of it was released yet: it will be v1."""
        return self.released == 0

    @property
    def version(self) -> int:
        """The version this schema becomes when released."""
        return self.released + 1


@dataclass(frozen=True, slots=True)
class ReviewReport:
    """The review of every schema: those that changed, and how many did not."""

    against: Literal["history", "registry"]
    reviews: tuple[SchemaReview, ...]
    unchanged: int

    @property
    def problems(self) -> list[str]:
        """Every break of a topic's level, across the changed schemas."""
        return [problem for review in self.reviews for problem in review.problems]


def reading_groups(category: EventCategory) -> tuple[str, ...]:
    """The consumer groups that read a category's topic.

    The one place that knows who reads what: the groups that ship with the platform, by the
    categories they declare. Other teams' groups, once declared, are added here.
    """
    return tuple(spec.group_id for spec in SHIPPED_GROUPS.values() if category in spec.categories)


def avro_type(schema: Any) -> str:
    """An Avro type in words: ``null | string``, ``long (timestamp-millis)``, ``array<string>``."""
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return " | ".join(avro_type(branch) for branch in schema)
    match schema["type"]:
        case "record":
            text = f"record {schema['name']}"
        case "enum":
            text = f"enum {schema['name']} {{{', '.join(schema['symbols'])}}}"
        case "fixed":
            text = f"fixed {schema['name']} ({schema['size']} bytes)"
        case "array":
            text = f"array<{avro_type(schema['items'])}>"
        case "map":
            text = f"map<string, {avro_type(schema['values'])}>"
        case kind:
            text = avro_type(kind)
    logical = schema.get("logicalType")
    return f"{text} ({logical})" if logical else text


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _value(mapping: dict[str, Any], key: str) -> str:
    """An attribute's value as JSON, or ``none`` when it is absent."""
    return _json(mapping[key]) if key in mapping else "none"


def _default(field: dict[str, Any]) -> str:
    return f"default {_json(field['default'])}" if "default" in field else "no default"


def _field_words(field: dict[str, Any]) -> str:
    """``int, default 0, doc "..."``: what a reviewer needs to know of a field."""
    words = [avro_type(field["type"]), _default(field)]
    if "doc" in field:
        words.append(f"doc {_json(field['doc'])}")
    return ", ".join(words)


def _short_name(schema: dict[str, Any]) -> str:
    return str(schema["name"]).rpartition(".")[2]


def _attribute_changes(
    path: str, old: dict[str, Any], new: dict[str, Any], skip: set[str], label: str = ""
) -> list[Change]:
    """Every other attribute (doc, aliases, order, namespace, size, ...) that differs."""
    keys = [*new, *(key for key in old if key not in new)]
    return [
        Change(path, f"{label}{key}", _value(old, key), _value(new, key))
        for key in keys
        if key not in skip and old.get(key, _MISSING) != new.get(key, _MISSING)
    ]


def _type_changes(path: str, old: Any, new: Any) -> list[Change]:
    """How a type changed: inside a record, enum, union, array or map, else as a whole."""
    if old == new:
        return []
    found = _inner_changes(path, old, new)
    if found:
        return found
    before, after = avro_type(old), avro_type(new)
    if before == after:  # they differ in something the words leave out
        before, after = _json(old), _json(new)
    return [Change(path, "type", before, after)]


def _inner_changes(path: str, old: Any, new: Any) -> list[Change]:
    """The changes inside two types of the same kind and name; [] when they are not."""
    if isinstance(old, list) and isinstance(new, list):
        return _union_changes(path, old, new)
    if not (isinstance(old, dict) and isinstance(new, dict)) or old["type"] != new["type"]:
        return []
    if old["type"] in _NAMED and _short_name(old) != _short_name(new):
        return []
    compare = _BY_KIND.get(old["type"])  # none for a primitive with attributes (a logical type)
    return compare(path, old, new) if compare else []


def _container_changes(
    path: str, old: dict[str, Any], new: dict[str, Any], *, inner: str, mark: str
) -> list[Change]:
    """An array's items (``path[]``) or a map's values (``path{}``), then its own attributes."""
    return [
        *_type_changes(f"{path}{mark}", old[inner], new[inner]),
        *_attribute_changes(path, old, new, {"type", inner}, f"{old['type']} "),
    ]


def _branch_key(branch: Any) -> str:
    """What identifies a union branch: its name for a named type, else its kind."""
    if isinstance(branch, str):
        return branch.rpartition(".")[2]
    if branch["type"] in _NAMED:
        return _short_name(branch)
    return str(branch["type"])


def _union_changes(path: str, old: list[Any], new: list[Any]) -> list[Change]:
    old_branches = {_branch_key(b): b for b in old}
    new_branches = {_branch_key(b): b for b in new}
    found: list[Change] = []
    added = [avro_type(b) for key, b in new_branches.items() if key not in old_branches]
    removed = [avro_type(b) for key, b in old_branches.items() if key not in new_branches]
    if added:
        found.append(Change(path, "union branches added", "", ", ".join(added)))
    if removed:
        found.append(Change(path, "union branches removed", ", ".join(removed), ""))
    kept = [key for key in new_branches if key in old_branches]
    for key in kept:
        found.extend(_type_changes(path, old_branches[key], new_branches[key]))
    if kept != [key for key in old_branches if key in new_branches]:
        # The first branch is the one a field's default must match.
        found.append(Change(path, "union order", avro_type(old), avro_type(new)))
    return found


def _enum_changes(path: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    found: list[Change] = []
    added = [s for s in new["symbols"] if s not in old["symbols"]]
    removed = [s for s in old["symbols"] if s not in new["symbols"]]
    if added:
        found.append(Change(path, "enum symbols added", "", ", ".join(added)))
    if removed:
        found.append(Change(path, "enum symbols removed", ", ".join(removed), ""))
    kept = [s for s in new["symbols"] if s in old["symbols"]]
    if kept != [s for s in old["symbols"] if s in new["symbols"]]:
        found.append(
            Change(path, "enum symbol order", ", ".join(old["symbols"]), ", ".join(new["symbols"]))
        )
    if old.get("default", _MISSING) != new.get("default", _MISSING):
        found.append(Change(path, "enum default", _value(old, "default"), _value(new, "default")))
    found.extend(
        _attribute_changes(path, old, new, {"type", "name", "symbols", "default"}, "enum ")
    )
    return found


def _record_changes(path: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    return [
        *_attribute_changes(path, old, new, {"type", "name", "fields"}, "record "),
        *_field_changes(path, old["fields"], new["fields"]),
    ]


def _field_changes(
    path: str, old_fields: list[dict[str, Any]], new_fields: list[dict[str, Any]]
) -> list[Change]:
    """Fields matched by name (or by an alias naming a removed field), in any order."""
    prefix = f"{path}." if path else ""
    old = {f["name"]: f for f in old_fields}
    new = {f["name"]: f for f in new_fields}
    source = {name: name for name in new if name in old}
    for field in new_fields:  # a rename: the new field's alias is the old field's name
        renamed_from = [a for a in field.get("aliases", []) if a in old and a not in new]
        if field["name"] not in old and renamed_from:
            source[field["name"]] = renamed_from[0]
    found: list[Change] = []
    for field in new_fields:
        where = prefix + field["name"]
        was = source.get(field["name"])
        if was is None:
            found.append(Change(where, "added", "", _field_words(field)))
            continue
        if was != field["name"]:
            found.append(Change(where, "renamed", was, field["name"]))
        found.extend(_one_field_changes(where, old[was], field))
    found.extend(
        Change(prefix + name, "removed", _field_words(field), "")
        for name, field in old.items()
        if name not in source.values()
    )
    order_before = [name for name in old if name in source.values()]
    order_after = [source[name] for name in new if name in source]
    if order_before != order_after:  # the order fields are written in, not a resolution matter
        found.append(Change(path, "field order", ", ".join(old), ", ".join(new)))
    return found


def _one_field_changes(path: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    found = _type_changes(path, old["type"], new["type"])
    if old.get("default", _MISSING) != new.get("default", _MISSING):
        found.append(Change(path, "default", _default(old), _default(new)))
    if old.get("doc") != new.get("doc"):
        found.append(Change(path, "doc", _value(old, "doc"), _value(new, "doc")))
    found.extend(_attribute_changes(path, old, new, {"name", "type", "default", "doc"}))
    return found


_BY_KIND: dict[str, Callable[[str, dict[str, Any], dict[str, Any]], list[Change]]] = {
    "record": _record_changes,
    "enum": _enum_changes,
    "fixed": partial(_attribute_changes, skip={"type", "name"}, label="fixed "),
    "array": partial(_container_changes, inner="items", mark="[]"),
    "map": partial(_container_changes, inner="values", mark="{}"),
}


def schema_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every difference between two versions of a record schema, fields matched by name."""
    return _type_changes("", old, new)


def _review(item: SchemaFile, released: list[dict[str, Any]]) -> SchemaReview | None:
    """The review of one schema against its released versions; None when it is the latest."""
    if released and item.schema == released[-1]:
        return None
    return SchemaReview(
        item=item,
        released=len(released),
        changes=tuple(schema_changes(released[-1], item.schema)) if released else (),
        holds={level: not _judge(item.schema, released, level) for level in LEVELS}
        if released
        else {},
        problems=tuple(
            describe(item.subject, item.level, _judge(item.schema, released, item.level))
        ),
        readers=reading_groups(EventCategory(item.path.parent.name)),
    )


def _report(
    against: Literal["history", "registry"],
    judged: Iterable[tuple[SchemaFile, list[dict[str, Any]]]],
) -> ReviewReport:
    everything = list(judged)
    reviews = tuple(r for item, released in everything if (r := _review(item, released)))
    return ReviewReport(against, reviews, len(everything) - len(reviews))


def review_history(root: Path | None = None) -> ReviewReport:
    """Every schema under ``root`` against its released history (``history/<name>/vN.avsc``)."""
    return _report("history", ((item, item.history) for item in schema_files(root)))


async def review_registry(registry: RegistryClient, root: Path | None = None) -> ReviewReport:
    """Every schema under ``root`` against the versions registered under its subject."""
    judged = []
    for item in schema_files(root):
        versions = await registry.get_versions(item.subject)
        registered = [
            json.loads((await registry.get_version(item.subject, version))["schema"])
            for version in versions
        ]
        judged.append((item, registered))
    return _report("registry", judged)


def avsc_text(schema: dict[str, Any]) -> str:
    """A schema as the released files hold it: JSON indented by two spaces, a final newline."""
    return json.dumps(schema, indent=2) + "\n"


@dataclass(frozen=True, slots=True)
class ReleasePlan:
    """The history files a release writes, or why it must write none."""

    root: Path
    writes: tuple[tuple[Path, dict[str, Any]], ...]
    problems: tuple[str, ...]


def release_plan(root: Path | None = None) -> ReleasePlan:
    """The next history version of every changed schema, unless any change breaks its level."""
    root = root or default_root()
    report = review_history(root)
    writes = tuple(
        (root / "history" / r.item.full_name / f"v{r.version}.avsc", r.item.schema)
        for r in report.reviews
    )
    taken = [  # a gap in the numbering of a history folder: never overwrite a release
        f"{path.relative_to(root)} exists already (a version is missing before it)"
        for path, _ in writes
        if path.exists()
    ]
    return ReleasePlan(root, writes, (*report.problems, *taken))


def write_release(plan: ReleasePlan) -> None:
    """Write the files of a plan that has no problems."""
    if plan.problems:
        raise ValueError("a plan with problems releases nothing")
    for path, schema in plan.writes:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(avsc_text(schema))
