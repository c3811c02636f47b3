"""The topics declaration: the shipped one is co-partitioned, and one that is not is refused."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import yaml
from pydantic import ValidationError

from agentflux._schemas import default_root
from agentflux.schemas import load_topics

if TYPE_CHECKING:
    from pathlib import Path


def test_the_shipped_category_topics_are_copartitioned() -> None:
    """Every category topic has the same partition count, so partition N holds the same sessions."""
    counts = {t.partitions for t in load_topics().topics if t.category is not None}
    assert counts == {6}


def test_category_topics_with_different_counts_are_refused(tmp_path: Path) -> None:
    """A declaration whose category topics differ in partition count names them and is refused."""
    declared = yaml.safe_load((default_root().parent / "topics.yaml").read_text())
    next(t for t in declared["topics"] if t["name"] == "hitl.events")["partitions"] = 3
    path = tmp_path / "topics.yaml"
    path.write_text(yaml.safe_dump(declared))
    with pytest.raises(ValidationError, match=r"same partition count.*hitl\.events 3"):
        load_topics(path)
