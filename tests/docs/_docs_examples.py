"""The Python examples of README.md and docs/: found, and run as a reader would run them.

Our own small collector rather than a plugin: the examples use top-level ``await`` (they are
snippets of async runtime code) and the broker ones must run on the session's event loop, where
the cluster fixtures live; pytest-examples runs code through ``asyncio.run`` of a named
function, mktestdocs and pytest-markdown-docs only ``exec`` synchronous code.

An example is a fenced block whose info string is ``python`` (or ``py``). The line before it
(blank lines aside) may be an HTML comment that says how to test it, invisible on GitHub and
on the site::

    <!-- test: broker -->                 needs the real cluster (marker ``broker``)
    <!-- test: broker, stops: runner -->  runs until ``runner.stop()``; the test calls it once
                                          the example's ``runner`` has handled a record
    <!-- test: continues -->              runs after the page's previous example, in its
                                          namespace (a page that builds something up in steps)

Without a comment an example is fast: no broker, no registry (``InMemoryTransport``).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^`\s]*)(?P<rest>.*)$")
DIRECTIVE = re.compile(r"^\s*<!--\s*test:\s*(?P<words>.*?)\s*-->\s*$")
PYTHON = {"python", "py", "python3"}
KNOWN_WORDS = {"broker", "continues"}
KNOWN_SETTINGS = {"stops"}
RUN_TIMEOUT_S = 120


class ExampleSyntaxError(ValueError):
    """A test directive or a fence the collector does not understand."""


@dataclass(frozen=True, slots=True)
class Example:
    """One fenced Python block of a Markdown file, with how to test it."""

    path: Path
    first_line: int  # 1-based line of the first code line in the Markdown file
    source: str
    broker: bool
    stops: str | None
    prelude: tuple[Example, ...] = ()  # run first, in the same namespace ("continues")

    @property
    def name(self) -> str:
        """The test id: file and line, as an editor opens it."""
        return f"{self.path.relative_to(ROOT)}:{self.first_line}"


def markdown_files() -> list[Path]:
    """README.md and every page under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _directive(lines: list[str], fence_index: int) -> dict[str, str]:
    """The test directive's words before a fence: {word: value or ""}."""
    before = fence_index - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    match = DIRECTIVE.match(lines[before]) if before >= 0 else None
    if match is None:
        return {}
    words: dict[str, str] = {}
    for word in (w.strip() for w in match["words"].split(",")):
        key, _, value = (part.strip() for part in word.partition(":"))
        if not ((key in KNOWN_WORDS and not value) or (key in KNOWN_SETTINGS and value)):
            raise ExampleSyntaxError(f"unknown test directive {word!r}")
        words[key] = value
    return words


def examples_in(path: Path) -> list[Example]:
    """Every Python example of one Markdown file, in order."""
    lines = path.read_text().splitlines()
    found: list[Example] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = next(
            (i for i in range(index + 1, len(lines)) if lines[i].strip() == "```"),
            None,
        )
        if end is None:
            raise ExampleSyntaxError(f"{path}:{index + 1}: a fence that never closes")
        if opening["info"] in PYTHON:
            if opening["rest"].strip():
                raise ExampleSyntaxError(f"{path}:{index + 1}: options on a Python fence")
            words = _directive(lines, index)
            prelude: tuple[Example, ...] = ()
            if "continues" in words:
                if not found:
                    raise ExampleSyntaxError(f"{path}:{index + 1}: continues no example")
                prelude = (*found[-1].prelude, found[-1])
            indent = len(opening["indent"])
            source = "\n".join(line[indent:] for line in lines[index + 1 : end])
            broker = "broker" in words or any(e.broker for e in prelude)
            found.append(Example(path, index + 2, source, broker, words.get("stops"), prelude))
        index = end + 1
    return found


def all_examples() -> list[Example]:
    """Every Python example of the README and the docs."""
    return [example for path in markdown_files() for example in examples_in(path)]


async def _stop_when_handled(namespace: dict[str, Any], name: str) -> None:
    """Stop the example's runner once it has handled a record, as SIGTERM would."""
    while (runner := namespace.get(name)) is None or runner.handled < 1:
        await asyncio.sleep(0.05)  # polling the example's own globals: nothing signals them
    runner.stop()


async def run_example(example: Example) -> dict[str, Any]:
    """Run one example to its end (top-level ``await`` allowed); return its globals."""
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    for step in (*example.prelude, example):
        await _run_in(step, namespace)
    return namespace


async def _run_in(example: Example, namespace: dict[str, Any]) -> None:
    # Padded so that a traceback names the Markdown file's own line numbers.
    padded = "\n" * (example.first_line - 1) + example.source
    code = compile(
        padded, str(example.path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    async with asyncio.timeout(RUN_TIMEOUT_S):
        stopper = (
            asyncio.create_task(_stop_when_handled(namespace, example.stops))
            if example.stops
            else None
        )
        try:
            result = eval(code, namespace)  # running the docs' own code is the point
            if inspect.iscoroutine(result):
                await result
        finally:
            if stopper is not None:
                stopper.cancel()
