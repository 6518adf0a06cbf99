"""Every host: Docker engine and the compose plugin, from the distribution's own packages."""

from pyinfra import host
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import systemd

from deploy.tasks import packages

# Ubuntu ships the compose v2 plugin as docker-compose-v2; Debian (13+) as docker-compose.
_distro = host.get_fact(LinuxDistribution)["name"]
_compose_package = "docker-compose-v2" if _distro == "Ubuntu" else "docker-compose"

packages.install(["docker.io", _compose_package], name="Install Docker engine and compose plugin")

systemd.service(
    name="Run Docker at boot",
    service="docker.service",
    running=True,
    enabled=True,
)
