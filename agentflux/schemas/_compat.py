"""Offline schema compatibility by the Avro specification's schema-resolution rules.

``can_read(reader, writer)`` lists every reason data written with ``writer`` cannot be read with
``reader``. Compatibility levels are built from it the way the Confluent registry defines them:
BACKWARD = the new schema reads the latest; FORWARD = the latest reads the new; FULL = both;
``*_TRANSITIVE`` = against every earlier version instead of only the latest.
``enum_symbols_without_default`` adds the project's enum policy (a symbol is added only through
an enum default), which the BACKWARD levels would otherwise let through.

Why hand-written rather than Apache Avro's ``avro.compatibility`` checker: this one names the
field path and the rule in words a reviewer can act on (the library gives JSON-pointer
locations and one-word messages), it reads the plain JSON the ``.avsc`` files hold, and
``agentflux.schemas`` gains no run-time dependency. The library stays the second opinion: a
corpus of changes (``tests/_compat_corpus.py``) runs through this checker, the library and the
real registry, which must agree but for listed cases where this checker is the stricter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Incompatibility",
    "can_read",
    "check_levels",
    "describe",
    "enum_symbols_without_default",
]

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


def _names_match(
    reader: dict[str, Any], writer: dict[str, Any], r_ns: str, w_ns: str
) -> str | None:
    """None when ``reader`` reads ``writer``'s named type; else why not.

    Names match on their last part, as Avro's Java checker (and so the registry) compares them:
    a namespace moved is no break. A rename needs an alias equal to the writer's full name, and
    only a full-name alias counts: Apache Avro's Python checker reads aliases as written, so a
    short one there is no alias at all, and the gate takes the stricter side.
    """
    reader_name = str(reader["name"]).rpartition(".")[2]
    writer_name = str(writer["name"]).rpartition(".")[2]
    if reader_name == writer_name:
        return None
    writer_full = f"{w_ns}.{writer_name}" if w_ns else writer_name
    aliases = [str(a) for a in reader.get("aliases", [])]
    if writer_full in aliases:
        return None
    detail = f"reader {reader_name}, writer {writer_full}"
    relative = {f"{r_ns}.{a}" if r_ns else a for a in aliases if "." not in a}
    if writer_name in aliases or writer_full in relative:
        return f"{detail}; write the alias as the full name {writer_full!r}"
    return f"{detail}; a rename needs the old full name in the reader's aliases"


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
            self._enums(reader, writer, path, *spaces)
        elif kind == "fixed":
            if (mismatch := _names_match(reader, writer, *spaces)) is not None:
                self.problem(path, "NAME_MISMATCH", f"fixed {mismatch}")
            elif reader["size"] != writer["size"]:
                self.problem(
                    path,
                    "FIXED_SIZE_MISMATCH",
                    f"fixed {_short(reader)}: reader {reader['size']} bytes, "
                    f"writer {writer['size']} bytes",
                )
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
        if (mismatch := _names_match(reader, writer, r_ns, w_ns)) is not None:
            self.problem(path, "NAME_MISMATCH", f"record {mismatch}")
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

    def _enums(
        self, reader: dict[str, Any], writer: dict[str, Any], path: str, r_ns: str, w_ns: str
    ) -> None:  # see check()
        if (mismatch := _names_match(reader, writer, r_ns, w_ns)) is not None:
            self.problem(path, "NAME_MISMATCH", f"enum {mismatch}")
            return
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if missing and reader.get("default") not in reader["symbols"]:
            name = f"{r_ns}.{_short(reader)}" if r_ns else _short(reader)
            self.problem(
                path,
                "MISSING_ENUM_SYMBOLS",
                f"enum {name} of the reader lacks symbol(s) {missing} and has no default: "
                "add a default to the enum and release it before adding symbols",
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


def _enum_types(schema: Any, namespace: str = "") -> dict[str, dict[str, Any]]:
    """Every enum declared in ``schema``, by full name."""
    found: dict[str, dict[str, Any]] = {}
    if isinstance(schema, list):
        for branch in schema:
            found.update(_enum_types(branch, namespace))
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in _NAMED:
            full = _Names().full_name(schema, namespace)
            namespace = full.rpartition(".")[0]
            if kind == "enum":
                found[full] = schema
        for field in schema.get("fields", []) if kind == "record" else []:
            found.update(_enum_types(field["type"], namespace))
        for key in ("items", "values"):
            if kind in {"array", "map"} and key in schema:
                found.update(_enum_types(schema[key], namespace))
        if isinstance(kind, (dict, list)):
            found.update(_enum_types(kind, namespace))
    return found


def enum_symbols_without_default(
    new: Any, earlier: list[Any], level: str
) -> list[tuple[int, str, Incompatibility]]:
    """The enum policy: a symbol may be added only to an enum whose earlier versions have a default.

    A reader on an earlier version maps a symbol it does not know to that version's enum
    default; without one it cannot read the record at all. The FORWARD and FULL levels refuse
    such a change by the resolution rules already; this rule holds it at the BACKWARD levels
    too, so that a topic set to BACKWARD still does not break the consumers of other teams.
    Same triples as :func:`check_levels`.
    """
    if level not in {"BACKWARD", "BACKWARD_TRANSITIVE"} or not earlier:
        return []
    versions = list(enumerate(earlier, start=1))
    against = versions if level.endswith("_TRANSITIVE") else versions[-1:]
    current = _enum_types(new)
    found: list[tuple[int, str, Incompatibility]] = []
    for number, old in against:
        for name, enum in _enum_types(old).items():
            added = [
                s for s in current.get(name, {}).get("symbols", []) if s not in enum["symbols"]
            ]
            if added and enum.get("default") not in enum["symbols"]:
                problem = Incompatibility(
                    name,
                    "ENUM_SYMBOL_WITHOUT_DEFAULT",
                    f"symbol(s) {added} added to enum {name}, which has no default in "
                    f"v{number}: add a default to the enum and release it before adding symbols",
                )
                found.append((number, "enum policy", problem))
    return found


def describe(
    subject: str, level: str, problems: list[tuple[int, str, Incompatibility]]
) -> list[str]:
    """Human lines naming the subject, the version, the field and the rule broken."""
    return [
        f"{subject}: breaks {level} against v{number} ({direction}): {problem}"
        for number, direction, problem in problems
    ]
