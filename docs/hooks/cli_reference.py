"""mkdocs hook: the CLI reference page (cli.md), generated from the typer app at build time.

Typer ships the generator (``typer MODULE utils docs``, its documented way to write a CLI's
Markdown docs); it walks the same command tree ``--help`` prints from, so the page cannot drift
from the code. Run in a child process: typer's command line is its public interface.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

from mkdocs.structure.files import File

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

PAGE = "cli.md"
NOTE = (
    "Generated from the `agentflux` command's own definitions each time the site is built "
    "(`typer agentflux.cli utils docs`); `agentflux COMMAND --help` prints the same."
)


def render_cli(module: str = "agentflux.cli", program: str = "agentflux") -> str:
    """The whole CLI reference page for the typer app in ``module``."""
    generated = subprocess.run(
        [sys.executable, "-m", "typer", module, "utils", "docs", "--name", program],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # typer titles the page with the program's name; the site's navigation calls it this.
    body = generated.split("\n", 1)[1] if generated.startswith("# ") else generated
    return f"# CLI reference\n\n{NOTE}\n{body}\n{exit_codes()}"


def exit_codes() -> str:
    """The exit codes every command uses, from the command line's own table."""
    from agentflux._cli_errors import EXIT_CODES  # noqa: PLC0415  # only when the page is built

    rows = [f"| {int(code)} | {meaning} |" for code, meaning in EXIT_CODES.items()]
    return "\n".join(["## Exit codes", "", "| code | meaning |", "|---|---|", *rows, ""])


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated page to the site."""
    files.append(File.generated(config, PAGE, content=render_cli()))
    return files
