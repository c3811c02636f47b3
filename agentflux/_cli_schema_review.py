"""``agentflux schemas diff|release``: a reviewer's view of the schema changes, and their release.

The review itself is :mod:`agentflux._schema_review`; this module prints it (text for a
terminal, Markdown for a pull request), sets the exit code CI acts on, and writes releases.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agentflux._cli_errors import CliError, ExitCode, RefusedError
from agentflux._schema_review import (
    LEVELS,
    ReviewReport,
    release_plan,
    review_history,
    review_registry,
    write_release,
)
from agentflux.kafka import AgentfluxSettings, run_event_loop
from agentflux.schemas import RegistryClient

if TYPE_CHECKING:
    from agentflux._schema_review import Change, SchemaReview

__all__ = ["UnreleasedError", "add_review_commands"]


class Against(StrEnum):
    """What the current schemas are compared with."""

    HISTORY = "history"
    REGISTRY = "registry"


class Format(StrEnum):
    """How the review is printed."""

    TEXT = "text"
    MARKDOWN = "markdown"


class UnreleasedError(CliError):
    """Schemas changed compatibly since their last release, and are not released yet."""

    exit_code = ExitCode.UNRELEASED


Root = Annotated[
    Path | None,
    typer.Option(
        "--root",
        exists=True,  # a mistyped folder would hold no schema, so nothing would seem changed
        file_okay=False,
        help="The schemas/avro folder to review (default: the project's).",
    ),
]

_SIGNS = {"added": "+", "removed": "-"}


def _title(review: SchemaReview, subject: str, arrow: str = "->") -> str:
    if review.is_new:
        return f"{subject}: new (no released version; it will be v1)"
    return f"{subject}: v{review.released} {arrow} v{review.version}"


def _where(review: SchemaReview, change: Change) -> str:
    """A change's field path; the record's own name for a change to the record itself."""
    return change.path or review.item.full_name.rpartition(".")[2]


def _text_change(review: SchemaReview, change: Change) -> str:
    both = change.before and change.after  # else one side is all there is (added, removed)
    words = f"{change.before} -> {change.after}" if both else change.before or change.after
    return f"  {_SIGNS.get(change.what, '~')} {_where(review, change)}: {change.what}: {words}"


def _holds(review: SchemaReview) -> str:
    return "breaks" if review.problems else "holds"


def render_text(report: ReviewReport) -> str:
    """The review for a terminal: one block per changed schema."""
    lines: list[str] = []
    for review in report.reviews:
        lines.append(_title(review, review.item.subject))
        lines.extend(_text_change(review, change) for change in review.changes)
        if review.holds:
            held = [level for level in LEVELS if review.holds[level]]
            broken = [level for level in LEVELS if not review.holds[level]]
            lines.append(f"  levels that hold: {', '.join(held) or 'none'}")
            if broken:
                lines.append(f"  levels that break: {', '.join(broken)}")
        lines.append(f"  policy: {review.item.level} {_holds(review)}")
        lines.extend(f"    {problem}" for problem in review.problems)
        lines.append(f"  read by: {', '.join(review.readers) or 'no consumer group'}")
        lines.append("")
    lines.append(_summary(report))
    return "\n".join(lines)


def _summary(report: ReviewReport) -> str:
    against = "the released history" if report.against == "history" else "the registry"
    if not report.reviews:
        return f"no unreleased change: {report.unchanged} schema(s), all as released ({against})"
    return f"{len(report.reviews)} changed, {report.unchanged} unchanged (against {against})"


def _code(text: str) -> str:
    """Text as inline code inside a Markdown table cell."""
    if not text:
        return ""
    fence = "`` " if "`" in text else "`"  # a backtick inside: fenced by two, and spaces
    return f"{fence}{text}{fence[::-1]}".replace("|", "\\|")


def render_markdown(report: ReviewReport) -> str:
    """The review for a pull request: a table of changes per schema, its levels and readers."""
    source = "released history" if report.against == "history" else "registry"
    lines = [f"## Schema changes against the {source}", ""]
    for review in report.reviews:
        lines.extend([f"### {_title(review, f'`{review.item.subject}`', '→')}", ""])
        if review.changes:
            lines.extend(["| field | change | before | after |", "|---|---|---|---|"])
            lines.extend(
                f"| {_code(_where(review, c))} | {c.what} | {_code(c.before)} | {_code(c.after)} |"
                for c in review.changes
            )
            lines.append("")
        if review.holds:
            marks = " · ".join(f"{'✅' if review.holds[lv] else '❌'} {lv}" for lv in LEVELS)
            lines.extend([f"**Levels:** {marks}", ""])
        mark = "❌" if review.problems else "✅"
        lines.extend([f"**Policy:** {mark} `{review.item.level}` {_holds(review)}", ""])
        lines.extend(f"- {_code(problem)}" for problem in review.problems)
        if review.problems:
            lines.append("")
        readers = ", ".join(f"`{group}`" for group in review.readers) or "no consumer group"
        lines.extend([f"**Read by:** {readers}", ""])
    lines.append(_summary(report))
    return "\n".join(lines)


def _verdict(report: ReviewReport) -> None:
    """Exit non-zero for CI: refused when a change breaks its level, else unreleased."""
    if report.problems:
        raise RefusedError(
            f"{len(report.problems)} incompatible change(s) against the released versions",
            "add defaults (or enum defaults) so every version can read every other",
        )
    if report.reviews:
        next_step = (
            "`agentflux schemas release` writes their history files"
            if report.against == "history"
            else "`agentflux schemas register` registers them"
        )
        raise UnreleasedError(
            f"{len(report.reviews)} schema(s) changed and not released", next_step
        )


def schemas_diff(
    against: Annotated[
        Against,
        typer.Option("--against", help="Compare with the released history files or the registry."),
    ] = Against.HISTORY,
    output_format: Annotated[
        Format, typer.Option("--format", help="Text for a terminal, Markdown for a pull request.")
    ] = Format.TEXT,
    root: Root = None,
) -> None:
    """Show what changed in each schema since its release, the levels that hold, who reads it.

    Exits 0 when nothing is unreleased, 5 when changes are compatible but not released yet,
    1 when a change breaks its topic's compatibility level.
    """
    if against is Against.HISTORY:
        report = review_history(root)
    else:

        async def _run() -> ReviewReport:
            async with RegistryClient.from_settings(AgentfluxSettings()) as registry:
                return await review_registry(registry, root)

        report = run_event_loop(_run())
    print(render_markdown(report) if output_format is Format.MARKDOWN else render_text(report))
    _verdict(report)


def schemas_release(
    root: Root = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be written, write nothing.")
    ] = False,
) -> None:
    """Write history/<record>/v<N+1>.avsc for every changed schema; none if any breaks its level."""
    plan = release_plan(root)
    if plan.problems:
        for problem in plan.problems:
            print(f"refused: {problem}", file=sys.stderr)
        raise RefusedError(
            f"{len(plan.problems)} problem(s); nothing was released",
            "`agentflux schemas diff` shows each change and the level it breaks",
        )
    if not dry_run:
        write_release(plan)
    for path, _ in plan.writes:
        print(f"{'would write' if dry_run else 'wrote'} {path.relative_to(plan.root)}")
    if not plan.writes:
        print("nothing to release: every schema matches its latest released version")


def add_review_commands(schemas_app: typer.Typer) -> None:
    """Add ``diff`` and ``release`` to the ``agentflux schemas`` commands."""
    schemas_app.command("diff")(schemas_diff)
    schemas_app.command("release")(schemas_release)
