"""The UI app host: Redpanda Console from deploy/files/console-compose.yaml.

Its free edition has no login: it listens on 127.0.0.1 and is reached through SSM port
forwarding, unless Pulumi opened its port to allowedCidrs (docs/deploy.md).
"""

from pathlib import Path

from pyinfra import host

from deploy.tasks.compose import compose_project, pinned_image

DEPLOY_DIR = Path(__file__).resolve().parent.parent
data = host.data

compose_project(
    home=data.console_home,
    project_name="orderflow-console",
    compose_file=DEPLOY_DIR / "files" / "console-compose.yaml",
    env_template=DEPLOY_DIR / "templates" / "console.env.j2",
    subject="Redpanda Console",
    settings="the Redpanda Console settings",
    service="Redpanda Console",
    console_home=data.console_home,
    console_image=pinned_image(
        data.console_image, data.console_image_digest, "console_image_digest"
    ),
    bootstrap_servers=data.bootstrap_servers,
    # Loopback unless Pulumi opened the console port (publicConsole) to allowedCidrs.
    bind_address=data.private_ip if data.console_public else "127.0.0.1",
    console_port=data.console_port,
)
