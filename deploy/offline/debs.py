"""Debian packages for an offline host, resolved against that host's own dpkg status.

This machine runs apt-get with a private configuration: the host's release's sources
(``deb.debian.org`` by default), the host's architecture and the host's ``/var/lib/dpkg/status``.
So ``--download-only`` fetches exactly the packages and dependencies the host lacks, whatever
this machine has installed or runs. Needs apt-get and the archive's keyring here.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

from pyinfra.api.exceptions import DeployError

from deploy.localkafka.filelock import LockTimeoutError, exclusive
from deploy.offline import CACHE_DIR, publish, run_local, staging_dir

DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
LISTS_MAX_AGE_S = 3600
APT_TIMEOUT_S = 900


def debian_sources(codename: str, mirror: str = "http://deb.debian.org/debian") -> str:
    """The sources of a Debian release: main, its updates and its security updates."""
    security = mirror.rsplit("/", 1)[0] + "/debian-security"
    signed = f"[signed-by={DEBIAN_KEYRING}]"
    return (
        f"deb {signed} {mirror} {codename} main\n"
        f"deb {signed} {mirror} {codename}-updates main\n"
        f"deb {signed} {security} {codename}-security main\n"
    )


def fetch_debs(status: str, packages: list[str], sources: str, arch: str) -> Path:
    """A directory holding the ``.deb`` files that give a host with ``status`` ``packages``.

    ``status``: the host's ``/var/lib/dpkg/status``; ``sources``: apt sources lines of its
    release; ``arch``: its ``dpkg --print-architecture``. Cached by all four.
    """
    key = hashlib.sha256("\0".join([status, *sorted(packages), sources, arch]).encode())
    target = CACHE_DIR / "debs" / key.hexdigest()[:16]
    if target.is_dir():
        return target
    apt_dir = CACHE_DIR / "apt" / hashlib.sha256(f"{sources}{arch}".encode()).hexdigest()[:16]
    (apt_dir / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (apt_dir / "parts").mkdir(exist_ok=True)
    (apt_dir / "sources.list").write_text(sources)
    staging = staging_dir(target)
    (staging / "partial").mkdir()
    (staging / "status").write_text(status)
    options = [
        "-o", f"APT::Architecture={arch}",
        "-o", "APT::Architectures::=",
        "-o", f"APT::Architectures::={arch}",
        "-o", f"Dir::Etc::sourcelist={apt_dir / 'sources.list'}",
        "-o", f"Dir::Etc::sourceparts={apt_dir / 'parts'}",
        "-o", f"Dir::State::Lists={apt_dir / 'lists'}",
        "-o", f"Dir::Cache={apt_dir}",
        "-o", f"Dir::State::status={staging / 'status'}",
        "-o", f"Dir::Cache::archives={staging}",
        "-o", "Debug::NoLocking=1",
        # The unprivileged _apt user cannot use these private directories.
        "-o", "APT::Sandbox::User=root",
        "-o", "APT::Install-Recommends=false",
    ]  # fmt: skip
    lists = apt_dir / "lists"
    what = "fetching the hosts' Debian packages on this machine (offline mode)"
    # pyinfra prepares hosts at once: one apt-get at a time on these lists and their binary
    # cache (apt's own lock is off, Debug::NoLocking). An install beside another host's run
    # read its half-built cache ("Package 'chrony' has no installation candidate").
    try:
        with exclusive(apt_dir / "update.lock", 3 * APT_TIMEOUT_S, what):
            _update_lists(lists, options, what)
            run_local(
                ["apt-get", "-q", "-y", *options, "install", "--download-only", *packages],
                what,
                APT_TIMEOUT_S,
            )
    except LockTimeoutError as exc:
        raise DeployError(str(exc)) from None
    (staging / "status").unlink()
    shutil.rmtree(staging / "partial")
    return publish(staging, target)


def _update_lists(lists: Path, options: list[str], what: str) -> None:
    """``apt-get update`` of the private lists, unless another host's preparation just did."""
    fresh = any(lists.glob("*_Packages*")) and time.time() - lists.stat().st_mtime < LISTS_MAX_AGE_S
    if not fresh:
        # --error-on=any: an index that failed to download fails the update (apt's default is a
        # warning and exit 0, and these lists would then count as fresh for an hour).
        run_local(["apt-get", "-q", *options, "update", "--error-on=any"], what, APT_TIMEOUT_S)
        lists.touch()
