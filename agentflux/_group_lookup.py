"""Finding a group's declaration: shipped, installed (entry points), or named by ``--app``.

Every command that acts on a group (``consume``, ``lag``, ``replay``, ``dlq``, ``rebuild``,
``docs asyncapi``) finds it here, so a team's group is accepted wherever a shipped one is.
Installed packages declare theirs in the ``agentflux.groups`` entry-point group::

    [project.entry-points."agentflux.groups"]
    billing = "my_team.billing:group"
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points

from agentflux._cli_errors import InputError, NotFoundError
from agentflux.consumers import GroupSpec
from agentflux.consumers._groups import SHIPPED_GROUPS

__all__ = [
    "ENTRY_POINT_GROUP",
    "FoundGroup",
    "GroupNotFoundError",
    "NotAGroupError",
    "declared_or_raw",
    "find_group",
    "known_groups",
    "load_app",
]

ENTRY_POINT_GROUP = "agentflux.groups"


class GroupNotFoundError(NotFoundError):
    """No shipped, installed or importable group has that name."""


class NotAGroupError(InputError):
    """``--app`` named something that is not a group declaration, or could not be imported."""


@dataclass(frozen=True, slots=True)
class FoundGroup:
    """A group's declaration, the name it is found by, and where: shipped or installed."""

    name: str
    spec: GroupSpec
    origin: str


def load_app(reference: str) -> GroupSpec:
    """The :class:`GroupSpec` at ``module:attribute`` (dots allowed in the attribute)."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise NotAGroupError(
            f"--app {reference!r} is not module:attribute",
            "e.g. --app my_team.billing:group (the module must be importable: installed, or on "
            "PYTHONPATH)",
        )
    try:
        found: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise NotAGroupError(
            f"--app {reference!r}: cannot import {module_name} ({exc})",
            "install the team's package, or add its folder to PYTHONPATH",
        ) from exc
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise NotAGroupError(
                f"--app {reference!r}: {module_name} has no {attribute}",
                "name the GroupSpec object the module declares",
            ) from None
    if not isinstance(found, GroupSpec):
        raise NotAGroupError(
            f"--app {reference!r} is a {type(found).__name__}, not a group declaration",
            "declare the group as agentflux.consumers.GroupSpec(...) and name that object",
        )
    return found


def _installed() -> dict[str, tuple[str, GroupSpec]]:
    """Every installed package's groups, by entry-point name (the entry point's value kept)."""
    installed: dict[str, tuple[str, GroupSpec]] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        installed[point.name] = (point.value, load_app(point.value))
    return installed


def known_groups() -> list[FoundGroup]:
    """The shipped groups, then the installed ones (sorted by name)."""
    found = [FoundGroup(name, spec, "shipped") for name, spec in SHIPPED_GROUPS.items()]
    for name, (value, spec) in sorted(_installed().items()):
        if name not in SHIPPED_GROUPS:  # a package may not replace a shipped group
            found.append(FoundGroup(name, spec, f"installed ({value})"))
    return found


def find_group(name: str | None = None, *, app: str | None = None) -> GroupSpec:
    """The declaration named by ``app`` (module:attribute), or by ``name``.

    ``name`` is a shipped group's or an installed entry point's name, or the group id of either.
    Nothing found: :class:`GroupNotFoundError` naming the group and the ones there are.
    """
    if app is not None:
        return load_app(app)
    if name is None:
        raise InputError("name a group, or give --app module:attribute")
    if name in SHIPPED_GROUPS:
        return SHIPPED_GROUPS[name]
    known = known_groups()
    for found in known:
        if name in {found.name, found.spec.name, found.spec.group_id}:
            return found.spec
    raise GroupNotFoundError(
        f"no group {name!r}: not shipped, not installed, not a group id of either",
        f"groups: {', '.join(f.name for f in known)}; a team's group not installed: "
        "--app module:attribute",
    )


def declared_or_raw(name: str) -> tuple[str, GroupSpec | None]:
    """The group id ``name`` stands for, and its declaration if it names a known group.

    Commands on offsets (``lag``, ``replay``) also take any group id the cluster has, declared
    or not: such a name comes back as it is, with no declaration.
    """
    if name in SHIPPED_GROUPS:
        return SHIPPED_GROUPS[name].group_id, SHIPPED_GROUPS[name]
    for found in known_groups():
        if name in {found.name, found.spec.name, found.spec.group_id}:
            return found.spec.group_id, found.spec
    return name, None
