"""Every host: base packages, the `orderflow` system user, time sync."""

from pathlib import Path

from pyinfra import host
from pyinfra.operations import files, server, systemd

from deploy.tasks import packages

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

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
