"""Offline schema compatibility by the Avro specification's schema-resolution rules.

``can_read(reader, writer)`` lists every reason data written with ``writer`` cannot be read with
``reader``. Compatibility levels are built from it the way the Confluent registry defines them:
BACKWARD = the new schema reads the latest; FORWARD = the latest reads the new; FULL = both;
``*_TRANSITIVE`` = against every earlier version instead of only the latest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Incompatibility", "can_read", "check_levels", "describe"]

_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_NAMED = {"record", "enum", "fixed"}
_COMPLEX = _NAMED | {"array", "map"}


@dataclass(frozen=True, slots=True)
class Incompatibility:
    """One reason a reader cannot read a writer's data."""

    path: str
    rule: str
    detail: str

    def __str__(self) -> str:
        """``path: RULE (detail)``, as printed by ``agentflux schemas check``."""
        return f"{self.path}: {self.rule} ({self.detail})"


class _Names:
    """Named types seen while walking a schema, so references by name can be resolved."""

    def __init__(self) -> None:
        self.types: dict[str, dict[str, Any]] = {}

    def full_name(self, schema: dict[str, Any], namespace: str) -> str:
        name = str(schema["name"])
        if "." in name:
            return name
        space = schema.get("namespace", namespace)
        return f"{space}.{name}" if space else name

    def resolve(self, schema: Any, namespace: str) -> tuple[Any, str]:
        """Expand a name reference; record named types; return (schema, its namespace)."""
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            full = schema if "." in schema or not namespace else f"{namespace}.{schema}"
            found = self.types.get(full) or self.types.get(schema)
            if found is None:
                raise ValueError(f"unknown named type {schema!r}")
            return found, full.rpartition(".")[0]
        if isinstance(schema, dict) and schema.get("type") in _NAMED:
            full = self.full_name(schema, namespace)
            self.types.setdefault(full, schema)
            return schema, full.rpartition(".")[0]
        return schema, namespace


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, str):
        return schema
    kind = schema["type"]
    return _kind(kind) if isinstance(kind, (dict, list)) else str(kind)


def _short(schema: Any) -> str:
    return str(schema.get("name", schema["type"])) if isinstance(schema, dict) else str(schema)


def _names_match(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    reader_name = str(reader["name"]).rpartition(".")[2]
    writer_name = str(writer["name"]).rpartition(".")[2]
    aliases = {str(a).rpartition(".")[2] for a in reader.get("aliases", [])}
    return reader_name == writer_name or writer_name in aliases


class _Checker:
    def __init__(self) -> None:
        self.reader_names = _Names()
        self.writer_names = _Names()
        self.problems: list[Incompatibility] = []
        self._seen: set[tuple[int, int]] = set()

    def problem(self, path: str, rule: str, detail: str) -> None:
        self.problems.append(Incompatibility(path, rule, detail))

    def check(
        self, reader: Any, writer: Any, path: str, r_ns: str = "", w_ns: str = ""
    ) -> None:  # a namespace for each side
        """Record every problem reading ``writer``'s data with ``reader`` at ``path``."""
        reader, r_ns = self.reader_names.resolve(reader, r_ns)
        writer, w_ns = self.writer_names.resolve(writer, w_ns)
        # {"type": "long", "logicalType": ...} and other wrappers resolve as what they wrap.
        if isinstance(reader, dict) and reader.get("type") not in _COMPLEX:
            self.check(reader["type"], writer, path, r_ns, w_ns)
            return
        if isinstance(writer, dict) and writer.get("type") not in _COMPLEX:
            self.check(reader, writer["type"], path, r_ns, w_ns)
            return
        key = (id(reader), id(writer))
        if key in self._seen:  # recursive types: each pair is checked once
            return
        self._seen.add(key)
        r_kind, w_kind = _kind(reader), _kind(writer)
        if w_kind == "union":
            for branch in writer:
                self.check(reader, branch, path, r_ns, w_ns)
        elif r_kind == "union":
            self._into_union(reader, writer, path, r_ns, w_ns)
        elif r_kind != w_kind:
            if r_kind not in _PROMOTIONS.get(w_kind, set()):
                self.problem(
                    path, "TYPE_MISMATCH", f"reader expects {r_kind}, writer wrote {w_kind}"
                )
        else:
            self._same_kind(r_kind, reader, writer, path, (r_ns, w_ns))

    def _same_kind(
        self, kind: str, reader: Any, writer: Any, path: str, spaces: tuple[str, str]
    ) -> None:
        if kind == "record":
            self._records(reader, writer, path, *spaces)
        elif kind == "enum":
            self._enums(reader, writer, path)
        elif kind == "fixed":
            if reader["size"] != writer["size"] or not _names_match(reader, writer):
                self.problem(path, "FIXED_MISMATCH", f"{_short(reader)} vs {_short(writer)}")
        elif kind == "array":
            self.check(reader["items"], writer["items"], f"{path}[]", *spaces)
        elif kind == "map":
            self.check(reader["values"], writer["values"], f"{path}{{}}", *spaces)

    def _into_union(self, reader: list[Any], writer: Any, path: str, r_ns: str, w_ns: str) -> None:
        for branch in reader:
            trial = _Checker()
            trial.reader_names, trial.writer_names = self.reader_names, self.writer_names
            trial.check(branch, writer, path, r_ns, w_ns)
            if not trial.problems:
                return
        self.problem(
            path,
            "MISSING_UNION_BRANCH",
            f"reader union has no branch for writer's {_short(writer)}",
        )

    def _records(
        self, reader: dict[str, Any], writer: dict[str, Any], path: str, r_ns: str, w_ns: str
    ) -> None:  # see check()
        if not _names_match(reader, writer):
            self.problem(
                path,
                "NAME_MISMATCH",
                f"reader record {reader['name']}, writer record {writer['name']}",
            )
            return
        written = {f["name"]: f for f in writer["fields"]}
        for field in reader["fields"]:
            names = [field["name"], *field.get("aliases", [])]
            source = next((written[n] for n in names if n in written), None)
            where = f"{path}.{field['name']}" if path else field["name"]
            if source is None:
                if "default" not in field:
                    self.problem(
                        where,
                        "READER_FIELD_MISSING_DEFAULT_VALUE",
                        f"field '{field['name']}' is not in the writer's schema and has no default",
                    )
                continue
            self.check(field["type"], source["type"], where, r_ns, w_ns)

    def _enums(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> None:
        if not _names_match(reader, writer):
            self.problem(
                path, "NAME_MISMATCH", f"reader enum {reader['name']}, writer enum {writer['name']}"
            )
            return
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if missing and "default" not in reader:
            self.problem(
                path,
                "MISSING_ENUM_SYMBOLS",
                f"reader lacks symbol(s) {missing} and has no enum default",
            )


def can_read(reader: Any, writer: Any) -> list[Incompatibility]:
    """Every reason data written with ``writer`` cannot be read with ``reader`` ([] if it can)."""
    checker = _Checker()
    checker.check(reader, writer, "")
    return checker.problems


def check_levels(
    new: Any, earlier: list[Any], level: str
) -> list[tuple[int, str, Incompatibility]]:
    """Check ``new`` against ``earlier`` versions (oldest first) under a compatibility level.

    Returns (version number, direction, problem) triples; [] means compatible.
    """
    if level == "NONE" or not earlier:
        return []
    versions = list(enumerate(earlier, start=1))
    against = versions if level.endswith("_TRANSITIVE") else versions[-1:]
    base = level.removesuffix("_TRANSITIVE")
    found: list[tuple[int, str, Incompatibility]] = []
    for number, old in against:
        if base in {"BACKWARD", "FULL"}:
            found.extend((number, "new reader, old data", p) for p in can_read(new, old))
        if base in {"FORWARD", "FULL"}:
            found.extend((number, "old reader, new data", p) for p in can_read(old, new))
    return found


def describe(
    subject: str, level: str, problems: list[tuple[int, str, Incompatibility]]
) -> list[str]:
    """Human lines naming the subject, the version, the field and the rule broken."""
    return [
        f"{subject}: breaks {level} against v{number} ({direction}): {problem}"
        for number, direction, problem in problems
    ]
