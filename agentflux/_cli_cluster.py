"""``agentflux fetch|up|status|down|node``: the local platform, with no Docker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agentflux._local import LocalCluster, fetch_artifacts
from agentflux.kafka import AgentfluxSettings

__all__ = ["register"]

_console = Console(soft_wrap=True)

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Where the cluster keeps its data, logs and pids (default: AGENTFLUX_STATE_DIR "
        "or ./.agentflux).",
    ),
]


def _cluster(state_dir: Path | None) -> LocalCluster:
    return LocalCluster(state_dir or AgentfluxSettings().state_dir)


def fetch() -> None:
    """Fetch the Kafka and Apicurio Registry artifacts from Maven Central (once; cached)."""
    artifacts = fetch_artifacts()
    _console.print(f"kafka classpath: {len(artifacts.kafka_classpath.split(':'))} jars")
    _console.print(f"registry: {artifacts.apicurio_jar}")


def up(
    nodes: Annotated[int, typer.Option("--nodes", min=1, max=3, help="1 or 3 KRaft nodes.")] = 1,
    state_dir: StateDir = None,
    secure: Annotated[
        bool,
        typer.Option(
            "--secure",
            help="SASL_SSL listeners (SCRAM-SHA-512, TLS from a local CA) and ACLs enforced; "
            "a new cluster only (docs: Security).",
        ),
    ] = False,
) -> None:
    """Start the local Kafka cluster and schema registry and wait until both answer."""
    if nodes == 2:  # noqa: PLR2004  # a 2-voter quorum survives no failure: refuse it
        raise typer.BadParameter(
            "use 1 node for development or 3 for failure tests", param_hint="--nodes"
        )
    cluster = _cluster(state_dir)
    state = cluster.up(nodes, secure=secure)  # a ClusterError is reported by the command line
    how = "SASL_SSL, SCRAM-SHA-512, ACLs enforced" if state.secure else "PLAINTEXT"
    _console.print(f"kafka    {state.bootstrap_servers}  ({nodes} node(s), KRaft, {how})")
    _console.print(f"registry {state.registry_url}")
    # Not starting with "export": `eval "$(agentflux up | grep ^export)"` takes the lines below.
    _console.print("\nthe settings, for other shells:")
    print(f"export AGENTFLUX_BOOTSTRAP_SERVERS={state.bootstrap_servers}")
    print(f"export AGENTFLUX_REGISTRY_URL={state.registry_url}")
    if state.secure:
        # The password is read from its file by the shell: it is never printed.
        for name, value in cluster.security.exports().items():
            print(f"export {name}={value}")
    # A development cluster: publishers may register their own schemas (never in production).
    print("export AGENTFLUX_AUTO_REGISTER_SCHEMAS=true")


def status(state_dir: StateDir = None) -> None:
    """Show what the local launcher runs (ports, pids), as JSON."""
    print(json.dumps(_cluster(state_dir).status(), indent=2))


def down(state_dir: StateDir = None) -> None:
    """Stop the registry and every node; data stays for the next `up`."""
    _cluster(state_dir).down()
    _console.print("stopped")


node_app = typer.Typer(
    help="Stop, kill or start one node of the local cluster.", no_args_is_help=True
)


@node_app.command("stop")
def node_stop(node_id: int, state_dir: StateDir = None) -> None:
    """Stop one node with SIGTERM (a clean shutdown)."""
    _cluster(state_dir).stop_node(node_id)


@node_app.command("kill")
def node_kill(node_id: int, state_dir: StateDir = None) -> None:
    """Kill one node with SIGKILL (a crash)."""
    _cluster(state_dir).stop_node(node_id, kill=True)


@node_app.command("start")
def node_start(node_id: int, state_dir: StateDir = None) -> None:
    """Start one stopped node and wait until the cluster sees it."""
    _cluster(state_dir).start_node(node_id)


def register(app: typer.Typer) -> None:
    """Add the local-platform commands to the root command line."""
    for command in (fetch, up, status, down):
        app.command()(command)
    app.add_typer(node_app, name="node")
