"""``agentflux docs asyncapi``: the AsyncAPI 3.0 document other teams discover the events from."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path  # noqa: TC003  # typer reads the annotation at run time
from typing import Annotated, Any

import typer

from agentflux._asyncapi import ChannelSource, ConsumerGroupSource, MessageSource, build_asyncapi
from agentflux.consumers._groups import SHIPPED_GROUPS
from agentflux.kafka import AgentfluxSettings
from agentflux.schemas import EVENT_MODELS, HEADER_DOCS, load_schema, load_topics

__all__ = ["asyncapi_document", "register"]

docs_app = typer.Typer(help="Generated documentation.", no_args_is_help=True)


def asyncapi_document(settings: AgentfluxSettings) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the declared topics, Avro messages and shipped groups."""
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
    groups = [
        ConsumerGroupSource(group.group_id, group.description, group.topics(settings))
        for group in SHIPPED_GROUPS.values()
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
) -> None:
    """Write the AsyncAPI 3.0 document (JSON) of topics, messages, keys, headers and groups."""
    text = json.dumps(asyncapi_document(AgentfluxSettings()), indent=2) + "\n"
    if output is None:
        print(text, end="")
    else:
        output.write_text(text)


def register(app: typer.Typer) -> None:
    """Add ``docs`` to the root command line."""
    app.add_typer(docs_app, name="docs")
