"""The generator of the event models: current output, clear refusals, the old bus's ``data``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import agentflux.schemas
from agentflux._schemas import default_root
from agentflux.schemas import AgentSwitchedEvent, HitlDecision, HitlDecisionMadeEvent
from agentflux.schemas._modelgen import GenerationError, generate

_ROOT = default_root()
_PACKAGE = Path(agentflux.schemas.__file__).parent


def _copy(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A scratch copy of the contract: (schemas/avro, topics.yaml, a package folder)."""
    shutil.copytree(_ROOT, tmp_path / "avro")
    shutil.copy(_ROOT.parent / "topics.yaml", tmp_path / "topics.yaml")
    (tmp_path / "package").mkdir()
    return tmp_path / "avro", tmp_path / "topics.yaml", tmp_path / "package"


def _edit(path: Path, change: dict[str, object]) -> None:
    schema = json.loads(path.read_text())
    schema["fields"][-1] |= change
    path.write_text(json.dumps(schema, indent=2) + "\n")


def test_checked_in_output_is_current() -> None:
    """The models, catalogue and envelope copies in the repository are what the .avsc files give."""
    assert generate(_ROOT, _ROOT.parent / "topics.yaml", _PACKAGE).stale() == []


def test_a_second_run_writes_nothing(tmp_path: Path) -> None:
    """Generating twice writes the files once: the output is stable."""
    root, topics, package = _copy(tmp_path)
    assert {p.name for p in generate(root, topics, package).write()} == {
        "_catalogue.py",
        "_events.py",
    }
    assert generate(root, topics, package).write() == []


def test_an_envelope_change_reaches_every_event_schema(tmp_path: Path) -> None:
    """A field added to envelope.avsc is copied into the head of all 22 event schemas."""
    root, topics, package = _copy(tmp_path)
    envelope = json.loads((root / "envelope.avsc").read_text())
    envelope["fields"].append({"name": "region", "type": "string", "default": "eu"})
    (root / "envelope.avsc").write_text(json.dumps(envelope, indent=2) + "\n")
    written = generate(root, topics, package).write()
    assert len([p for p in written if p.suffix == ".avsc"]) == 22
    schema = json.loads((root / "tool" / "ToolExecutionStarted.avsc").read_text())
    names = [f["name"] for f in schema["fields"]]
    assert names[len(envelope["fields"]) - 1] == "region"
    assert names[len(envelope["fields"]) :] == ["call_id", "tool_name"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": {"type": "array", "items": "string"}}, "field tool_name: type"),
        ({"type": ["null", "string", "long"]}, "field tool_name: only unions of null"),
        ({"agentflux.constraint": "short"}, "field tool_name: agentflux.constraint must be"),
        ({"default": [1]}, r"field tool_name: default \[1\] is not supported"),
    ],
)
def test_an_unsupported_field_is_refused_naming_file_and_field(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    """A field the models cannot express is refused with the schema file and field named."""
    root, topics, package = _copy(tmp_path)
    _edit(root / "tool" / "ToolExecutionStarted.avsc", change)
    with pytest.raises(GenerationError, match=f"tool/ToolExecutionStarted.avsc: {message}"):
        generate(root, topics, package)


def test_a_category_without_a_topic_is_refused(tmp_path: Path) -> None:
    """A schema in a category that topics.yaml does not declare names the topic to add."""
    root, topics, package = _copy(tmp_path)
    (root / "billing").mkdir()
    schema = json.loads((root / "tool" / "ToolExecutionStarted.avsc").read_text())
    schema |= {"name": "BillingCharged", "namespace": "agentflux.events.billing"}
    schema["fields"][1]["default"] = "billing_charged"
    (root / "billing" / "BillingCharged.avsc").write_text(json.dumps(schema))
    with pytest.raises(GenerationError, match=r"declare billing\.events"):
        generate(root, topics, package)


def test_an_event_type_without_its_default_is_refused(tmp_path: Path) -> None:
    """Each schema must fix its event type (the event_type field's default) in its category."""
    root, topics, package = _copy(tmp_path)
    path = root / "tool" / "ToolExecutionStarted.avsc"
    schema = json.loads(path.read_text())
    schema["fields"][1]["default"] = "session_started"
    path.write_text(json.dumps(schema))
    with pytest.raises(GenerationError, match="default starting with tool_"):
        generate(root, topics, package)


def test_event_data_is_the_payload_as_the_old_bus_gave_it() -> None:
    """``event.data`` maps the event's own fields to their values, the envelope left out."""
    event = AgentSwitchedEvent(session_id="s-1", from_agent="orchestrator", to_agent="coder")
    assert event.data == {"from_agent": "orchestrator", "to_agent": "coder", "reason": ""}
    decision = HitlDecisionMadeEvent(
        session_id="s-1", approval_id="a-1", approver="ann", decision="APPROVED"
    )
    assert decision.data["decision"] is HitlDecision.APPROVED
