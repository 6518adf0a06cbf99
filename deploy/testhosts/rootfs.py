"""The cached Debian 12 root file system every test host boots from.

Built once with ``debootstrap --variant=minbase`` plus what a cloud image would bring (systemd,
dbus, sshd, python3, sudo, iproute2) and nothing else: the deploy brings the rest. Cached under
``~/.cache/orderflow/testhosts/`` (``XDG_CACHE_HOME`` honoured) and used read-only as the lower
layer of every host's overlay.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import subprocess
import time
from pathlib import Path

from deploy.localkafka.jars import default_cache_dir
from deploy.testhosts import TestHostError

log = logging.getLogger(__name__)

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# openssh-sftp-server: pyinfra uploads over SFTP, which every cloud image serves.
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "openssh-sftp-server",
    "python3",
    "sudo",
    "iproute2",
)
# debootstrap of these packages takes 3-5 minutes; more only on a very slow mirror.
BUILD_TIMEOUT_S = 1800
MARKER = ".orderflow-rootfs-complete"


def rootfs_dir(cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / "testhosts" / f"debian-12-{SUITE}"


def is_built(cache_dir: Path | None = None) -> bool:
    return (rootfs_dir(cache_dir) / MARKER).is_file()


def ensure_rootfs(cache_dir: Path | None = None) -> Path:
    """The root file system directory, built with debootstrap first if it is not cached.

    Raises ``TestHostError`` when debootstrap is missing or fails (its log is kept next to the
    tree). Concurrent callers wait for one build.
    """
    target = rootfs_dir(cache_dir)
    if is_built(cache_dir):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_built(cache_dir):
            _build(target)
    return target


def _build(target: Path) -> None:
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise TestHostError("debootstrap not found: apt-get install debootstrap")
    staging = target.with_name(target.name + ".partial")
    build_log = target.with_name(target.name + ".log")
    shutil.rmtree(staging, ignore_errors=True)
    argv = [
        debootstrap,
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        SUITE,
        str(staging),
        MIRROR,
    ]
    started = time.monotonic()
    log.info("testhosts_rootfs=building dir=%s", target)
    with open(build_log, "w") as out:
        try:
            result = subprocess.run(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TestHostError(
                f"debootstrap took over {BUILD_TIMEOUT_S} s; see {build_log}"
            ) from None
    if result.returncode != 0:
        raise TestHostError(f"debootstrap failed (exit {result.returncode}); see {build_log}")
    _strip_identity(staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.replace(target)
    (target / MARKER).write_text(f"{SUITE} {' '.join(PACKAGES)}\n")
    log.info("testhosts_rootfs=built seconds=%.0f dir=%s", time.monotonic() - started, target)


def _strip_identity(tree: Path) -> None:
    """Remove what must differ between hosts: sshd host keys and the machine id."""
    for key in (tree / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    (tree / "etc" / "machine-id").write_text("")
    (tree / "var" / "lib" / "dbus" / "machine-id").unlink(missing_ok=True)
