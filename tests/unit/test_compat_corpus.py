"""The offline gate against Apache Avro's own checker, on every change of the corpus."""

from __future__ import annotations

import json
from typing import Any

import avro.schema
import pytest
from _compat_corpus import CORPUS, DISAGREEMENTS, Change
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from agentflux.schemas._compat import can_read, check_levels

_LEVELS = (
    "BACKWARD",
    "FORWARD",
    "FULL",
    "BACKWARD_TRANSITIVE",
    "FORWARD_TRANSITIVE",
    "FULL_TRANSITIVE",
)


def _avro_reads(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        avro.schema.parse(json.dumps(reader)), avro.schema.parse(json.dumps(writer))
    )
    return result.compatibility is SchemaCompatibilityType.compatible


def _expected(case: Change, checker: str, direction: str) -> bool:
    verdict: bool = getattr(case, direction)
    known = [
        d
        for d in DISAGREEMENTS
        if (d.case, d.checker, d.direction) == (case.name, checker, direction)
    ]
    return known[0].says if known else verdict


def test_the_corpus_is_large_and_named_once() -> None:
    """At least 40 changes, each named once, with every allow-listed disagreement in it."""
    names = [c.name for c in CORPUS]
    assert len(names) >= 40
    assert len(set(names)) == len(names)
    assert {d.case for d in DISAGREEMENTS} <= set(names)


def test_every_disagreement_has_the_gate_stricter() -> None:
    """A second opinion may only accept what the gate refuses, never the other way round."""
    for known in DISAGREEMENTS:
        case = next(c for c in CORPUS if c.name == known.case)
        assert getattr(case, known.direction) is False, known
        assert known.says is True, known
        assert known.reason, known


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_gate_follows_the_corpus(case: Change) -> None:
    """The offline gate's verdict is the corpus's, each way and at every level."""
    assert (can_read(case.new, case.old) == []) is case.backward, can_read(case.new, case.old)
    assert (can_read(case.old, case.new) == []) is case.forward, can_read(case.old, case.new)
    verdicts = {"BACKWARD": case.backward, "FORWARD": case.forward, "FULL": case.full}
    for level in _LEVELS:
        expected = verdicts[level.removesuffix("_TRANSITIVE")]
        assert (check_levels(case.new, [case.old], level) == []) is expected, level


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_apache_avro_agrees(case: Change) -> None:
    """Apache Avro's checker says what the corpus says, except for the allow-listed cases."""
    assert _avro_reads(case.new, case.old) is _expected(case, "avro", "backward")
    assert _avro_reads(case.old, case.new) is _expected(case, "avro", "forward")
