"""A wheelhouse with orderflow and every dependency, for a host's Python and platform.

``pip download --only-binary=:all:`` with the host's Python version, glibc and architecture,
so the host needs no compiler and no index: ``pip install --no-index --find-links``.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from deploy.offline import CACHE_DIR, publish, run_local, staging_dir

PIP_TIMEOUT_S = 1200
OLDEST_MANYLINUX_GLIBC_MINOR = 5


def manylinux_platforms(glibc: str, machine: str) -> list[str]:
    """Every manylinux tag a host with ``glibc`` (e.g. ``2.36``) on ``machine`` can run."""
    major, minor = (int(part) for part in glibc.split(".")[:2])
    tags = [
        f"manylinux_{major}_{m}_{machine}"
        for m in range(minor, OLDEST_MANYLINUX_GLIBC_MINOR - 1, -1)
    ]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags += [f"{name}_{machine}" for floor, name in legacy.items() if minor >= floor]
    return tags


def build_wheelhouse(wheel: Path, python: str, glibc: str, machine: str) -> Path:
    """Directory of wheels installing ``wheel`` with its dependencies on such a host.

    ``python``: the host's ``X.Y``; ``glibc``: its glibc ``2.NN``; ``machine``: ``uname -m``.
    Cached by the wheel's content and the three values.
    """
    digest = hashlib.sha256(wheel.read_bytes())
    digest.update(f"{python}/{glibc}/{machine}".encode())
    target = CACHE_DIR / "wheelhouse" / digest.hexdigest()[:16]
    if target.is_dir():
        return target
    staging = staging_dir(target)
    platforms = [arg for tag in manylinux_platforms(glibc, machine) for arg in ("--platform", tag)]
    run_local(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--dest", str(staging), "--only-binary=:all:", "--implementation", "cp",
            "--python-version", python, *platforms, str(wheel),
        ],
        "building the orderflow wheelhouse on this machine (offline mode)",
        PIP_TIMEOUT_S,
    )  # fmt: skip
    return publish(staging, target)
