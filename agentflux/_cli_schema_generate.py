"""``agentflux schemas generate``: the event models and catalogue, from the ``.avsc`` files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agentflux._cli_errors import InputError, RefusedError
from agentflux._schemas import default_root
from agentflux.schemas._modelgen import GenerationError, generate

__all__ = ["add_generate_command"]

_console = Console(soft_wrap=True)


def _package() -> Path:
    import agentflux.schemas  # noqa: PLC0415  # its folder receives the generated modules

    return Path(agentflux.schemas.__file__).parent


def schemas_generate(
    root: Annotated[
        Path | None,
        typer.Option("--root", help="The schemas/avro folder to read (default: the project's)."),
    ] = None,
    topics: Annotated[
        Path | None,
        typer.Option("--topics", help="The topics declaration (default: next to --root)."),
    ] = None,
    package: Annotated[
        Path | None,
        typer.Option("--package", help="The agentflux/schemas folder to write into."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; fail when a generated file is stale (CI)."),
    ] = False,
) -> None:
    """Generate the event models and catalogue from the .avsc files (one source of truth)."""
    root = root or default_root()
    try:
        generated = generate(root, topics or root.parent / "topics.yaml", package or _package())
    except GenerationError as exc:
        raise InputError(str(exc), "fix the schema, then generate again") from None
    if check:
        stale = generated.stale()
        if stale:
            for path in stale:
                _console.print(f"stale: {path}")
            raise RefusedError(
                f"{len(stale)} generated file(s) differ from the .avsc files",
                "run `agentflux schemas generate` and commit the result",
            )
        _console.print("generated files are current")
        return
    written = generated.write()
    for path in written:
        _console.print(f"wrote {path}")
    if not written:
        _console.print("generated files are current")


def add_generate_command(app: typer.Typer) -> None:
    """Add ``generate`` to the ``schemas`` command group."""
    app.command("generate")(schemas_generate)
