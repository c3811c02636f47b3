"""ACLs as code: the cluster's ACLs made to match the teams of ``topics.yaml``; SCRAM users.

Applying is idempotent: a second run finds nothing to change. The ACLs of the principals the
declaration names are managed: missing ones are created, others of theirs (drift) deleted.
ACLs of any other principal are listed and left alone, unless ``prune`` asks to delete them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from aiokafka.admin import AIOKafkaAdminClient

from agentflux.kafka import connection_kwargs, refusals_explained
from agentflux.kafka._gate._security import (
    SCRAM_MECHANISMS,
    AclEntry,
    create_acls,
    delete_acls,
    delete_scram_user,
    describe_acls,
    describe_scram_users,
    upsert_scram_user,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from agentflux.kafka import AgentfluxSettings
    from agentflux.schemas import TeamSpec, TopicsDeclaration

__all__ = [
    "AclBinding",
    "AclPlan",
    "ScramUser",
    "add_user",
    "apply_acls",
    "desired_acls",
    "list_users",
    "remove_user",
]

ResourceType = Literal["TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID"]
Pattern = Literal["LITERAL", "PREFIXED"]
# Kafka's wire codes (org.apache.kafka.common.resource.ResourceType, PatternType, AclOperation,
# AclPermissionType); an unlisted code is shown by its number.
_RESOURCE_TYPES = {2: "TOPIC", 3: "GROUP", 4: "CLUSTER", 5: "TRANSACTIONAL_ID", 7: "USER"}
_PATTERNS = {3: "LITERAL", 4: "PREFIXED"}
_OPERATIONS = {
    2: "ALL",
    3: "READ",
    4: "WRITE",
    5: "CREATE",
    6: "DELETE",
    7: "ALTER",
    8: "DESCRIBE",
    9: "CLUSTER_ACTION",
    10: "DESCRIBE_CONFIGS",
    11: "ALTER_CONFIGS",
    12: "IDEMPOTENT_WRITE",
}
_PERMISSIONS = {2: "DENY", 3: "ALLOW"}


def _name_of(codes: dict[int, str], code: int) -> str:
    return codes.get(code, str(code))


def _code_of(codes: dict[int, str], name: str) -> int:
    return next(code for code, known in codes.items() if known == name)


@dataclass(frozen=True, order=True, slots=True)
class AclBinding:
    """One ACL: ``principal`` may (or may not) do ``operation`` on a resource."""

    principal: str
    resource_type: str
    name: str
    pattern: str
    operation: str
    permission: str = "ALLOW"
    host: str = "*"

    def __str__(self) -> str:
        """One readable line, e.g. ``ALLOW User:billing READ group billing.*``."""
        star = "*" if self.pattern == "PREFIXED" else ""
        where = "" if self.host == "*" else f" from {self.host}"
        return (
            f"{self.permission} {self.principal} {self.operation} "
            f"{self.resource_type.lower()} {self.name}{star}{where}"
        )

    @classmethod
    def from_entry(cls, entry: AclEntry) -> AclBinding:
        """A binding from Kafka's wire form."""
        resource_type, name, pattern, principal, host, operation, permission = entry
        return cls(
            principal=principal,
            resource_type=_name_of(_RESOURCE_TYPES, resource_type),
            name=name,
            pattern=_name_of(_PATTERNS, pattern),
            operation=_name_of(_OPERATIONS, operation),
            permission=_name_of(_PERMISSIONS, permission),
            host=host,
        )

    def to_entry(self) -> AclEntry:
        """Kafka's wire form of this binding."""
        return (
            _code_of(_RESOURCE_TYPES, self.resource_type),
            self.name,
            _code_of(_PATTERNS, self.pattern),
            self.principal,
            self.host,
            _code_of(_OPERATIONS, self.operation),
            _code_of(_PERMISSIONS, self.permission),
        )


def _team_acls(declaration: TopicsDeclaration, team: TeamSpec) -> list[AclBinding]:
    def allow(resource: ResourceType, name: str, pattern: Pattern, operation: str) -> AclBinding:
        return AclBinding(team.principal, resource, name, pattern, operation)

    # READ and WRITE imply DESCRIBE (Kafka's rule), so metadata and lag need no grant of their own.
    bindings = [allow("TOPIC", topic, "LITERAL", "READ") for topic in team.reads]
    bindings += [
        allow("TOPIC", topic, "LITERAL", "WRITE") for topic in declaration.written_by(team)
    ]
    if team.group_prefix is not None:
        bindings.append(allow("GROUP", team.group_prefix, "PREFIXED", "READ"))
        dead_letters = declaration.dead_letter_prefix(team)
        assert dead_letters is not None  # noqa: S101  # a group prefix gives one
        # Its groups create their dead-letter topics on first use, write failures, re-drive them.
        bindings += [
            allow("TOPIC", dead_letters, "PREFIXED", operation)
            for operation in ("CREATE", "WRITE", "READ")
        ]
        if team.transactional:
            bindings.append(allow("TRANSACTIONAL_ID", team.group_prefix, "PREFIXED", "WRITE"))
    return bindings


def desired_acls(declaration: TopicsDeclaration) -> list[AclBinding]:
    """Every ACL the declaration's teams need, sorted."""
    return sorted({b for team in declaration.teams for b in _team_acls(declaration, team)})


@dataclass(slots=True)
class AclPlan:
    """What applying found and did (in a dry run, would do)."""

    create: list[AclBinding] = field(default_factory=list)
    drift: list[AclBinding] = field(default_factory=list)  # a declared principal's extra ACLs
    unmanaged: list[AclBinding] = field(default_factory=list)  # other principals' ACLs
    pruned: bool = False  # whether the unmanaged ones are deleted too

    @property
    def delete(self) -> list[AclBinding]:
        """The ACLs applying deletes: the drift, and with ``prune`` the unmanaged ones."""
        return self.drift + (self.unmanaged if self.pruned else [])

    @property
    def in_sync(self) -> bool:
        """Whether the cluster already matches (nothing to create or delete)."""
        return not self.create and not self.delete


@contextlib.asynccontextmanager
async def _admin(settings: AgentfluxSettings, operation: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client; a refused login or a denied ``operation`` raise typed errors."""
    async with refusals_explained(settings, operation):
        admin = AIOKafkaAdminClient(**connection_kwargs(settings))
        await admin.start()
        try:
            yield admin
        finally:
            await admin.close()


async def apply_acls(
    settings: AgentfluxSettings,
    declaration: TopicsDeclaration,
    *,
    dry_run: bool = False,
    prune: bool = False,
) -> AclPlan:
    """Make the cluster's ACLs match the declaration's teams; return the plan (done unless dry).

    Topic names are taken as the cluster's: with a topic prefix, pass the declaration behind it
    (``TopicsDeclaration.behind_prefix``), as ``agentflux acls apply`` does.
    """
    wanted = set(desired_acls(declaration))
    managed = {team.principal for team in declaration.teams}
    async with _admin(settings, "DESCRIBE" if dry_run else "ALTER") as admin:
        existing = {AclBinding.from_entry(entry) for entry in await describe_acls(admin)}
        plan = AclPlan(
            create=sorted(wanted - existing),
            drift=sorted(b for b in existing - wanted if b.principal in managed),
            unmanaged=sorted(b for b in existing if b.principal not in managed),
            pruned=prune,
        )
        if not dry_run:
            await create_acls(admin, [b.to_entry() for b in plan.create])
            await delete_acls(admin, [b.to_entry() for b in plan.delete])
        return plan


@dataclass(frozen=True, order=True, slots=True)
class ScramUser:
    """A user with SCRAM credentials: its name and (mechanism, iterations) of each."""

    name: str
    credentials: tuple[tuple[str, int], ...]

    @property
    def principal(self) -> str:
        """The principal Kafka sees when it logs in (``User:NAME``)."""
        return f"User:{self.name}"


async def add_user(settings: AgentfluxSettings, name: str, password: str) -> None:
    """Create SCRAM-SHA-512 user ``name`` (or set a new password), as the connected principal."""
    async with _admin(settings, "ALTER") as admin:
        await upsert_scram_user(admin, name, password)


async def list_users(settings: AgentfluxSettings) -> list[ScramUser]:
    """Every user with SCRAM credentials, by name (Kafka gives no password nor hash back)."""
    async with _admin(settings, "DESCRIBE") as admin:
        described = await describe_scram_users(admin)
    return sorted(
        ScramUser(
            name,
            tuple(sorted((SCRAM_MECHANISMS.get(m, str(m)), n) for m, n in credentials)),
        )
        for name, credentials in described.items()
    )


async def remove_user(settings: AgentfluxSettings, name: str) -> list[str]:
    """Delete every SCRAM credential of ``name``; the mechanisms it had.

    ``UnknownScramUserError`` if it has none. Its ACLs stay: `acls apply` manages those.
    """
    async with _admin(settings, "ALTER") as admin:
        removed = await delete_scram_user(admin, name)
    return [SCRAM_MECHANISMS.get(code, str(code)) for code in removed]
