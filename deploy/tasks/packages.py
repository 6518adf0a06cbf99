"""Debian packages and Python wheels for a host, from its mirrors or, offline, from this machine.

``offline`` in group data: ``True``, ``False``, or ``None`` (the default) to decide per host:
a host that cannot open a connection to PyPI has no egress and gets the offline install.
A plain module of functions, not a ``pyinfra.api.deploy`` (that would prefix op names).
"""

from __future__ import annotations

import re
from pathlib import Path

from pyinfra import host
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import FileContents
from pyinfra.facts.server import Command, Which
from pyinfra.operations import apt, files, server

from deploy.offline.debs import debian_sources, fetch_debs
from deploy.offline.wheels import build_wheelhouse

REMOTE_DEBS = "/var/cache/orderflow/debs"
EGRESS_PROBE = (
    "timeout 5 bash -c 'exec 3<>/dev/tcp/pypi.org/443' >/dev/null 2>&1 "
    "&& echo online || echo offline"
)


def is_offline() -> bool:
    """True when this host installs from what this machine uploads."""
    if host.data.get("offline") is None:
        return host.get_fact(Command, EGRESS_PROBE) == "offline"
    return bool(host.data.offline)


def install(packages: list[str], name: str, update: bool = False) -> None:
    """Install Debian ``packages`` (op ``name``): with apt from the mirrors, or offline from
    ``.deb`` files this machine resolved against the host's dpkg status. No op once installed."""
    if not is_offline():
        apt.packages(name=name, packages=packages, update=update, cache_time=3600)
        return
    installed = host.get_fact(DebPackages) or {}
    missing = [package for package in packages if package not in installed]
    if not missing:
        return
    debs = fetch_debs(
        status="\n".join(host.get_fact(FileContents, "/var/lib/dpkg/status") or []) + "\n",
        packages=missing,
        sources=_apt_sources(),
        arch=host.get_fact(Command, "dpkg --print-architecture"),
    )
    remote = f"{REMOTE_DEBS}/{_slug(name)}"
    files.sync(name=f"{name}: upload the packages", src=str(debs), dest=remote, delete=True)
    server.shell(
        name=f"{name}: install from the uploaded files",
        commands=[
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
            f"-o Dpkg::Options::=--force-confold {remote}/*.deb",
            f"rm -rf {remote}",
        ],
    )


def wheelhouse(wheel: Path, remote_dir: str) -> str | None:
    """Offline: upload ``wheel``'s wheelhouse for this host to ``remote_dir``; the pip options
    that install from it (``--no-index --find-links …``). Online: ``None`` (use PyPI)."""
    if not is_offline():
        return None
    if not host.get_fact(Which, command="python3"):
        raise DeployError(
            f"{host.name} has no python3: install it first (apt-get install python3; "
            "every Debian and Ubuntu cloud image has it)"
        )
    probe = host.get_fact(
        Command,
        'python3 -c \'import platform, sys; print("%d.%d" % sys.version_info[:2], '
        "platform.libc_ver()[1], platform.machine())'",
    )
    try:
        python, glibc, machine = probe.split()
    except (AttributeError, ValueError):
        raise DeployError(f"{host.name}: cannot tell its Python and glibc ({probe!r})") from None
    local = build_wheelhouse(wheel, python, glibc, machine)
    files.sync(name="Upload the orderflow wheelhouse", src=str(local), dest=remote_dir, delete=True)
    return f"--no-index --find-links {remote_dir}"


def _apt_sources() -> str:
    if host.data.get("offline_apt_sources"):
        return host.data.offline_apt_sources
    distro = host.get_fact(Command, ". /etc/os-release && echo $ID $VERSION_CODENAME")
    distro_id, _, codename = (distro or "").partition(" ")
    if distro_id != "debian" or not codename:
        raise DeployError(
            f"{host.name}: offline mode knows Debian's mirrors, this host runs {distro!r}: "
            "set offline_apt_sources (apt sources lines of its release)"
        )
    return debian_sources(codename)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
