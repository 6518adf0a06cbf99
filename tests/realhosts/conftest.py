"""Fixtures for tests on real Debian hosts booted on this machine (deploy/testhosts).

They need root, debootstrap (or a cached rootfs) and iproute2: without them they skip with the
reason, except under CI=true, where a missing prerequisite fails the run instead of hiding it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.testhosts.lab import Lab
from deploy.testhosts.rootfs import ensure_rootfs, is_built

# The harness's own tests use a lab of their own (names and a /24 of 198.18.0.0/15, the range
# reserved for network benchmarks), apart from the deploys'. Not TEST-NET-1 or TEST-NET-3: this
# machine's own network and its package proxy (which deb.debian.org, PyPI and Maven Central
# resolve to) live there, and a lab bridge on that range cut the deploy's package downloads.
HARNESS_LAB = "ofharn"
HARNESS_SUBNET = "198.18.1"
BAD_INPUT_SUBNET = "198.18.2"


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, mounts, chroot)"
    if not is_built() and shutil.which("debootstrap") is None:
        return "needs debootstrap (apt-get install debootstrap) to build the Debian 12 rootfs"
    for tool in ("ip", "unshare", "nsenter", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"needs {tool} (apt-get install iproute2 util-linux openssh-client)"
    return None


@pytest.fixture(scope="session")
def rootfs() -> Path:
    reason = _missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"real-host tests cannot run in CI: {reason}")
        pytest.skip(reason)
    return ensure_rootfs()


@pytest.fixture
def lab(rootfs: Path, tmp_path: Path) -> Iterator[Lab]:
    """An empty lab; every host started in it is stopped at the end, and nothing is left."""
    with Lab(tmp_path / "lab", name=HARNESS_LAB, subnet=HARNESS_SUBNET, rootfs=rootfs) as running:
        yield running
    assert running.leftovers() == []
