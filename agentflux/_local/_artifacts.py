"""Fetching the Kafka and Apicurio artifacts with Maven, once, into a cache reused by every run."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Artifacts", "ArtifactsError", "fetch_artifacts"]

_POM = Path(__file__).resolve().parents[2] / "compose" / "pom.xml"
_APICURIO = "apicurio-registry-app"


class ArtifactsError(RuntimeError):
    """Maven could not resolve the platform's artifacts."""


@dataclass(frozen=True, slots=True)
class Artifacts:
    """Where the resolved artifacts are."""

    kafka_classpath: str
    apicurio_dir: Path

    @property
    def apicurio_jar(self) -> Path:
        """The Quarkus launcher jar of the registry."""
        return self.apicurio_dir / "quarkus-run.jar"


def cache_dir() -> Path:
    """Where resolved artifacts are kept: ``AGENTFLUX_CACHE_DIR`` or ``~/.cache/agentflux``."""
    configured = os.environ.get("AGENTFLUX_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "agentflux"


def _mvn(*args: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ArtifactsError("Maven (mvn) is not on PATH; install it (apt-get install maven)")
    result = subprocess.run(  # noqa: S603  # fixed arguments, no shell
        [mvn, "-q", "-B", "-f", str(_POM), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ArtifactsError(f"mvn {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


def fetch_artifacts(*, refresh: bool = False) -> Artifacts:
    """Resolve Kafka's classpath and unpack the registry, reusing earlier results."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    pom_stamp = str(_POM.stat().st_mtime_ns)
    stamp = cache / "pom.stamp"
    classpath_file = cache / "kafka.classpath"
    apicurio_dir = cache / "apicurio"
    stale = refresh or not stamp.exists() or stamp.read_text() != pom_stamp
    if stale or not classpath_file.exists():
        _mvn(
            "dependency:build-classpath",
            f"-DexcludeArtifactIds={_APICURIO}",
            f"-Dmdep.outputFile={classpath_file}",
        )
    if stale or not (apicurio_dir / "quarkus-run.jar").exists():
        downloads = cache / "downloads"
        _mvn(
            "dependency:copy-dependencies",
            f"-DincludeArtifactIds={_APICURIO}",
            f"-DoutputDirectory={downloads}",
        )
        archive = next(downloads.glob(f"{_APICURIO}-*-all.tar.gz"))
        shutil.rmtree(apicurio_dir, ignore_errors=True)
        apicurio_dir.mkdir(parents=True)
        _extract(archive, apicurio_dir)
        archive.unlink()
    stamp.write_text(pom_stamp)
    return Artifacts(kafka_classpath=classpath_file.read_text().strip(), apicurio_dir=apicurio_dir)


def _extract(archive: Path, into: Path) -> None:
    """Unpack ``archive`` into ``into``, refusing members that would land outside it.

    Python 3.11.4+ has tarfile's ``data`` filter; Debian's 3.11.2 lacks it, so its main checks
    (no absolute or escaping paths, no links out, no devices or pipes) are made by hand there.
    """
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            try:
                tar.extractall(into, filter="data")
            except tarfile.FilterError as exc:
                msg = f"{archive.name}: {exc}"
                raise ValueError(msg) from exc
            return
        root = into.resolve()
        for member in tar.getmembers():
            target = (into / member.name).resolve()
            link = (target.parent / member.linkname).resolve() if member.issym() else target
            if member.islnk():
                link = (into / member.linkname).resolve()
            if not (target.is_relative_to(root) and link.is_relative_to(root)):
                msg = f"{archive.name}: {member.name} would land outside {into}"
                raise ValueError(msg)
            if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
                msg = f"{archive.name}: {member.name} is a device or pipe, not a file"
                raise ValueError(msg)
        tar.extractall(into)  # noqa: S202  # every member checked above
