"""The UI app host: Redpanda Console from deploy/files/console-compose.yaml.

Its free edition has no login: it listens on 127.0.0.1 and is reached through SSM port
forwarding, unless Pulumi opened its port to allowedCidrs (docs/deploy.md).
"""

from pathlib import Path

from pyinfra import host
from pyinfra.operations import docker, files

DEPLOY_DIR = Path(__file__).resolve().parent.parent
data = host.data

files.directory(
    name="Create the Redpanda Console compose project directory",
    path=data.console_home,
    user="root",
    group="root",
    mode="755",
)

files.put(
    name="Upload the Redpanda Console compose file",
    src=str(DEPLOY_DIR / "files" / "console-compose.yaml"),
    dest=f"{data.console_home}/compose.yaml",
    user="root",
    group="root",
    mode="644",
)

files.template(
    name="Render the Redpanda Console settings",
    src=str(DEPLOY_DIR / "templates" / "console.env.j2"),
    dest=f"{data.console_home}/.env",
    user="root",
    group="root",
    mode="600",
    console_home=data.console_home,
    console_image=data.console_image,
    bootstrap_servers=data.bootstrap_servers,
    # Loopback unless Pulumi opened the console port (publicConsole) to allowedCidrs.
    bind_address=data.private_ip if data.console_public else "127.0.0.1",
    console_port=data.console_port,
)

# Compose recreates the container only when the compose file or .env changed.
docker.compose(
    name="Start Redpanda Console (recreated only when its compose file or settings changed)",
    project_directory=data.console_home,
    project_name="orderflow-console",
)
