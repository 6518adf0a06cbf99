"""Test hosts on this machine: an overlay of the cached rootfs, a network namespace, systemd.

Each host is a copy-on-write overlay of the cached root file system, booted as
``unshare --cgroup --pid --mount --uts … chroot ROOT /lib/systemd/systemd`` inside its own
network namespace, whose ``eth0`` is a veth on the lab's bridge. The bridge holds this machine's
address (``.1``); hosts get ``.11``, ``.12``, … and **no default route**: nothing leaves this
machine. Names are prefixed with the lab's name, so ``purge()`` removes what a killed run left.

Login: user ``admin`` (passwordless sudo, as on a cloud image) with the lab's generated key;
host keys are generated per host and written to the lab's ``known_hosts``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from deploy.testhosts import TestHostError
from deploy.testhosts.rootfs import ensure_rootfs

log = logging.getLogger(__name__)

DEFAULT_NAME = "oflab"
DEFAULT_SUBNET = "198.51.100"  # TEST-NET-2: never routed anywhere, so it cannot leak
LOGIN_USER = "admin"
BOOT_TIMEOUT_S = 180
STOP_TIMEOUT_S = 45
COMMAND_TIMEOUT_S = 60
# Device nodes a container needs (name, major, minor), made afresh in the host's tmpfs /dev.
# Never bind this machine's nodes: systemd in the host chmods e.g. /dev/console, and a bound
# /dev/null would change for the whole machine.
DEVICES = (
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
)


def run(argv: list[str], timeout: float = COMMAND_TIMEOUT_S, check: bool = True) -> str:
    """Run a command, return its stdout; ``TestHostError`` with its stderr if it fails."""
    try:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TestHostError(f"{shlex.join(argv)}: {exc}") from None
    if check and result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise TestHostError(f"{shlex.join(argv)} failed: {reason}")
    return result.stdout


def _cgroup2_root() -> Path:
    """Where this machine's cgroup v2 hierarchy is mounted (pure v2, or hybrid's unified/)."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[2] == "cgroup2":
            return Path(fields[1])
    raise TestHostError("no cgroup2 hierarchy mounted: systemd cannot boot a test host")


@dataclass
class TestHost:
    """One running host. ``pid`` is its systemd (PID 1 inside) as seen from this machine."""

    __test__ = False

    name: str
    address: str
    root: Path
    netns: str
    pid: int
    boot: subprocess.Popen

    def alive(self) -> bool:
        return self.boot.poll() is None


class Lab:
    """Start, stop and crash test hosts. Use as a context manager: exit stops everything."""

    def __init__(
        self,
        state_dir: Path,
        name: str = DEFAULT_NAME,
        subnet: str = DEFAULT_SUBNET,
        rootfs: Path | None = None,
    ) -> None:
        if os.geteuid() != 0:
            raise TestHostError("test hosts need root (namespaces, mounts, chroot)")
        for tool in ("ip", "unshare", "nsenter", "chroot", "ssh-keygen", "mount"):
            if shutil.which(tool) is None:
                raise TestHostError(
                    f"{tool} not found: apt-get install iproute2 util-linux openssh-client"
                )
        self.name = name
        self.subnet = subnet
        self.bridge = f"{name}0"
        self.state_dir = state_dir.resolve()
        self.rootfs = rootfs
        self.hosts: dict[str, TestHost] = {}
        self._cgroup = _cgroup2_root() / name

    # Files a client needs: the login key and the hosts' keys.
    @property
    def ssh_key(self) -> Path:
        return self.state_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def gateway(self) -> str:
        return f"{self.subnet}.1"

    def address(self, index: int) -> str:
        return f"{self.subnet}.{10 + index}"

    def __enter__(self) -> Lab:
        self.purge()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.rootfs is None:
            self.rootfs = ensure_rootfs()
        for old in (self.ssh_key, self.ssh_key.with_suffix(".pub")):
            old.unlink(missing_ok=True)
        run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                f"{self.name}-login",
                "-f",
                str(self.ssh_key),
            ]
        )
        self.known_hosts.write_text("")
        run(["ip", "link", "add", self.bridge, "type", "bridge"])
        run(["ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge])
        run(["ip", "link", "set", self.bridge, "up"])
        self._cgroup.mkdir(exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop(*self.hosts.values())
        finally:
            self.purge()

    # -- one host -------------------------------------------------------------------------------

    def start(self, name: str, index: int, prepare: list[str] | None = None) -> TestHost:
        """Boot host ``name`` at address ``.{10+index}``; returns once its sshd accepts.

        ``prepare``: shell commands run in the host's tree (chroot) before it boots, e.g. to
        remove a package for a bad-input test.
        """
        if name in self.hosts:
            raise TestHostError(f"test host {name} is already running")
        root = self._mount_disk(name)
        self._provision(name, self.address(index), root, prepare or [])
        return self._boot(name, index, root)

    def stop(self, *hosts: TestHost) -> None:
        """Shut ``hosts`` down at once (systemd's poweroff; SIGKILL after ``STOP_TIMEOUT_S``),
        then remove their namespaces and trees."""
        self._power_off(*hosts)
        for host in hosts:
            self._remove(host)

    def reboot(self, host: TestHost, prepare: list[str] | None = None) -> TestHost:
        """Power ``host`` off and boot it again from the same tree, as a VM keeps its disks;
        ``prepare`` runs in the tree while it is down (e.g. to take a disk away)."""
        index = int(host.address.rsplit(".", 1)[1]) - 10
        self._power_off(host)
        self._unplug(host)
        root = self._mount_disk(host.name)
        for command in prepare or []:
            run(["chroot", str(root), "sh", "-c", command], timeout=120)
        return self._boot(host.name, index, root)

    def crash(self, host: TestHost) -> None:
        """Kill ``host`` like a power cut: SIGKILL its PID 1, then unplug its network."""
        self._kill(host)
        self._remove(host)

    def ssh_argv(self, host: TestHost, *command: str) -> list[str]:
        return [
            "ssh",
            "-i",
            str(self.ssh_key),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            f"{LOGIN_USER}@{host.address}",
            *command,
        ]

    def ssh(self, host: TestHost, command: str, timeout: float = COMMAND_TIMEOUT_S) -> str:
        """Run ``command`` on ``host`` over SSH as the login user; its stdout."""
        return run(self.ssh_argv(host, command), timeout=timeout)

    # -- internals ------------------------------------------------------------------------------

    def _mount_disk(self, name: str) -> Path:
        """The host's tree: its own writable layer (kept across a reboot) over the rootfs."""
        home = self.state_dir / "hosts" / name
        root = home / "root"
        for sub in ("upper", "work", "root"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        run(
            [
                "mount",
                "-t",
                "overlay",
                "overlay",
                "-o",
                f"lowerdir={self.rootfs},upperdir={home / 'upper'},workdir={home / 'work'}",
                str(root),
            ]
        )
        return root

    def _boot(self, name: str, index: int, root: Path) -> TestHost:
        address = self.address(index)
        netns = f"{self.name}-{name}"
        veth = f"{self.name}{index}"
        run(["ip", "netns", "add", netns])
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns])
        run(["ip", "link", "set", veth, "master", self.bridge, "up"])
        run(["ip", "-n", netns, "addr", "add", f"{address}/24", "dev", "eth0"])
        run(["ip", "-n", netns, "link", "set", "eth0", "up"])
        run(["ip", "-n", netns, "link", "set", "lo", "up"])

        cgroup = self._cgroup / name
        cgroup.mkdir(exist_ok=True)
        console_log = self.state_dir / "console" / f"{name}.log"
        console_log.parent.mkdir(exist_ok=True)
        console = open(console_log, "ab")  # noqa: SIM115 (the child keeps it)
        boot = subprocess.Popen(
            ["sh", "-c", self._boot_script(name, root, cgroup, netns)],
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        console.close()
        pid = self._wait_for_init(boot)
        host = TestHost(name, address, root, netns, pid, boot)
        self.hosts[name] = host
        self._wait_for_ssh(host, console_log)
        log.info("testhost=%s address=%s pid=%d state=up", name, address, pid)
        return host

    def _power_off(self, *hosts: TestHost) -> None:
        for host in hosts:
            if host.alive():
                os.kill(host.pid, signal.SIGRTMIN + 4)  # systemd: start poweroff.target
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for host in hosts:
            try:
                host.boot.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning(
                    "testhost=%s poweroff_timeout_s=%d: killing it", host.name, STOP_TIMEOUT_S
                )
                self._kill(host)

    def _provision(self, name: str, address: str, root: Path, prepare: list[str]) -> None:
        """What cloud-init would do on a VM: identity, host key, a sudo user with our key."""
        (root / "etc" / "hostname").write_text(f"{name}\n")
        (root / "etc" / "hosts").write_text(f"127.0.0.1 localhost\n{address} {name}\n")
        (root / "etc" / "machine-id").write_text(os.urandom(16).hex() + "\n")
        key = root / "etc" / "ssh" / "ssh_host_ed25519_key"
        key.unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)])
        public = key.with_suffix(".pub").read_text().split()
        with self.known_hosts.open("a") as known:
            known.write(f"{address} {public[0]} {public[1]}\n")
        chroot = ["chroot", str(root), "sh", "-c"]
        run(
            [
                *chroot,
                f"id {LOGIN_USER} >/dev/null 2>&1 || "
                f"useradd --create-home --shell /bin/bash --groups sudo {LOGIN_USER}",
            ]
        )
        ssh_dir = root / "home" / LOGIN_USER / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(self.ssh_key.with_suffix(".pub").read_text())
        run([*chroot, f"chown -R {LOGIN_USER}:{LOGIN_USER} /home/{LOGIN_USER}/.ssh"])
        sudoers = root / "etc" / "sudoers.d" / "90-testhost"
        sudoers.write_text(f"{LOGIN_USER} ALL=(ALL) NOPASSWD:ALL\n")
        sudoers.chmod(0o440)
        # No console here (no /dev/console): a getty on it would only fail.
        getty = root / "etc" / "systemd" / "system" / "console-getty.service"
        getty.unlink(missing_ok=True)
        getty.symlink_to("/dev/null")
        for command in prepare:
            run([*chroot, command], timeout=120)

    @staticmethod
    def _boot_script(name: str, root: Path, cgroup: Path, netns: str) -> str:
        """Shell that moves into the host's cgroup and netns, then runs PID 1 in new namespaces."""
        r = shlex.quote(str(root))
        nodes = "\n".join(
            f"mknod -m 666 {r}/dev/{n} c {major} {minor}" for n, major, minor in DEVICES
        )
        inner = f"""set -e
mount -t proc proc {r}/proc
mount -t sysfs -o ro sysfs {r}/sys
mount -t cgroup2 cgroup2 {r}/sys/fs/cgroup
mount -t tmpfs -o mode=755 tmpfs {r}/run
mount -t tmpfs -o mode=755 tmpfs {r}/dev
{nodes}
mkdir {r}/dev/pts {r}/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts {r}/dev/pts
mount -t tmpfs -o mode=1777 tmpfs {r}/dev/shm
ln -s pts/ptmx {r}/dev/ptmx
ln -s /proc/self/fd {r}/dev/fd
ln -s /proc/self/fd/0 {r}/dev/stdin
ln -s /proc/self/fd/1 {r}/dev/stdout
ln -s /proc/self/fd/2 {r}/dev/stderr
hostname {shlex.quote(name)}
exec env -i container=orderflow-testhost {shutil.which("chroot")} {r} /lib/systemd/systemd --system
"""
        # The cgroup namespace is rooted where this shell is when `unshare` runs.
        return (
            f"echo $$ > {shlex.quote(str(cgroup))}/cgroup.procs && "
            f"exec nsenter --net=/run/netns/{shlex.quote(netns)} unshare --cgroup "
            f"--pid --fork --mount --uts --propagation private --kill-child sh -c "
            f"{shlex.quote(inner)}"
        )

    @staticmethod
    def _wait_for_init(boot: subprocess.Popen) -> int:
        """PID (from here) of the process that is PID 1 in the host's PID namespace."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if boot.poll() is not None:
                raise TestHostError(f"test host boot exited with {boot.returncode}")
            for pid in _descendants(boot.pid):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                nspid = next(
                    (line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")),
                    [],
                )
                if len(nspid) > 1 and nspid[-1] == "1":
                    return pid
            time.sleep(0.1)
        raise TestHostError("test host: no PID 1 appeared within 30 s")

    def _wait_for_ssh(self, host: TestHost, console: Path) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while time.monotonic() < deadline:
            if not host.alive():
                tail = console.read_text(errors="replace").strip().splitlines()[-3:]
                raise TestHostError(f"test host {host.name} died while booting: {tail}")
            try:
                with socket.create_connection((host.address, 22), timeout=2) as sock:
                    sock.settimeout(5)
                    if sock.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise TestHostError(f"test host {host.name}: sshd not up within {BOOT_TIMEOUT_S} s")

    def _kill(self, host: TestHost) -> None:
        if host.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(host.pid, signal.SIGKILL)  # the kernel kills the whole PID namespace
            try:
                host.boot.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise TestHostError(f"test host {host.name} survived SIGKILL of PID 1") from None

    def _unplug(self, host: TestHost) -> None:
        """Its network namespace, mounts and cgroup gone; its tree stays on disk."""
        run(["ip", "netns", "delete", host.netns], check=False)
        self._unmount_under(host.root)
        _remove_cgroup(self._cgroup / host.name)
        self.hosts.pop(host.name, None)

    def _remove(self, host: TestHost) -> None:
        self._unplug(host)
        shutil.rmtree(host.root.parent, ignore_errors=True)
        log.info("testhost=%s state=removed", host.name)

    def _unmount_under(self, path: Path) -> None:
        prefix = str(path)
        mounts = [
            line.split()[1]
            for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.split()[1] == prefix or line.split()[1].startswith(prefix + "/")
        ]
        for mount in sorted(mounts, key=len, reverse=True):
            run(["umount", "--lazy", mount], check=False)

    def purge(self) -> None:
        """Remove everything of this lab, including what a killed run left behind."""
        for netns in run(["ip", "netns", "list"], check=False).splitlines():
            netns = netns.split()[0] if netns.strip() else ""
            if not netns.startswith(f"{self.name}-"):
                continue
            for pid in run(["ip", "netns", "pids", netns], check=False).split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            run(["ip", "netns", "delete", netns], check=False)
        if self._cgroup.is_dir():
            for procs in self._cgroup.rglob("cgroup.procs"):
                for pid in procs.read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
        self._unmount_under(self.state_dir)
        # A veth outlives its namespace while a killed host's processes are still exiting.
        for link in self._links():
            run(["ip", "link", "delete", link], check=False)
        run(["ip", "link", "delete", self.bridge], check=False)
        _remove_cgroup(self._cgroup)
        shutil.rmtree(self.state_dir / "hosts", ignore_errors=True)

    def _links(self) -> list[str]:
        """This lab's veth ends on this machine (``<name><index>``, not the bridge)."""
        names = [
            line.split(": ")[1].split("@")[0]
            for line in run(["ip", "-o", "link", "show"], check=False).splitlines()
            if ": " in line
        ]
        return [n for n in names if re.fullmatch(rf"{re.escape(self.name)}[1-9]\d*", n)]

    def leftovers(self) -> list[str]:
        """What of this lab still exists on the machine (empty after a clean stop)."""
        found = [
            f"netns {line.split()[0]}"
            for line in run(["ip", "netns", "list"], check=False).splitlines()
            if line.startswith(f"{self.name}-")
        ]
        if run(["ip", "link", "show", self.bridge], check=False):
            found.append(f"bridge {self.bridge}")
        found += [f"link {link}" for link in self._links()]
        prefix = str(self.state_dir)
        found += [
            f"mount {line.split()[1]}"
            for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.split()[1].startswith(prefix)
        ]
        if self._cgroup.exists():
            found.append(f"cgroup {self._cgroup}")
        return found


def _descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found.append(child)
            queue.append(child)
    return found


def _remove_cgroup(path: Path) -> None:
    """rmdir a cgroup and every cgroup under it, deepest first, once their processes are gone
    (they may still be exiting, and systemd inside may be removing its own cgroups meanwhile)."""
    deadline = time.monotonic() + 30
    while path.exists():
        for parent, children, _ in os.walk(path, topdown=False):
            for child in children:
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.join(parent, child))
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TestHostError(f"cannot remove cgroup {path}") from None
            time.sleep(0.2)
