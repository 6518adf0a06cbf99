"""Every host: wait for first boot to settle, base packages, the `orderflow` system user, time
sync."""

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.facts.server import Which
from pyinfra.operations import files, server, systemd

from deploy.tasks import packages

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# On a fresh instance cloud-init is still configuring the host (and running apt) when we log
# in. Exit 2 means it finished with recoverable errors; the host is usable. Bounded. Hosts
# without cloud-init (containers, the real-host harness) and hosts where it has finished
# (boot-finished is its last step) skip it, so a later deploy changes nothing here.
if (
    host.get_fact(Which, command="cloud-init")
    and host.get_fact(File, path="/var/lib/cloud/instance/boot-finished") is None
):
    server.shell(
        name="Wait for cloud-init to finish",
        commands=[
            "if command -v cloud-init >/dev/null 2>&1; then "
            f"rc=0; timeout {host.data.cloud_init_timeout} cloud-init status --wait >/dev/null "
            "|| rc=$?; "
            'if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then '
            'echo "cloud-init status --wait failed or timed out (exit $rc)" >&2; exit 1; fi; fi'
        ],
    )

# unattended-upgrades (apt-daily) can hold the dpkg lock for minutes after boot: every apt run
# of ours waits for it, bounded, instead of failing at once.
files.put(
    name="Make apt wait for the dpkg lock",
    src=StringIO(f'DPkg::Lock::Timeout "{host.data.apt_lock_timeout}";\n'),
    dest="/etc/apt/apt.conf.d/90orderflow-lock-timeout",
    user="root",
    group="root",
    mode="644",
)

packages.install(host.data.base_packages, name="Install base packages", update=True)

server.group(
    name="Create the orderflow system group",
    group="orderflow",
    system=True,
)

# The services run as this user, never as root. No login shell, no password, no SSH keys.
server.user(
    name="Create the orderflow system user",
    user="orderflow",
    group="orderflow",
    system=True,
    home="/var/lib/orderflow",
    shell="/usr/sbin/nologin",
    create_home=False,
)

chrony_sources = files.template(
    name="Point chrony at the Amazon Time Sync Service",
    src=str(TEMPLATES / "chrony-aws.sources.j2"),
    dest="/etc/chrony/sources.d/aws.sources",
    user="root",
    group="root",
    mode="644",
    servers=host.data.chrony_servers,
)

systemd.service(
    name="Run chrony at boot",
    service="chrony.service",
    running=True,
    enabled=True,
)

server.shell(
    name="Reload chrony's time sources",
    commands=["chronyc reload sources"],
    _if=chrony_sources.did_change,
)
