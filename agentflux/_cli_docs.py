"""``agentflux docs asyncapi``: the AsyncAPI 3.0 document other teams discover the events from."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path  # noqa: TC003  # typer reads the annotation at run time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agentflux._asyncapi import ChannelSource, ConsumerGroupSource, MessageSource, build_asyncapi
from agentflux._group_lookup import known_groups, load_app
from agentflux.kafka import AgentfluxSettings
from agentflux.schemas import EVENT_MODELS, HEADER_DOCS, load_schema, load_topics

if TYPE_CHECKING:
    from collections.abc import Sequence

    from agentflux.consumers import GroupSpec

__all__ = ["asyncapi_document", "register"]

docs_app = typer.Typer(help="Generated documentation.", no_args_is_help=True)


def asyncapi_document(
    settings: AgentfluxSettings, extra_groups: Sequence[GroupSpec] = ()
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the declared topics, Avro messages and groups.

    The groups: the shipped ones, the installed ones (``agentflux.groups`` entry points) and
    ``extra_groups`` (a team's, named by ``--app``).
    """
    declaration = load_topics()
    channels = []
    for spec in declaration.topics:
        messages = [
            MessageSource(
                name=model.RECORD_NAME.rpartition(".")[2],
                event_type=model.EVENT_TYPE.value,
                record_name=model.RECORD_NAME,
                avro_schema=load_schema(model),
                summary=(model.__doc__ or "").strip(),
            )
            for model in EVENT_MODELS.values()
            if model.EVENT_TYPE.category == spec.category
        ]
        channels.append(
            ChannelSource(
                topic=settings.topic_prefix + spec.name,
                description=spec.description,
                owner=spec.owner,
                partitions=spec.partitions,
                replication_factor=spec.replication_factor,
                configs=spec.configs(),
                messages=messages,
            ),
        )
    specs = {found.spec.group_id: found.spec for found in known_groups()}
    specs.update({spec.group_id: spec for spec in extra_groups})
    groups = [
        ConsumerGroupSource(spec.group_id, spec.description, spec.topics(settings))
        for spec in specs.values()
    ]
    return build_asyncapi(
        version=metadata.version("agentflux"),
        bootstrap_servers=settings.bootstrap_servers,
        registry_url=settings.registry_url,
        channels=channels,
        groups=groups,
        headers=HEADER_DOCS,
    )


@docs_app.command("asyncapi")
def asyncapi(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    app: Annotated[
        list[str] | None,
        typer.Option(
            "--app",
            help="Also a team's group not installed, as module:attribute (repeatable).",
        ),
    ] = None,
) -> None:
    """Write the AsyncAPI 3.0 document (JSON) of topics, messages, keys, headers and groups."""
    extra = [load_app(reference) for reference in app or ()]
    text = json.dumps(asyncapi_document(AgentfluxSettings(), extra), indent=2) + "\n"
    if output is None:
        print(text, end="")
    else:
        output.write_text(text)


def register(app: typer.Typer) -> None:
    """Add ``docs`` to the root command line."""
    app.add_typer(docs_app, name="docs")
