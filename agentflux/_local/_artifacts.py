"""Fetching the Kafka and Apicurio artifacts with Maven, once, into a cache reused by every run."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Artifacts", "ArtifactsError", "fetch_artifacts"]

# The one file that pins the Kafka and Apicurio versions: shipped in the package, so that an
# installed agentflux starts the same platform as a checkout (compose/ and the tests read it too).
_POM = Path(__file__).resolve().parent / "pom.xml"
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


def _mvn(pom: Path, *args: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ArtifactsError("Maven (mvn) is not on PATH; install it (apt-get install maven)")
    result = subprocess.run(  # noqa: S603  # fixed arguments, no shell
        [mvn, "-q", "-B", "-f", str(pom), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ArtifactsError(f"mvn {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


def fetch_artifacts(*, refresh: bool = False) -> Artifacts:
    """Resolve Kafka's classpath and unpack the registry, reusing earlier results.

    The cache is keyed by the pom's content, not its file time, so every checkout of the same
    pom (clones, worktrees, CI) reuses it; what is rebuilt is swapped in by renames, so a
    cluster starting from the cache meanwhile sees the old files or the new, never none.
    """
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    pom_stamp = hashlib.sha256(_POM.read_bytes()).hexdigest()
    stamp = cache / "pom.stamp"
    classpath_file = cache / "kafka.classpath"
    apicurio_dir = cache / "apicurio"
    stale = refresh or not stamp.exists() or stamp.read_text() != pom_stamp
    work = cache / f"building-{os.getpid()}"  # this process's own; renamed into place
    shutil.rmtree(work, ignore_errors=True)  # left by a crashed process with the same pid
    work.mkdir()
    # Maven runs on a copy in the work folder: whatever it writes beside its pom stays out of the
    # installed package.
    pom = work / "pom.xml"
    shutil.copyfile(_POM, pom)
    if stale or not classpath_file.exists():
        _mvn(
            pom,
            "dependency:build-classpath",
            f"-DexcludeArtifactIds={_APICURIO}",
            f"-Dmdep.outputFile={work / 'kafka.classpath'}",
        )
        (work / "kafka.classpath").replace(classpath_file)
    if stale or not (apicurio_dir / "quarkus-run.jar").exists():
        downloads = work / "downloads"
        _mvn(
            pom,
            "dependency:copy-dependencies",
            f"-DincludeArtifactIds={_APICURIO}",
            f"-DoutputDirectory={downloads}",
        )
        unpacked = work / "apicurio"
        unpacked.mkdir()
        _extract(next(downloads.glob(f"{_APICURIO}-*-all.tar.gz")), unpacked)
        if apicurio_dir.exists():
            apicurio_dir.rename(work / "apicurio-old")  # running registries keep their files
        try:
            unpacked.rename(apicurio_dir)
        except OSError:
            if not (apicurio_dir / "quarkus-run.jar").exists():
                raise
            # another process put the same pom's registry in place first: keep it
    shutil.rmtree(work, ignore_errors=True)
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
        if hasattr(tarfile, "fully_trusted_filter"):
            # Every member is checked above; a tarfile that takes filters is told so outright
            # (leaving it to the default is deprecated from Python 3.12 on).
            tar.extractall(into, filter="fully_trusted")  # noqa: S202
        else:
            tar.extractall(into)  # noqa: S202  # every member checked above
