"""The stack-output contract read by deploy/inventory.py (sample: deploy/stack-outputs.sample.json).

Pure functions over plain values, so the exact strings are unit-tested without Pulumi.
Top-level keys: hosts, bootstrap_servers, dashboard_url, console_url, ssh_commands,
ssm_commands, region, kafka_cluster_id, kafka_secret_arns, kafka_secret_readers,
kafka_ca_certificate. Every host record has the same keys (null where they do not apply).
No output holds a secret's value: only the Secrets Manager ARNs, and the CA's public
certificate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orderflow_infra.credentials import READERS
from orderflow_infra.hosts import SSH_USER
from orderflow_infra.security import CONSOLE_PORT, DASHBOARD_PORT, KAFKA_CLIENT_PORT

CONTRACT_KEYS = (
    "hosts",
    "bootstrap_servers",
    "dashboard_url",
    "console_url",
    "ssh_commands",
    "ssm_commands",
    "region",
    "kafka_cluster_id",
    "kafka_secret_arns",
    "kafka_secret_readers",
    "kafka_ca_certificate",
)
HOST_KEYS = (
    "name",
    "role",
    "instance_id",
    "private_ip",
    "public_ip",
    "az",
    "node_id",
    "data_volume_id",
)
UI_HOST = "app-1"  # the dashboard and Redpanda Console run on the first app host


@dataclass(frozen=True)
class Exposure:
    """What the stack opened to allowedCidrs besides the dashboard's load balancer."""

    ssh_enabled: bool = False


@dataclass(frozen=True)
class KafkaAccess:
    """Where the cluster's secrets are: ``secret_arns`` (principal or ``ca-key`` → Secrets
    Manager ARN) and the CA's public certificate (PEM)."""

    secret_arns: Mapping[str, str]
    ca_certificate: str


def host_class(host: dict[str, Any]) -> str:
    """The host's role class (``credentials.READERS``): kafka, ui (``app-1``) or app."""
    if host["role"] == "kafka":
        return "kafka"
    return "ui" if host["name"] == UI_HOST else "app"


def host_record(
    name: str,
    role: str,
    instance_id: str,
    private_ip: str,
    public_ip: str | None,
    az: str,
    node_id: int | None = None,
    data_volume_id: str | None = None,
) -> dict[str, Any]:
    """One ``hosts`` entry; AWS reports "no public IP" as an empty string, stored as None."""
    return {
        "name": name,
        "role": role,
        "instance_id": instance_id,
        "private_ip": private_ip,
        "public_ip": public_ip or None,
        "az": az,
        "node_id": node_id,
        "data_volume_id": data_volume_id,
    }


def bootstrap_servers(hosts: list[dict[str, Any]]) -> str:
    """``ip:9092,…`` of the brokers' private IPs, in node-id order."""
    brokers = sorted((h for h in hosts if h["role"] == "kafka"), key=lambda h: h["node_id"])
    return ",".join(f"{h['private_ip']}:{KAFKA_CLIENT_PORT}" for h in brokers)


def ssm_session(instance_id: str, region: str, document: str) -> str:
    """A Session Manager shell on the instance, with the stack's session preferences
    (``document``: logged to CloudWatch, encrypted with the stack's KMS key)."""
    return (
        f"aws ssm start-session --target {instance_id} --region {region} --document-name {document}"
    )


def ssm_port_forward(instance_id: str, region: str, port: int) -> str:
    """Forward localhost:``port`` to the same port on the instance."""
    return (
        f"aws ssm start-session --target {instance_id} --region {region} "
        "--document-name AWS-StartPortForwardingSession "
        f"--parameters portNumber={port},localPortNumber={port}"
    )


def ssh_command(host: dict[str, Any], region: str, direct: bool) -> str:
    """Direct SSH to the public IP when ``direct``; otherwise SSH tunnelled through SSM (no
    inbound port 22; needs the instance to hold your key, see sshPublicKey)."""
    if direct and host["public_ip"]:
        return f"ssh {SSH_USER}@{host['public_ip']}"
    proxy = (
        "aws ssm start-session --target %h --document-name AWS-StartSSHSession "
        f"--parameters portNumber=%p --region {region}"
    )
    return f"ssh -o ProxyCommand='{proxy}' {SSH_USER}@{host['instance_id']}"


def contract(
    region: str,
    hosts: list[dict[str, Any]],
    exposure: Exposure,
    session_document: str,
    kafka_cluster_id: str,
    dashboard_url: str | None = None,
    *,
    kafka: KafkaAccess,
) -> dict[str, Any]:
    """All stack outputs, keyed by CONTRACT_KEYS, from the resolved host records.

    ``dashboard_url`` is the public HTTPS load balancer's when there is one; otherwise both UIs
    are reached on localhost through SSM port forwarding. ``kafka_secret_readers`` says which
    secrets each host's instance role may read (and so which the deploy fetches there).
    """
    ui = next(h for h in hosts if h["name"] == UI_HOST)
    return {
        "hosts": hosts,
        "bootstrap_servers": bootstrap_servers(hosts),
        "dashboard_url": dashboard_url or f"http://localhost:{DASHBOARD_PORT}",
        "console_url": f"http://localhost:{CONSOLE_PORT}",
        "ssh_commands": {h["name"]: ssh_command(h, region, exposure.ssh_enabled) for h in hosts},
        "ssm_commands": {
            "sessions": {
                h["name"]: ssm_session(h["instance_id"], region, session_document) for h in hosts
            },
            "port_forwarding": {
                "dashboard": ssm_port_forward(ui["instance_id"], region, DASHBOARD_PORT),
                "console": ssm_port_forward(ui["instance_id"], region, CONSOLE_PORT),
            },
        },
        "region": region,
        "kafka_cluster_id": kafka_cluster_id,
        "kafka_secret_arns": dict(sorted(kafka.secret_arns.items())),
        "kafka_secret_readers": {h["name"]: list(READERS[host_class(h)]) for h in hosts},
        "kafka_ca_certificate": kafka.ca_certificate,
    }
