"""deploy/requirements.lock: what app hosts install, every file pinned by its hash (`make lock`)."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.conftest import REPO

LOCK = REPO / "deploy" / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+)")


def pins() -> dict[str, tuple[str, list[str]]]:
    """Name → (version, hashes) of every requirement in the lock."""
    found: dict[str, tuple[str, list[str]]] = {}
    name = None
    for line in LOCK.read_text().splitlines():
        if match := PIN.match(line):
            name = canonicalize_name(match[1])
            found[name] = (match[2], [])
        elif line.strip().startswith("--hash=sha256:") and name:
            found[name][1].append(line.strip().removeprefix("--hash=sha256:").rstrip(" \\"))
        elif line and not line.startswith((" ", "#")):
            raise AssertionError(f"unpinned line in the lock: {line!r}")
    return found


def test_every_locked_requirement_is_pinned_with_sha256_hashes() -> None:
    locked = pins()
    assert len(locked) > 20
    for name, (_, hashes) in locked.items():
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), name


def test_the_lock_pins_every_runtime_dependency_within_its_range_and_no_cloud_tooling() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    locked = pins()
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        version, _ = locked[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version, prereleases=True), (spec, version)
    for tool in project["optional-dependencies"]["cloud"]:
        assert canonicalize_name(Requirement(tool).name) not in locked, tool
    assert "orderflow" not in locked  # our own wheel is installed from the deploy, unresolved
