"""The jar cache and the Java/Maven checks (no network: Maven is never run here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deploy.localkafka import jars
from processors.errors import LocalKafkaError

JARS = ("kafka_2.13-4.1.1.jar", "kafka-clients-4.1.1.jar", "kafka-tools-4.1.1.jar")


def fake_cache(cache_dir: Path, *, marker: bool = True, names: tuple[str, ...] = JARS) -> Path:
    directory = jars.jars_dir(cache_dir)
    directory.mkdir(parents=True)
    for name in names:
        (directory / name).write_bytes(b"PK")
    if marker:
        (directory.parent / jars.MARKER).write_text("".join(f"{name}\n" for name in names))
    return directory


def test_cache_is_per_version(tmp_path: Path) -> None:
    assert jars.jars_dir(tmp_path) == tmp_path / "kafka-4.1.1" / "jars"


def test_marker_makes_a_second_run_skip_maven(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = fake_cache(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no mvn: running it would fail
    assert jars.is_cached(tmp_path)
    assert jars.ensure_jars(tmp_path) == directory


def test_missing_marker_or_jar_means_not_cached(tmp_path: Path) -> None:
    fake_cache(tmp_path / "a", marker=False)
    assert not jars.is_cached(tmp_path / "a")
    directory = fake_cache(tmp_path / "b")
    (directory / "kafka-clients-4.1.1.jar").unlink()
    assert not jars.is_cached(tmp_path / "b")


def test_a_cache_fetched_before_the_admin_tools_is_fetched_again(tmp_path: Path) -> None:
    fake_cache(tmp_path, names=JARS[:2])
    assert not jars.is_cached(tmp_path)


def test_missing_maven_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LocalKafkaError, match=r"Maven not found.*apt-get install maven"):
        jars.ensure_jars(tmp_path / "cache")


def test_missing_java_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LocalKafkaError, match=r"Java 17\+ not found.*openjdk-17-jre-headless"):
        jars.find_java()


def test_old_java_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    java = tmp_path / "java"
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    java.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LocalKafkaError, match=r"needs Java 17\+, .* is 11"):
        jars.find_java()


def test_default_cache_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert jars.default_cache_dir() == tmp_path / "orderflow"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert jars.default_cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "orderflow"
