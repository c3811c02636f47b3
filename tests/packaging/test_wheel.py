"""The built wheel: only ``agentflux`` at the top level, and it installs beside PyPI's namesakes.

It holds all of the code and the contract, and installing it leaves PyPI's unrelated ``schemas``
and ``consumers`` packages as they were.

Needs PyPI (CI has it). One wheel is built per run from a copy of the checkout (the build never
writes into the working tree) and one fresh venv is made for all the install checks; the venv
gets no pip of its own (this environment's pip installs into it with ``--python``), which saves
the seconds ``ensurepip`` takes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

_REPO = Path(__file__).resolve().parents[2]
# PyPI's packages whose import names the platform used to take: `schemas` is Python 2 code
# (it cannot even be imported on Python 3), `consumers` imports on Python 3.
_NEIGHBOURS = ("schemas", "consumers")
_PIP_ENV = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    """Run a command to completion; its stdout, or a failure showing what it printed."""
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env={**os.environ, **_PIP_ENV},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr}")
    return result.stdout


def _source_copy(into: Path) -> Path:
    """The checkout's files as git sees them (tracked or new, not ignored), copied under ``into``.

    Built from a copy, not in place: setuptools writes ``build/`` and ``*.egg-info`` beside the
    sources, and an in-place build would compile into (and race with) a developer's tree.
    """
    listed = _run(
        "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=_REPO
    ).split("\0")
    source = into / "source"
    for name in filter(None, listed):
        origin = _REPO / name
        if origin.is_file() and origin.suffix != ".so":  # compiled extensions are rebuilt
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, source / name)
    return source


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once for the whole module (C extensions included, when they build)."""
    work = tmp_path_factory.mktemp("wheel")
    source = _source_copy(work)
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", work / "dist", source)
    (built,) = (work / "dist").glob("agentflux-*.whl")
    return built


@dataclass(frozen=True)
class Venv:
    """A fresh venv holding PyPI's neighbours, then the wheel; the neighbours' files before it."""

    python: Path
    site_packages: Path
    neighbours_before: dict[str, str]

    def run(self, *args: str | Path) -> str:
        """Run a command with this venv's programs, away from the checkout (no import from it)."""
        return _run(*args, cwd=self.python.parents[2])


def _neighbour_files(site_packages: Path) -> dict[str, str]:
    """SHA-256 of every file PyPI's neighbours installed (their packages and dist-infos)."""
    roots = [
        path
        for name in _NEIGHBOURS
        for path in [site_packages / name, *site_packages.glob(f"{name}-*.dist-info")]
    ]
    return {
        str(file.relative_to(site_packages)): hashlib.sha256(file.read_bytes()).hexdigest()
        for root in roots
        for file in sorted(root.rglob("*"))
        if file.is_file() and "__pycache__" not in file.parts
    }


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Venv:
    """PyPI's ``schemas`` and ``consumers`` installed first, then the wheel with its dependencies."""
    root = tmp_path_factory.mktemp("venv") / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", root)
    python = root / "bin" / "python"
    pip = (sys.executable, "-m", "pip", "--python", python, "install", "--quiet")
    _run(*pip, *_NEIGHBOURS)
    (site_packages,) = (root / "lib").glob("python3*/site-packages")
    before = _neighbour_files(site_packages)
    assert {Path(name).parts[0] for name in before} >= set(_NEIGHBOURS), before
    _run(*pip, wheel)
    return Venv(python, site_packages, before)


def test_pypi_consumers_still_imports_as_itself(venv: Venv) -> None:
    """After the wheel, ``import consumers`` is PyPI's package, from its own file."""
    found = venv.run(venv.python, "-I", "-c", "import consumers; print(consumers.__file__)")
    assert Path(found.strip()) == venv.site_packages / "consumers" / "__init__.py"


def test_pypi_schemas_and_consumers_files_are_untouched(venv: Venv) -> None:
    """Every file of PyPI's ``schemas`` and ``consumers`` is byte-identical after the wheel."""
    assert _neighbour_files(venv.site_packages) == venv.neighbours_before


def test_the_platform_imports_and_its_command_runs(venv: Venv) -> None:
    """``agentflux.schemas``, ``.producers``, ``.consumers`` import from the venv; ``agentflux --help`` runs."""
    found = venv.run(
        venv.python,
        "-I",
        "-c",
        "import agentflux.schemas, agentflux.producers, agentflux.consumers;"
        " print(agentflux.__file__)",
    )
    assert Path(found.strip()) == venv.site_packages / "agentflux" / "__init__.py"
    assert "Usage: agentflux" in venv.run(venv.python.parent / "agentflux", "--help")


def test_the_wheel_installs_nothing_but_agentflux_at_the_top_level(wheel: Path) -> None:
    """The wheel's top-level entries are the ``agentflux`` package and its dist-info, nothing else."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level = {name.split("/", 1)[0] for name in names}
        (listed,) = [name for name in names if name.endswith(".dist-info/top_level.txt")]
        declared = archive.read(listed).decode().split()
    dist_info = f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"
    assert top_level == {"agentflux", dist_info}
    assert declared == ["agentflux"]


def test_the_wheel_holds_every_module_and_the_whole_contract(wheel: Path) -> None:
    """Every ``.py``, ``pom.xml`` and ``.tmpl`` under ``agentflux/``, every ``.avsc`` and ``topics.yaml``.

    The wheel's package list is written by hand in pyproject.toml; a new subpackage or contract
    folder left out of it fails here rather than in a user's install.
    """
    expected = {
        path.relative_to(_REPO).as_posix()
        for pattern in ("*.py", "pom.xml", "*.tmpl")  # *.tmpl: agentflux new group's templates
        for path in (_REPO / "agentflux").rglob(pattern)
        if "__pycache__" not in path.parts
    }
    contract = _REPO / "schemas"
    expected |= {
        "agentflux/contract/" + path.relative_to(contract).as_posix()
        for path in [*(contract / "avro").rglob("*.avsc"), contract / "topics.yaml"]
    }
    assert len(expected) > 50  # the globs found the code and the contract
    with zipfile.ZipFile(wheel) as archive:
        missing = expected - set(archive.namelist())
    assert not missing, f"missing from the wheel: {sorted(missing)}"
