"""Every command's expected failure: one or two lines, a documented exit code, nothing left behind.

No cluster, registry or database runs here: the commands are pointed at a closed port, at
missing and malformed files, and at empty stores. Each command runs in its own process (as a
person runs it, and so that warnings printed when the interpreter exits are seen); they all run
at once, a few at a time, before the first test looks at them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
from _cli import CliResult, run_agentflux
from typer.testing import CliRunner

from agentflux._cli_errors import EXIT_CODES, ExitCode
from agentflux._local._ports import free_ports
from agentflux.cli import app
from agentflux.consumers import AuditView, ContextView, SqliteStore

if TYPE_CHECKING:
    from pathlib import Path

# What a command must never leave on the screen, whatever failed.
_LEFTOVERS = ("Traceback", "Task was destroyed", "Unclosed AIOKafka", "coroutine was never")


@dataclass(frozen=True)
class Case:
    """One command, how it must end, and what its message must say."""

    args: tuple[str, ...]
    code: ExitCode
    says: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    service: bool = False  # a long-running service: it logs its lifecycle before the message


_PORT = free_ports(1)[0]  # free now, nobody listens on it: "no cluster, no registry"
_KAFKA = f"no Kafka answers at 127.0.0.1:{_PORT}"
_REGISTRY = f"no schema registry answers at http://127.0.0.1:{_PORT}"

CASES: dict[str, Case] = {
    "lag, no cluster": Case(("lag",), ExitCode.UNREACHABLE, (_KAFKA, "agentflux up")),
    "consume, no cluster": Case(
        ("consume", "audit", "--store", "sqlite:///{tmp}/service.db"),
        ExitCode.UNREACHABLE,
        (_KAFKA,),
        service=True,
    ),
    "lag of a group, no cluster": Case(("lag", "-g", "x"), ExitCode.UNREACHABLE, (_KAFKA,)),
    "replay, no cluster": Case(
        ("replay", "-g", "x", "--to", "earliest"), ExitCode.UNREACHABLE, (_KAFKA,)
    ),
    "replay, bad target": Case(
        ("replay", "-g", "x", "--to", "yesterday"), ExitCode.USAGE, ("replay target",)
    ),
    "tail, no cluster": Case(("tail", "--limit", "1"), ExitCode.UNREACHABLE, (_KAFKA,)),
    "topics apply, no cluster": Case(("topics", "apply"), ExitCode.UNREACHABLE, (_KAFKA,)),
    "topics describe, no cluster": Case(("topics", "describe"), ExitCode.UNREACHABLE, (_KAFKA,)),
    "simulate, no cluster": Case(
        ("simulate", "-n", "1", "--connect-timeout", "0.5"), ExitCode.UNREACHABLE, (_KAFKA,)
    ),
    "rebuild, no cluster": Case(
        ("rebuild", "audit", "--into", "sqlite:///{tmp}/rebuilt.db", "--no-compare"),
        ExitCode.UNREACHABLE,
        (_KAFKA,),
    ),
    "dlq list, no cluster": Case(("dlq", "list", "-g", "audit"), ExitCode.UNREACHABLE, (_KAFKA,)),
    "schemas register, no registry": Case(
        ("schemas", "register"),
        ExitCode.UNREACHABLE,
        (_REGISTRY, "AGENTFLUX_REGISTRY_URL"),
        {"AGENTFLUX_REGISTRY_RETRIES": "0"},
    ),
    "schemas register, missing schemas folder": Case(
        ("schemas", "register", "--root", "{tmp}/missing"),
        ExitCode.USAGE,
        ("no schemas folder at",),
    ),
    "context, missing default store": Case(
        ("context", "s-1"), ExitCode.NOT_FOUND, ("no store at sqlite:///{tmp}/views.db",)
    ),
    "context, missing store in a missing folder": Case(
        ("context", "s-1", "--store", "sqlite:///{tmp}/new-dir/x.db"),
        ExitCode.NOT_FOUND,
        ("no store at", "agentflux consume context"),
    ),
    "audit verify, missing store": Case(
        ("audit", "verify", "--store", "sqlite:///{tmp}/nope.db"),
        ExitCode.NOT_FOUND,
        ("no store at sqlite:///{tmp}/nope.db",),
    ),
    "metrics, missing store": Case(
        ("metrics", "--store", "sqlite:///{tmp}/nope.db"), ExitCode.NOT_FOUND, ("no store at",)
    ),
    "audit, a store without the view": Case(
        ("audit", "--store", "sqlite:///{tmp}/empty.db"),
        ExitCode.NOT_FOUND,
        ("holds no audit view", "audit_chain"),
    ),
    "context, a file that is not a database": Case(
        ("context", "s-1", "--store", "sqlite:///{tmp}/not-a-db.db"),
        ExitCode.USAGE,
        ("cannot open", "as a SQLite store"),
    ),
    "metrics, unsupported store URL": Case(
        ("metrics", "--store", "mysql://x/y"), ExitCode.USAGE, ("unsupported store URL",)
    ),
    "audit, PostgreSQL not running": Case(
        ("audit", "--store", f"postgresql://me:s3cret@127.0.0.1:{_PORT}/views"),
        ExitCode.UNREACHABLE,
        (f"no PostgreSQL answers for postgresql://me:***@127.0.0.1:{_PORT}/views",),
    ),
    "context, unknown session": Case(
        ("context", "s-nope", "--store", "sqlite:///{tmp}/views-context.db"),
        ExitCode.NOT_FOUND,
        ("no session 's-nope'",),
    ),
    "audit, unknown session": Case(
        ("audit", "--session", "s-nope", "--store", "sqlite:///{tmp}/views-audit.db"),
        ExitCode.NOT_FOUND,
        ("no audit record of session 's-nope'",),
    ),
    "audit verify, an empty chain is intact": Case(
        ("audit", "verify", "--store", "sqlite:///{tmp}/views-audit.db"), ExitCode.OK, ()
    ),
    "audit, unknown event type": Case(
        ("audit", "--type", "agent_exploded"),
        ExitCode.USAGE,
        ("unknown event type 'agent_exploded'", "agent_switched"),
    ),
    "tail, unknown event type": Case(
        ("tail", "--type", "agent_exploded"), ExitCode.USAGE, ("unknown event type",)
    ),
    "topics apply, malformed YAML": Case(
        ("topics", "apply", "--file", "{tmp}/broken.yaml"),
        ExitCode.USAGE,
        ("broken.yaml is not valid YAML: line",),
    ),
    "topics describe, not a declaration": Case(
        ("topics", "describe"),
        ExitCode.USAGE,
        ("wrong.yaml is not a topics declaration",),
        {"AGENTFLUX_TOPICS_FILE": "{tmp}/wrong.yaml"},
    ),
    "topics apply, missing declaration": Case(
        ("topics", "apply", "-f", "{tmp}/none.yaml"),
        ExitCode.NOT_FOUND,
        ("no topics declaration at",),
    ),
    "consume, unknown group": Case(
        ("consume", "billing"), ExitCode.NOT_FOUND, ("no group 'billing'", "--app")
    ),
    "dlq, unknown group": Case(
        ("dlq", "list", "-g", "billing"), ExitCode.NOT_FOUND, ("no group 'billing'", "--app")
    ),
    "a bad log level": Case(
        ("lag",), ExitCode.USAGE, ("invalid LogSettings", "level"), {"AGENTFLUX_LOG_LEVEL": "loud"}
    ),
    "a bad setting": Case(
        ("lag",),
        ExitCode.USAGE,
        ("invalid AgentfluxSettings", "event_loop", "AGENTFLUX_"),
        {"AGENTFLUX_EVENT_LOOP": "tokio"},
    ),
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the stores and files the cases point at, and no ``.env``."""
    tmp = tmp_path_factory.mktemp("cli-failures")
    (tmp / "broken.yaml").write_text("topics:\n  - name: [unclosed\n")
    (tmp / "wrong.yaml").write_text("topics: 3\n")
    (tmp / "not-a-db.db").write_text("hello, I am text\n" * 100)
    sqlite3.connect(tmp / "empty.db").close()

    async def views() -> None:
        for name, view in (("context", ContextView()), ("audit", AuditView())):
            async with SqliteStore(tmp / f"views-{name}.db") as store:
                await store.migrate(view.ddl)

    asyncio.run(views())
    return tmp


def _env(tmp: Path, extra: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("AGENTFLUX_")}
    return keep | {
        "AGENTFLUX_BOOTSTRAP_SERVERS": f"127.0.0.1:{_PORT}",
        "AGENTFLUX_REGISTRY_URL": f"http://127.0.0.1:{_PORT}/apis/ccompat/v7",
        "AGENTFLUX_STORE_URL": f"sqlite:///{tmp}/views.db",
        "AGENTFLUX_STATE_DIR": str(tmp / "state"),
        "AGENTFLUX_LOG_FORMAT": "console",
        "COLUMNS": "200",
        **{k: v.format(tmp=tmp) for k, v in extra.items()},
    }


async def _run(tmp: Path, case: Case, gate: asyncio.Semaphore) -> CliResult:
    async with gate:
        args = (arg.format(tmp=tmp) for arg in case.args)
        return await run_agentflux(*args, env=_env(tmp, case.env), cwd=tmp, timeout_s=60)


@pytest.fixture(scope="module")
def runs(workdir: Path) -> dict[str, CliResult]:
    """Every case's command, run once (three at a time: the machine is shared)."""

    async def all_cases() -> list[CliResult]:
        gate = asyncio.Semaphore(3)
        return await asyncio.gather(*(_run(workdir, case, gate) for case in CASES.values()))

    return dict(zip(CASES, asyncio.run(all_cases()), strict=True))


@pytest.mark.parametrize("name", CASES)
def test_failure_says_what_failed_and_exits_with_its_code(
    name: str, runs: dict[str, CliResult], workdir: Path
) -> None:
    """The command exits with the documented code and its message names what failed and why."""
    run, case = runs[name], CASES[name]
    assert run.code == case.code, run.stdout + run.stderr
    for words in case.says:
        assert words.format(tmp=workdir) in run.stderr, run.stderr


@pytest.mark.parametrize(
    "name",
    [name for name, case in CASES.items() if case.code != ExitCode.OK and not case.service],
)
def test_failure_is_two_lines_without_traceback_or_leftovers(
    name: str, runs: dict[str, CliResult]
) -> None:
    """A failure is at most two lines on stderr: no traceback, no unclosed client, no lost task."""
    run = runs[name]
    for leftover in _LEFTOVERS:
        assert leftover not in run.stderr, run.stderr
    if "Usage:" in run.stderr:
        return  # typer's own report of a bad command line: its usage, the option, the error
    assert len(run.stderr.splitlines()) <= 2, run.stderr
    assert run.stderr.startswith("error: "), run.stderr


def test_reading_commands_create_no_store_or_folder(
    runs: dict[str, CliResult], workdir: Path
) -> None:
    """Commands that only read leave no database or folder behind where none was."""
    assert not (workdir / "views.db").exists()
    assert not (workdir / "nope.db").exists()
    assert not (workdir / "new-dir").exists()


def test_a_service_failure_leaves_nothing_behind_either(runs: dict[str, CliResult]) -> None:
    """A service that cannot start logs its lifecycle and the message, and nothing else."""
    run = runs["consume, no cluster"]
    for leftover in _LEFTOVERS:
        assert leftover not in run.stderr, run.stderr
    assert run.stderr.splitlines()[-2].startswith("error: "), run.stderr


def test_json_failure_with_debug_carries_the_traceback(workdir: Path) -> None:
    """In JSON mode --debug adds the traceback to the failure's one JSON object."""
    case = Case(
        ("--debug", "context", "s-1"), ExitCode.NOT_FOUND, (), {"AGENTFLUX_LOG_FORMAT": "json"}
    )
    run = asyncio.run(_run(workdir, case, asyncio.Semaphore(1)))
    (line,) = run.stderr.splitlines()
    failure = json.loads(line)
    assert failure["exit_code"] == run.code == ExitCode.NOT_FOUND
    chain = {exception["exc_type"] for exception in failure["exception"]}
    assert chain == {"NotFoundError", "StoreNotFoundError"}  # the message's, and its cause


def test_help_lists_the_exit_codes() -> None:
    """`agentflux --help` ends with the table of exit codes, from the one place that defines them."""
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())
    for code, meaning in EXIT_CODES.items():
        assert f"{int(code)} {meaning}" in text, text


def test_debug_shows_the_traceback_too(workdir: Path) -> None:
    """With --debug the traceback comes first, then the same message and exit code."""
    case = Case(("--debug", "context", "s-1"), ExitCode.NOT_FOUND, ("no store at",))
    run = asyncio.run(_run(workdir, case, asyncio.Semaphore(1)))
    assert run.code == ExitCode.NOT_FOUND
    assert "Traceback (most recent call last)" in run.stderr
    assert "StoreNotFoundError" in run.stderr
    assert run.stderr.rstrip().splitlines()[-2].startswith("error: no store at")
