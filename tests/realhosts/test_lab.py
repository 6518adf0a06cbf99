"""The test-host harness itself: hosts boot systemd, are reachable only here, and leave nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.testhosts import TestHostError
from deploy.testhosts.lab import Lab
from tests.realhosts.conftest import HARNESS_LAB, HARNESS_SUBNET

# The first real-host test may build the rootfs (3-5 min of debootstrap) in its setup.
pytestmark = [pytest.mark.realhosts, pytest.mark.slow, pytest.mark.timeout(2400)]


def test_hosts_boot_systemd_with_their_own_identity_and_no_route_out(lab: Lab) -> None:
    devnull = Path("/dev/null").stat()
    one, two = lab.start("one", 1), lab.start("two", 2)

    machine_ids = set()
    for host in (one, two):
        out = lab.ssh(
            host,
            "hostname; cat /proc/1/comm; sudo -n id -u; "
            "systemctl is-system-running --wait; ip -4 route; cat /etc/machine-id",
        )
        name, init, uid, state, *routes, machine_id = out.split("\n")[:-1]
        assert (name, init, uid, state) == (host.name, "systemd", "0", "running")
        assert routes == [f"{lab.subnet}.0/24 dev eth0 proto kernel scope link src {host.address} "]
        machine_ids.add(machine_id)
    assert len(machine_ids) == 2
    # Their systemd owns its own /dev: this machine's device nodes are left as they were.
    after = Path("/dev/null").stat()
    assert (after.st_mode, after.st_uid, after.st_gid) == (
        devnull.st_mode,
        devnull.st_uid,
        devnull.st_gid,
    )
    # The hosts see each other on the bridge, and nothing else.
    assert lab.ssh(one, f"timeout 5 bash -c '</dev/tcp/{two.address}/22' && echo ok") == "ok\n"
    with pytest.raises(TestHostError):
        lab.ssh(one, "timeout 5 bash -c '</dev/tcp/151.101.2.132/80'")  # deb.debian.org


def test_a_crashed_host_is_gone_at_once_and_the_others_keep_running(lab: Lab) -> None:
    victim, survivor = lab.start("victim", 1), lab.start("survivor", 2)
    victim_pid = victim.pid

    lab.crash(victim)

    assert not Path(f"/proc/{victim_pid}").exists()
    with pytest.raises(TestHostError):
        lab.ssh(victim, "true")
    assert lab.ssh(survivor, "systemctl is-system-running") == "running\n"
    assert [entry for entry in lab.leftovers() if "victim" in entry] == []


def test_purge_removes_what_a_killed_harness_left(rootfs: Path, tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab", name=HARNESS_LAB, subnet=HARNESS_SUBNET, rootfs=rootfs)
    lab.__enter__()
    host = lab.start("orphan", 1)
    # The harness dies without stopping its host (SIGKILL of the test process, say).
    fresh = Lab(tmp_path / "lab", name=HARNESS_LAB, subnet=HARNESS_SUBNET, rootfs=rootfs)
    assert fresh.leftovers()

    fresh.purge()

    assert fresh.leftovers() == []
    assert not Path(f"/proc/{host.pid}").exists() or _is_zombie(host.pid)
    host.boot.wait(timeout=30)


def _is_zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_a_prepare_command_shapes_one_host_only(lab: Lab) -> None:
    bare = lab.start("bare", 1, prepare=["rm -f /usr/bin/python3"])
    normal = lab.start("normal", 2)
    assert lab.ssh(bare, "command -v python3 || echo none") == "none\n"
    assert lab.ssh(normal, "command -v python3") == "/usr/bin/python3\n"


# A second "disk" for a host: a directory of its tree bind-mounted at boot from its fstab.
DISK_FSTAB = "/srv/disk /mnt/data none bind,nofail 0 0"


def test_a_rebooted_host_keeps_its_disk_identity_and_fstab_mounts(lab: Lab) -> None:
    host = lab.start(
        "rebooted",
        1,
        prepare=[f"mkdir -p /srv/disk /mnt/data && echo '{DISK_FSTAB}' >> /etc/fstab"],
    )
    assert lab.ssh(host, "findmnt -n -o SOURCE /mnt/data").strip().endswith("[/srv/disk]")
    lab.ssh(host, "echo kept | sudo tee /mnt/data/file /var/tmp/file >/dev/null")
    old_pid = host.pid

    host = lab.reboot(host)

    assert host.pid != old_pid and not Path(f"/proc/{old_pid}").exists()
    # The same host key (known_hosts still holds), its files, and its mounts again.
    assert lab.ssh(host, "cat /var/tmp/file /mnt/data/file") == "kept\nkept\n"
    assert lab.ssh(host, "systemctl is-system-running --wait") == "running\n"

    # Its disk broken while it was down (systemd would recreate a missing bind source, so the
    # source becomes a file, which cannot be bound onto a directory): the mount fails, and
    # nofail lets the boot go on without it.
    host = lab.reboot(host, prepare=["rm -r /srv/disk && touch /srv/disk"])
    assert lab.ssh(host, "findmnt -n /mnt/data || echo none") == "none\n"
    assert lab.ssh(host, "systemctl is-active mnt-data.mount || true") == "failed\n"
    assert lab.ssh(host, "systemctl is-system-running || true") == "degraded\n"
