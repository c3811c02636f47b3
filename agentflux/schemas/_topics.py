"""The topic declaration (``schemas/topics.yaml``), loaded and validated."""

from __future__ import annotations

import itertools
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentflux.schemas._teams import TeamSpec
from agentflux.schemas._types import Compatibility, EventCategory

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["DeadLetterSpec", "TopicSpec", "TopicsDeclaration", "dead_letter_topic", "load_topics"]


class TopicSpec(BaseModel):
    """One declared topic: layout, durability, retention, compatibility and ownership."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")
    category: EventCategory | None = None
    partitions: int = Field(ge=1)
    replication_factor: int = Field(ge=1)
    min_insync_replicas: int = Field(ge=1)
    retention_ms: int = Field(ge=-1)
    retention_bytes: int = Field(default=-1, ge=-1)
    cleanup_policy: Literal["delete", "compact", "compact,delete"] = "delete"
    # Every version readable by every other: the teams reading a topic upgrade on their own.
    compatibility: Compatibility = "FULL_TRANSITIVE"
    owner: str
    description: str

    @model_validator(mode="after")
    def _isr_fits(self) -> Self:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"{self.name}: min_insync_replicas {self.min_insync_replicas} exceeds "
                f"replication_factor {self.replication_factor}; no write could ever succeed",
            )
        return self

    def configs(self) -> dict[str, str]:
        """The topic-level Kafka configs this declaration sets."""
        return {
            "min.insync.replicas": str(self.min_insync_replicas),
            "retention.ms": str(self.retention_ms),
            "retention.bytes": str(self.retention_bytes),
            "cleanup.policy": self.cleanup_policy,
        }


class DeadLetterSpec(BaseModel):
    """How the dead-letter topic of a consumer group is named and kept."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pattern: str = Field(pattern=r"\{group\}")
    partitions: int = Field(ge=1)
    retention_ms: int = Field(ge=-1)
    owner: str


class TopicsDeclaration(BaseModel):
    """The whole declaration file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dead_letter: DeadLetterSpec
    topics: tuple[TopicSpec, ...]
    # Who may read and write what: `agentflux acls apply` grants it (docs/security.md).
    teams: tuple[TeamSpec, ...] = ()

    @model_validator(mode="after")
    def _copartitioned(self) -> Self:
        # Per-session views read several category topics; keyed by session id, partition N of
        # each holds the same sessions only when the counts are equal.
        counts = {t.name: t.partitions for t in self.topics if t.category is not None}
        if len(set(counts.values())) > 1:
            listed = ", ".join(f"{name} {count}" for name, count in counts.items())
            raise ValueError(
                "the category topics must have the same partition count (co-partitioned: "
                f"a session's events in partition N of each), not {listed}"
            )
        return self

    @model_validator(mode="after")
    def _teams_fit(self) -> Self:
        declared = {t.name for t in self.topics}
        problems = [
            f"team {team.name} reads {topic}, which is not declared"
            for team in self.teams
            for topic in team.reads
            if topic not in declared
        ]
        problems.extend(
            f"team {team.name} writes {topic}, which is not declared"
            for team in self.teams
            if not isinstance(team.writes, bool)
            for topic in team.writes
            if topic not in declared
        )
        prefixes = sorted((t.group_prefix, t.name) for t in self.teams if t.group_prefix)
        # Prefix ACLs: a prefix that starts another team's would let it use that team's groups.
        problems.extend(
            f"team {name}'s group prefix {prefix!r} covers team {other}'s {longer!r}"
            for (prefix, name), (longer, other) in itertools.pairwise(prefixes)
            if longer.startswith(prefix)
        )
        principals = [t.principal for t in self.teams]
        problems.extend(
            f"principal {p} is declared by more than one team"
            for p in sorted(set(principals))
            if principals.count(p) > 1
        )
        if self.teams and not self.dead_letter.pattern.endswith("{group}"):
            problems.append("with teams, the dead-letter pattern must end with {group}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def dead_letter_prefix(self, team: TeamSpec) -> str | None:
        """The name prefix of ``team``'s dead-letter topics (none without a group prefix)."""
        if team.group_prefix is None:
            return None
        return self.dead_letter.pattern.format(group=team.group_prefix)

    def written_by(self, team: TeamSpec) -> tuple[str, ...]:
        """The topics ``team`` publishes to: every category topic, the ones it names, or none."""
        if team.writes is True:
            return tuple(t.name for t in self.topics if t.category is not None)
        return () if team.writes is False else team.writes

    def behind_prefix(self, prefix: str) -> TopicsDeclaration:
        """The declaration with ``prefix`` before every declared topic name, teams' included.

        ``prefix`` is ``AGENTFLUX_TOPIC_PREFIX``, which publishers and consumer groups put before
        the category topics. Group ids and dead-letter topics are not named from topics, so they
        (and the teams' group prefixes) stay as declared.
        """
        if not prefix:
            return self

        def renamed(names: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(prefix + name for name in names)

        return self.model_copy(
            update={
                "topics": tuple(
                    t.model_copy(update={"name": prefix + t.name}) for t in self.topics
                ),
                "teams": tuple(
                    team.model_copy(
                        update={
                            "reads": renamed(team.reads),
                            "writes": team.writes
                            if isinstance(team.writes, bool)
                            else renamed(team.writes),
                        }
                    )
                    for team in self.teams
                ),
            }
        )

    def for_category(self, category: EventCategory) -> TopicSpec:
        """The topic declared for a category."""
        return next(t for t in self.topics if t.category == category)

    def dead_letter_spec(self, group: str, template: TopicSpec) -> TopicSpec:
        """The declaration of a group's dead-letter topic, durable like ``template``."""
        return TopicSpec(
            name=self.dead_letter.pattern.format(group=group),
            partitions=self.dead_letter.partitions,
            replication_factor=template.replication_factor,
            min_insync_replicas=template.min_insync_replicas,
            retention_ms=self.dead_letter.retention_ms,
            owner=self.dead_letter.owner,
            description=f"Records group {group} could not handle, the failure in headers.",
        )


@cache
def _packaged() -> TopicsDeclaration:
    text = resources.files("agentflux.contract").joinpath("topics.yaml").read_text()
    return TopicsDeclaration.model_validate(yaml.safe_load(text))


def load_topics(path: Path | None = None) -> TopicsDeclaration:
    """The declaration shipped with the package, or the one at ``path``."""
    if path is None:
        return _packaged()
    return TopicsDeclaration.model_validate(yaml.safe_load(path.read_text()))


def dead_letter_topic(group: str) -> str:
    """The dead-letter topic of consumer group ``group``."""
    return _packaged().dead_letter.pattern.format(group=group)
