"""``agentflux acls apply`` and ``agentflux users add|list|remove``: teams' access as code."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.console import Console

from agentflux._acls import AclPlan, add_user, apply_acls, list_users, remove_user
from agentflux._cli_contract import (  # the one loader of --file, shared with `topics`
    TopicsFile,
    _declaration,
)
from agentflux._cli_errors import InputError, NotFoundError, RefusedError
from agentflux.kafka import AgentfluxSettings, run_event_loop
from agentflux.kafka._gate._security import UnknownScramUserError

__all__ = ["PASSWORD_ENV", "register"]

PASSWORD_ENV = "AGENTFLUX_USER_PASSWORD"  # noqa: S105  # the variable's name, not a password
_console = Console(soft_wrap=True, highlight=False)

acls_app = typer.Typer(help="ACLs as code: the teams of schemas/topics.yaml.", no_args_is_help=True)
users_app = typer.Typer(help="SCRAM-SHA-512 users of the cluster.", no_args_is_help=True)


def _print_plan(plan: AclPlan, *, dry_run: bool) -> None:
    would = "would " if dry_run else ""
    for binding in plan.create:
        _console.print(f"{would}create  {binding}")
    for binding in plan.drift:
        _console.print(f"{would}delete  {binding}  (drift: not in the declaration)")
    for binding in plan.unmanaged:
        action = f"{would}delete" if plan.pruned else "keep   "
        _console.print(f"{action}  {binding}  (unmanaged: principal not in the declaration)")
    if plan.in_sync:
        _console.print("no change: the cluster's ACLs match the declaration")


@acls_app.command("apply")
def acls_apply(
    file: TopicsFile = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan and the drift, change nothing.")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune", help="Also delete the ACLs of principals the declaration does not name."
        ),
    ] = False,
) -> None:
    """Make the cluster's ACLs match the teams: create missing ones, delete the teams' others."""
    settings = AgentfluxSettings()
    declaration = _declaration(file, settings)
    plan = run_event_loop(apply_acls(settings, declaration, dry_run=dry_run, prune=prune))
    _print_plan(plan, dry_run=dry_run)


def _password() -> str:
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    if sys.stdin.isatty():
        typed: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        return typed
    return sys.stdin.readline().rstrip("\n")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The user name; its principal is User:NAME.")],
) -> None:
    """Create a SCRAM-SHA-512 user, or give it a new password.

    The password comes from AGENTFLUX_USER_PASSWORD, else from standard input (a prompt on a
    terminal); never from the command line, where other users of the machine could see it.
    """
    password = _password()
    if not password:
        raise InputError(
            f"no password for {name}",
            f"pipe it on standard input or set {PASSWORD_ENV}",
        )
    run_event_loop(add_user(AgentfluxSettings(), name, password))
    _console.print(f"user {name} has SCRAM-SHA-512 credentials (principal User:{name})")


@users_app.command("list")
def users_list() -> None:
    """List the users with SCRAM credentials: name, principal, mechanisms and iterations."""
    users = run_event_loop(list_users(AgentfluxSettings()))
    for user in users:
        mechanisms = ", ".join(f"{name} ({n} iterations)" for name, n in user.credentials)
        _console.print(f"{user.name}  {user.principal}  {mechanisms}")
    if not users:
        _console.print("no user has SCRAM credentials")


@users_app.command("remove")
def users_remove(
    name: Annotated[str, typer.Argument(help="The user whose SCRAM credentials go.")],
) -> None:
    """Delete a user's SCRAM credentials: it can no longer log in. Its ACLs stay as they are."""
    settings = AgentfluxSettings()
    if name == settings.sasl_username:
        raise RefusedError(
            f"refused: {name} is the user this command logs in as",
            "remove it as another administrator, so that one can still log in",
        )
    try:
        removed = run_event_loop(remove_user(settings, name))
    except UnknownScramUserError as exc:
        raise NotFoundError(str(exc), "`agentflux users list` shows who has credentials") from None
    _console.print(
        f"user {name} removed ({', '.join(removed)}); its ACLs are unchanged "
        "(`agentflux acls apply` deletes those of principals topics.yaml no longer names "
        "with --prune)"
    )


def register(app: typer.Typer) -> None:
    """Add the security commands to the root command line."""
    app.add_typer(acls_app, name="acls")
    app.add_typer(users_app, name="users")
