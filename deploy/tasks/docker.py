"""Every host: Docker engine and the compose plugin, from the distribution's own packages."""

from pyinfra import host
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import systemd

from deploy.tasks import packages

# Ubuntu ships the compose v2 plugin as docker-compose-v2; Debian (13+) as docker-compose.
_release = host.get_fact(LinuxDistribution)
_distro = _release["name"]
if _distro == "Debian" and (_release.get("major") or 0) < 13:
    # Debian 12's docker-compose is Compose v1 (1.29): no `docker compose`, no `name:` key.
    raise DeployError(
        f"{host.name}: Debian {_release.get('major')} packages no Docker Compose v2: use "
        "kafka_runtime=jars and redpanda_console=false there, or Debian 13 / Ubuntu 24.04"
    )
_compose_package = "docker-compose-v2" if _distro == "Ubuntu" else "docker-compose"

packages.install(["docker.io", _compose_package], name="Install Docker engine and compose plugin")

systemd.service(
    name="Run Docker at boot",
    service="docker.service",
    running=True,
    enabled=True,
)
