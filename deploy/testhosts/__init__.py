"""Debian 12 test hosts booted with systemd on this machine, for running the real deploy.

``rootfs.ensure_rootfs()`` builds (once) and caches a debootstrap root file system;
``lab.Lab`` starts hosts on it, each in its own network namespace on a private bridge with a
TEST-NET-2 address (198.51.100.0/24), systemd as PID 1 and sshd, and stops or crashes them.
The hosts have no route off this machine. Needs root, debootstrap, iproute2 and util-linux.

    python -m deploy.testhosts up --hosts 4      # see --help
"""

from __future__ import annotations

from processors.errors import OrderflowError


class TestHostError(OrderflowError):
    """A test host could not be built, started, reached or stopped."""

    __test__ = False  # not a pytest test class despite the name
