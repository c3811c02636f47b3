"""A team's group without a broker: declarations, lookup by --app and entry point, start points, scaffold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from agentflux._cli_docs import asyncapi_document
from agentflux._group_lookup import (
    GroupNotFoundError,
    NotAGroupError,
    declared_or_raw,
    find_group,
    known_groups,
)
from agentflux._offsets import parse_replay_target
from agentflux._scaffold import GroupNameError, ScaffoldExistsError, new_group
from agentflux.cli import app
from agentflux.consumers import GroupSpec, StartPoint, StartPointError
from agentflux.consumers._groups import SHIPPED_GROUPS
from agentflux.kafka import AgentfluxSettings

if TYPE_CHECKING:
    from pathlib import Path

_MODULE = """
from agentflux.consumers import GroupSpec
from agentflux.schemas import EventCategory, ToolExecutionCompletedEvent


async def on_done(event):
    pass


group = GroupSpec(
    name="ledger",
    group_id="finance.ledger",
    categories=(EventCategory.TOOL,),
    handlers={ToolExecutionCompletedEvent: on_done},
)
not_a_group = 42
"""


@pytest.fixture
def team_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A team's module on sys.path, declared as installed through an agentflux.groups entry point."""
    (tmp_path / "finance_team.py").write_text(_MODULE)
    dist = tmp_path / "finance_team-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: finance-team\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[agentflux.groups]\nledger = finance_team:group\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_teams_group_starts_at_latest_and_the_shipped_views_at_earliest() -> None:
    """The documented defaults: a new team's group reads from its first start; shipped views read everything."""

    async def noop(event: object) -> None:
        del event

    team = GroupSpec(
        name="t",
        group_id="t",
        categories=tuple(SHIPPED_GROUPS["audit"].categories),
        handlers={object: noop},
    )  # type: ignore[dict-item]
    assert team.start_point.kind == "latest"
    assert {spec.start for spec in SHIPPED_GROUPS.values()} == {"earliest"}


def test_a_declaration_that_cannot_run_fails_when_it_is_made() -> None:
    """A bad start point, or a group with nothing to do, is refused at declaration (import) time."""
    with pytest.raises(StartPointError, match="yesterday-ish"):
        GroupSpec(
            name="t",
            group_id="t",
            categories=SHIPPED_GROUPS["audit"].categories,
            start="yesterday-ish",
            make_view=SHIPPED_GROUPS["audit"].make_view,
        )
    with pytest.raises(ValueError, match="neither a view, handlers nor a job"):
        GroupSpec(name="t", group_id="t", categories=SHIPPED_GROUPS["audit"].categories)


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("P3D", timedelta(days=3)),
        ("PT90M", timedelta(minutes=90)),
    ],
)
def test_a_duration_start_is_that_far_back_from_the_first_start(text: str, back: timedelta) -> None:
    """Relative starts and ISO 8601 durations mean now minus the duration."""
    now = datetime(2026, 12, 6, tzinfo=UTC)
    assert StartPoint.parse(text).moment(now) == now - back


def test_an_iso_time_without_zone_is_utc_and_replay_takes_durations_too() -> None:
    """A naive time is read as UTC; `replay --to 7d` is a time target 7 days back."""
    assert StartPoint.parse("2026-01-02T03:04:05").when == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    target = parse_replay_target("7d")
    assert target.kind == "time"
    assert target.when is not None
    assert abs((datetime.now(UTC) - target.when) - timedelta(days=7)) < timedelta(minutes=1)
    assert parse_replay_target("tool.events:1:5").kind == "offset"


def test_groups_are_found_by_app_entry_point_name_and_group_id(team_package: Path) -> None:
    """--app module:attribute, the entry point's name and the group id all find the team's declaration."""
    by_app = find_group(app="finance_team:group")
    assert by_app.group_id == "finance.ledger"
    assert find_group("ledger") is by_app
    assert find_group("finance.ledger") is by_app
    assert find_group("audit") is SHIPPED_GROUPS["audit"]
    assert declared_or_raw("ledger") == ("finance.ledger", by_app)
    assert declared_or_raw("someone.elses") == ("someone.elses", None)
    assert [(g.name, g.origin) for g in known_groups()][-1] == (
        "ledger",
        "installed (finance_team:group)",
    )


def test_unknown_groups_and_wrong_apps_are_typed_errors_naming_them(team_package: Path) -> None:
    """An unknown name lists the groups there are; --app of a non-declaration says what it is."""
    with pytest.raises(GroupNotFoundError, match="no-such-team") as unknown:
        find_group("no-such-team")
    assert "ledger" in (unknown.value.hint or "")
    with pytest.raises(NotAGroupError, match="is a int, not a group declaration"):
        find_group(app="finance_team:not_a_group")
    with pytest.raises(NotAGroupError, match="cannot import"):
        find_group(app="no_such_module:group")
    with pytest.raises(NotAGroupError, match="not module:attribute"):
        find_group(app="finance_team")


def test_the_cli_lists_installed_groups_and_refuses_unknown_ones(team_package: Path) -> None:
    """`groups list --json` shows shipped and installed groups; consume, dlq and rebuild exit 4 naming an unknown group."""
    listed = CliRunner().invoke(app, ["groups", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["name"]: row for row in map(json.loads, listed.output.splitlines())}
    assert rows["ledger"]["group_id"] == "finance.ledger"
    assert rows["ledger"]["start"] == "latest"
    assert rows["ledger"]["keeps"] == "handlers"
    assert rows["context"]["start"] == "earliest"
    for args in (
        ["consume", "no-such-team"],
        ["dlq", "list", "--group", "no-such-team"],
        ["rebuild", "no-such-team", "--into", "sqlite:///never.db"],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 4, (args, result.output)
        assert "no-such-team" in result.output


def test_the_scaffold_writes_a_package_and_refuses_to_overwrite(tmp_path: Path) -> None:
    """The scaffold writes the package, its group declaration and tests; a bad name or a non-empty folder is refused."""
    made = new_group("tool-costs", tmp_path)
    names = {path.relative_to(made.root).as_posix() for path in made.files}
    assert names == {
        "README.md",
        "pyproject.toml",
        "tool_costs/__init__.py",
        "tool_costs/group.py",
        "tool_costs/view.py",
        "tests/test_broker.py",
        "tests/test_view.py",
    }
    group_py = (made.root / "tool_costs" / "group.py").read_text()
    assert 'group_id="tool-costs"' in group_py
    assert "{{" not in "".join(path.read_text() for path in made.files)
    assert 'tool-costs = "tool_costs.group:group"' in (made.root / "pyproject.toml").read_text()
    with pytest.raises(ScaffoldExistsError):
        new_group("tool-costs", tmp_path)
    with pytest.raises(GroupNameError):
        new_group("Tool Costs", tmp_path)
    compile(group_py, "group.py", "exec")  # the generated code is valid Python


def test_the_asyncapi_document_lists_installed_and_app_groups(team_package: Path) -> None:
    """The AsyncAPI document: a receive operation for the installed team group and for one named by --app."""
    extra = GroupSpec(
        name="extra",
        group_id="ops.extra",
        categories=SHIPPED_GROUPS["context"].categories,
        make_view=SHIPPED_GROUPS["context"].make_view,
    )
    document = asyncapi_document(AgentfluxSettings(), [extra])
    operations = document["operations"]
    assert operations["finance_ledger_consumes_tool_events"]["bindings"]["kafka"]["groupId"][
        "enum"
    ] == ["finance.ledger"]
    assert "ops_extra_consumes_hitl_events" in operations
    assert "agentflux_audit_consumes_tool_events" in operations
    listed = CliRunner().invoke(app, ["docs", "asyncapi", "--app", "finance_team:group"])
    assert listed.exit_code == 0, listed.output
    assert "finance_ledger_consumes_tool_events" in json.loads(listed.output)["operations"]
