"""The Apache Kafka broker jars, fetched once from Maven Central into a per-version cache.

``ensure_jars()`` runs Maven on the package's ``pom.xml`` the first time and writes a marker
file; later calls only check the marker and the jars, with no network I/O and no Maven run.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from functools import cache
from pathlib import Path

from deploy.localkafka.filelock import LockTimeoutError, exclusive
from processors.errors import LocalKafkaError

log = logging.getLogger(__name__)

POM = Path(__file__).with_name("pom.xml")
# How long a second fetcher waits for the first one's Maven run (about 100 MB of jars).
FETCH_WAIT_S = 1800.0
MARKER = "complete"
# A fetch is complete with these artifacts of the pinned version (a cache fetched before the
# admin tools were added is fetched again).
REQUIRED_ARTIFACTS = ("kafka_2.13", "kafka-tools")
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
_DOWNLOADED = re.compile(r"Downloaded from \S+: \S+/([^/\s]+) \(([^)]*?)(?: at [^)]*)?\)")

Progress = Callable[[str], None]


@cache
def kafka_version() -> str:
    """The one pinned Kafka version, read from ``pom.xml`` (``kafka.version``)."""
    version = ET.parse(POM).getroot().find("m:properties/m:kafka.version", _POM_NS)
    assert version is not None and version.text, f"{POM} lacks properties/kafka.version"
    return version.text.strip()


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/orderflow``, else ``~/.cache/orderflow`` (the XDG base-dir convention)."""
    # A platform convention like HOME, not orderflow configuration, so not a Settings field.
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "orderflow"


def jars_dir(cache_dir: Path | None = None) -> Path:
    """Where the jars of the pinned version live (they may not be fetched yet)."""
    return (cache_dir or default_cache_dir()) / f"kafka-{kafka_version()}" / "jars"


def is_cached(cache_dir: Path | None = None) -> bool:
    """True when a complete fetch of the pinned version is in the cache."""
    directory = jars_dir(cache_dir)
    marker = directory.parent / MARKER
    if not marker.is_file():
        return False
    names = [line for line in marker.read_text().splitlines() if line.endswith(".jar")]
    return not _missing(names) and all((directory / name).is_file() for name in names)


def _missing(names: list[str]) -> list[str]:
    """The required jars (of the pinned version) that ``names`` lacks."""
    required = [f"{artifact}-{kafka_version()}.jar" for artifact in REQUIRED_ARTIFACTS]
    return [jar for jar in required if jar not in names]


def find_java() -> str:
    """Path of a ``java`` 17+ on PATH, else ``LocalKafkaError`` saying what to install."""
    java = shutil.which("java")
    hint = "apt-get install openjdk-17-jre-headless (or any Java 17+), or use --docker"
    if java is None:
        raise LocalKafkaError(f"Java 17+ not found on PATH: {hint}")
    try:
        result = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalKafkaError(f"{java} -version failed ({exc}): {hint}") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        raise LocalKafkaError(f"cannot tell the version of {java}: {hint}")
    major = int(match.group(2)) if match.group(1) == "1" else int(match.group(1))
    if major < 17:
        raise LocalKafkaError(f"Kafka {kafka_version()} needs Java 17+, {java} is {major}: {hint}")
    return java


def ensure_jars(cache_dir: Path | None = None, progress: Progress | None = None) -> Path:
    """The directory holding the pinned Kafka broker's jars, fetching them with Maven if needed.

    ``progress`` receives one short line per downloaded artifact. Raises ``LocalKafkaError`` if
    Maven is missing or the fetch fails (Maven's full output is kept in ``maven.log`` next to
    the jars).
    """
    directory = jars_dir(cache_dir)
    if is_cached(cache_dir):
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    # Two commands fetching at once (a test run and `make up`, or the deploy's brokers, which
    # pyinfra prepares at once) must not share a staging dir.
    try:
        with exclusive(directory.parent / ".lock", FETCH_WAIT_S, "fetching the Kafka jars"):
            if is_cached(cache_dir):
                return directory
            return _fetch(directory, progress)
    except LockTimeoutError as exc:
        raise LocalKafkaError(str(exc)) from None


def _fetch(directory: Path, progress: Progress | None) -> Path:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError(
            "Maven not found on PATH (needed once to fetch the Kafka jars): "
            "apt-get install maven, or use --docker"
        )
    version_dir = directory.parent
    staging = version_dir / "jars.partial"
    shutil.rmtree(staging, ignore_errors=True)
    maven_log = version_dir / "maven.log"
    argv = [
        mvn, "-B", "-Dstyle.color=never", "-f", str(POM),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]  # fmt: skip
    started = time.monotonic()
    downloads = _run_maven(argv, maven_log, progress)
    jars = sorted(p.name for p in staging.glob("*.jar"))
    if missing := _missing(jars):
        raise LocalKafkaError(
            f"Maven copied no {', '.join(missing)} into {staging}; see {maven_log}"
        )
    shutil.rmtree(directory, ignore_errors=True)
    staging.replace(directory)
    (version_dir / MARKER).write_text("".join(f"{name}\n" for name in jars))
    log.info(
        "kafka_jars=fetched version=%s jars=%d downloads=%d seconds=%.1f dir=%s",
        kafka_version(), len(jars), downloads, time.monotonic() - started, directory,
    )  # fmt: skip
    return directory


def _run_maven(argv: list[str], maven_log: Path, progress: Progress | None) -> int:
    downloads = 0
    with open(maven_log, "w") as out:
        try:
            child = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except OSError as exc:
            raise LocalKafkaError(f"cannot run Maven: {exc}") from None
        assert child.stdout is not None
        errors: list[str] = []
        for line in child.stdout:
            out.write(line)
            match = _DOWNLOADED.search(line)
            if match:
                downloads += 1
                if progress:
                    progress(f"{match.group(1)} ({match.group(2)})")
            elif line.startswith("[ERROR]") and len(errors) < 3:
                errors.append(line[7:].strip())
        if child.wait() != 0:
            reason = next((e for e in errors if e), "no error text")
            raise LocalKafkaError(
                f"Maven could not fetch the Kafka {kafka_version()} jars: {reason} "
                f"(full output: {maven_log})"
            )
    return downloads
