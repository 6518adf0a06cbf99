"""What an offline deploy brings from the deploying machine: Debian packages and a wheelhouse.

Hosts without egress (``natGateway=false``, or the test hosts of deploy/testhosts) install
nothing from the internet. This machine resolves and downloads, for each host's release and
architecture, exactly what that host lacks; the tasks upload it and install from the files.
Everything here runs locally and caches under ``build/offline/`` of the checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from pyinfra.api.exceptions import DeployError

REPO_DIR = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_DIR / "build" / "offline"


def run_local(argv: list[str], what: str, timeout: float) -> str:
    """Run a local command; ``DeployError`` with its last error line if it fails."""
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except FileNotFoundError:
        raise DeployError(f"{what}: {argv[0]} is not installed on this machine") from None
    except subprocess.TimeoutExpired:
        raise DeployError(f"{what}: {argv[0]} took over {timeout:.0f} s") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith(("E:", "ERROR:"))]
        raise DeployError(f"{what} failed: {(errors or lines or ['no output'])[-1].strip()}")
    return result.stdout


def staging_dir(target: Path) -> Path:
    """A fresh directory beside ``target`` to build it in (pyinfra prepares hosts at once)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))


def publish(staging: Path, target: Path) -> Path:
    """Move a finished ``staging`` into place; a concurrent build that finished first wins."""
    try:
        staging.replace(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not target.is_dir():
            raise
    return target
