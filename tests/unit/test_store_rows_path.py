"""A store-backed runner's fetch path with no broker: views fold rows as they fold models."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from _traffic import events_of
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata, TopicPartition

from agentflux._rebuild import view_tables
from agentflux.consumers import GroupRunner, Position, SqliteStore
from agentflux.consumers._groups import SHIPPED_GROUPS
from agentflux.producers import Simulator
from agentflux.schemas import EVENT_MODELS, AvroCodec, BaseEvent, RegistryClient
from agentflux.schemas._codec import load_schema
from agentflux.schemas._compiled import compile_encoder

if TYPE_CHECKING:
    from pathlib import Path

    from agentflux.consumers import View

_IDS = {model: 100 + index for index, model in enumerate(EVENT_MODELS.values())}


class _Consumer:
    """What the store path asks of the consumer: assignment, high waters, catch-up, commits."""

    def __init__(self, partitions: set[TopicPartition]) -> None:
        self.partitions = partitions
        self.committed: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return self.partitions

    def highwater(self, _tp: TopicPartition) -> int | None:
        return None

    async def getmany(self, **_limits: int) -> dict[TopicPartition, list[Any]]:
        return {}  # nothing arrived while a write ran: the test hands the runner its fetches

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.committed.update({tp: offset.offset for tp, offset in offsets.items()})


def _registry(request: httpx.Request) -> httpx.Response:
    schema_id = int(request.url.path.rsplit("/", 1)[1])
    model = next(model for model, known in _IDS.items() if known == schema_id)
    return httpx.Response(200, json={"schema": json.dumps(load_schema(model))})


def _fetches(events: list[BaseEvent]) -> list[dict[TopicPartition, list[Any]]]:
    """The events as records on 3 partitions per topic, fetched 50 records at a time."""
    by_partition: dict[TopicPartition, list[Any]] = {}
    for event in events:
        tp = TopicPartition(event.topic, sum(map(ord, event.session_id)) % 3)
        records = by_partition.setdefault(tp, [])
        encode = compile_encoder(load_schema(type(event)))
        assert encode is not None
        value = encode(bytes([0]) + _IDS[type(event)].to_bytes(4, "big"), vars(event))
        records.append(ConsumerRecord(tp.topic, tp.partition, len(records), 0, 0, None, value, None, 0, len(value), ()))  # fmt: skip
    fetches: list[dict[TopicPartition, list[Any]]] = []
    for start in range(0, max(map(len, by_partition.values())), 50):
        fetch = {tp: records[start : start + 50] for tp, records in by_partition.items()}
        fetches.append({tp: records for tp, records in fetch.items() if records})
    return fetches


async def _build(
    path: Path, group: str, events: list[BaseEvent], *, as_models: bool
) -> dict[str, Any]:
    async def nothing(_event: BaseEvent) -> None:
        return

    fetches = _fetches(events)
    async with (
        RegistryClient("http://registry", transport=httpx.MockTransport(_registry)) as client,
        SqliteStore(path) as store,
    ):
        # A handler beside the view: the runner then decodes models, as for any other group.
        handlers = {type(events[0]): nothing} if as_models else {}
        view = SHIPPED_GROUPS[group].view()
        runner = GroupRunner(
            group,
            [],
            views=[view],
            store=store,
            codec=AvroCodec(client),
            handlers=handlers,
        )
        assert (runner._row_view is None) is as_models
        await store.migrate(view.ddl)
        consumer = _Consumer({tp for fetch in fetches for tp in fetch})
        runner._consumer = consumer  # the part of a consumer this path uses
        runner._commits.consumer = consumer
        for fetch in [fetches[0], *fetches]:  # the first fetch delivered twice
            await runner._handle_fetched(fetch)
        await runner._written()
        await runner.commit_now()
        redelivered = sum(map(len, fetches[0].values()))
        assert runner.redelivered == redelivered  # found already applied, left out
        assert runner.handled == len(events) + redelivered
        assert consumer.committed == {tp: len(records) for tp, records in _by_tp(fetches).items()}
        return await _tables(store, view)


async def _tables(store: SqliteStore, view: View) -> dict[str, Any]:
    """Every row of the view's tables, in key order."""
    sql = "SELECT * FROM {} ORDER BY 1, 2"
    return {table: await store.rows(sql.format(table)) for table in view_tables(view)}


def _by_tp(fetches: list[dict[TopicPartition, list[Any]]]) -> dict[TopicPartition, list[Any]]:
    merged: dict[TopicPartition, list[Any]] = {}
    for fetch in fetches:
        for tp, records in fetch.items():
            merged.setdefault(tp, []).extend(records)
    return merged


@pytest.mark.parametrize("group", ["context", "metrics"])
async def test_a_row_view_folds_rows_as_it_folds_models(tmp_path: Path, group: str) -> None:
    """The row path (C or Python) builds the same tables as models do, redelivery included."""
    events = events_of(group, list(Simulator(sessions=30, seed=5).events()))
    as_rows = await _build(tmp_path / "rows.db", group, events, as_models=False)
    as_models = await _build(tmp_path / "models.db", group, events, as_models=True)
    assert as_rows == as_models
    assert all(as_rows.values())  # every table has rows: every fold ran
    view = SHIPPED_GROUPS[group].view()
    async with SqliteStore(tmp_path / "direct.db") as store:
        await store.migrate(view.ddl)
        for offset, event in enumerate(events):  # one by one, as the record-by-record path does
            async with store.transaction() as tx:
                await view.apply(tx, event, Position(event.topic, 0, offset))
        direct = await _tables(store, view)
    assert direct == as_rows
