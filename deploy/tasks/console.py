"""The UI app host: Redpanda Console from deploy/files/console-compose.yaml.

Its free edition has no login: it listens on 127.0.0.1 and is reached through SSM port
forwarding, unless Pulumi opened its port to allowedCidrs (docs/deploy.md). On a secured
cluster it signs in as its own read-only principal ``console`` (processors/acls.py), with the
CA that tasks/app.py uploaded; its password is in the project's ``.env`` (0600, root's).
"""

from pathlib import Path

from pyinfra import host

from deploy.tasks import security
from deploy.tasks.compose import compose_project, pinned_image

DEPLOY_DIR = Path(__file__).resolve().parent.parent
data = host.data
# Where the container sees the CA (deploy/files/console-compose.yaml mounts CA_FILE there).
CONTAINER_CA = "/etc/orderflow-kafka-ca.pem"
kafka_security = (
    {
        **security.console_settings(data, CONTAINER_CA),
        "CA_FILE": f"{data.orderflow_config_dir}/tls/ca.pem",
    }
    if security.secured(data)
    else {}
)

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
    kafka_security=kafka_security,
)
