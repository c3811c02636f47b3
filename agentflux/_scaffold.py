"""``agentflux new group NAME``: a team's consumer-group package, ready to run and test.

The files come from the templates in ``agentflux/_templates/group`` (package data): ``PACKAGE``
in a path is the package's name, and ``{{name}}``, ``{{package}}`` and ``{{group_id}}`` in a
file are filled in. The placeholders are replaced as plain text: ``string.Template`` and
``str.format`` were checked and refused, as both read the ``$1`` and ``{TABLE}`` of the
generated SQL and f-strings as their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable
    from pathlib import Path

__all__ = ["GroupNameError", "ScaffoldExistsError", "Scaffolded", "new_group"]

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_SUFFIX = ".tmpl"
_PACKAGE_DIR = "PACKAGE"


class GroupNameError(ValueError):
    """A name that cannot be a package and a group id: lowercase letters, digits, - and _."""


class ScaffoldExistsError(FileExistsError):
    """The folder the package would be written to exists and is not empty."""


@dataclass(frozen=True, slots=True)
class Scaffolded:
    """What ``new_group`` wrote: the project's folder, its package, and every file."""

    root: Path
    package: str
    files: list[Path]


def new_group(name: str, into: Path) -> Scaffolded:
    """Write the project of group ``name`` into ``into/name``; refuse a non-empty folder."""
    if not _NAME.match(name):
        raise GroupNameError(
            f"group name {name!r}: use lowercase letters, digits, '-' and '_', starting with a "
            "letter (it names the package, the group id and its dead-letter topic)"
        )
    package = name.replace("-", "_")
    root = into / name
    if root.exists() and any(root.iterdir()):
        raise ScaffoldExistsError(f"{root} exists and is not empty")
    values = {"{{name}}": name, "{{package}}": package, "{{group_id}}": name}
    written: list[Path] = []
    templates = resources.files("agentflux").joinpath("_templates", "group")
    for template, relative in _templates(templates, ()):
        parts = [package if part == _PACKAGE_DIR else part for part in relative]
        target = root.joinpath(*parts[:-1], parts[-1].removesuffix(_SUFFIX))
        text = template.read_text(encoding="utf-8")
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return Scaffolded(root, package, sorted(written))


def _templates(
    folder: Traversable, relative: tuple[str, ...]
) -> list[tuple[Traversable, tuple[str, ...]]]:
    """Every template file under ``folder``, with its path relative to the templates' root."""
    found: list[tuple[Traversable, tuple[str, ...]]] = []
    for entry in folder.iterdir():
        if entry.is_dir():
            found.extend(_templates(entry, (*relative, entry.name)))
        elif entry.name.endswith(_SUFFIX):
            found.append((entry, (*relative, entry.name)))
    return found
