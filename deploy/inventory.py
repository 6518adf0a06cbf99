"""pyinfra inventory built from the Pulumi stack outputs.

    pulumi stack output --json > .pulumi-outputs.json
    pyinfra deploy/inventory.py deploy/deploy.py

Reads the JSON written by ``pulumi stack output --json`` (the contract sampled in
``deploy/stack-outputs.sample.json``) and defines two host groups, ``kafka`` and ``app``, as
``(name, data)`` tuples; the first app host gets ``ui_host`` (dashboard and console).
Cluster-wide values (bootstrap servers, controller voters, replication
factor) are group data of both groups.

Environment (read here because pyinfra inventories are executed configuration):
    ORDERFLOW_PULUMI_OUTPUTS  outputs file (default: .pulumi-outputs.json at the repo root)
    ORDERFLOW_SSH_VIA         ``ssm`` (default: SSH tunnelled through AWS SSM Session Manager,
                              host = instance id, no inbound port 22) or ``public`` (direct SSH
                              to the hosts with a public IP, i.e. the UI host with sshEnabled;
                              every other host, brokers included, still through SSM: they have
                              no public IP and no port 22 open to anything)
    ORDERFLOW_SSH_USER        login user of the AMI (default ``ubuntu``)
    ORDERFLOW_SSH_KEY         private key file (default: the SSH agent / ~/.ssh keys)
    ORDERFLOW_SSH_KNOWN_HOSTS known_hosts file (default: ~/.ssh/known_hosts)
"""

import json
import os
from pathlib import Path

from pyinfra.api.exceptions import InventoryError

_DEPLOY_DIR = Path(__file__).resolve().parent
_DEFAULT_OUTPUTS = _DEPLOY_DIR.parent / ".pulumi-outputs.json"
# Host i-* → ProxyCommand `aws ssm start-session ... AWS-StartSSHSession`.
_SSM_SSH_CONFIG = _DEPLOY_DIR / "files" / "ssm-ssh-config"
_HOST_KEYS = ("name", "role", "instance_id", "private_ip", "public_ip", "az")
# The SSM agent may still be registering, or sshd still starting, when the deploy begins:
# retry each connection with a backoff (pyinfra's default is a single try).
_CONNECT_RETRIES = {
    "ssh_connect_retries": 5,
    "ssh_connect_retry_min_delay": 5,
    "ssh_connect_retry_max_delay": 30,
}


def _load_outputs(path: Path) -> dict:
    if not path.is_file():
        raise InventoryError(
            f"no Pulumi outputs at {path}: run `pulumi up` and "
            "`pulumi stack output --json > .pulumi-outputs.json` first "
            "(or set ORDERFLOW_PULUMI_OUTPUTS)"
        )
    try:
        outputs = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InventoryError(f"cannot read Pulumi outputs {path}: {exc}") from exc
    if not isinstance(outputs, dict):
        raise InventoryError(f"Pulumi outputs {path}: expected a JSON object")
    for key in ("hosts", "bootstrap_servers", "region", "kafka_cluster_id"):
        if key not in outputs:
            raise InventoryError(f"Pulumi outputs {path}: missing key {key!r}")
    hosts = outputs["hosts"]
    if not isinstance(hosts, list) or not hosts:
        raise InventoryError(f"Pulumi outputs {path}: 'hosts' must be a non-empty list")
    for entry in hosts:
        missing = [key for key in _HOST_KEYS if key not in entry]
        if missing:
            raise InventoryError(f"Pulumi outputs {path}: host entry lacks {', '.join(missing)}")
        if entry["role"] not in ("kafka", "app"):
            raise InventoryError(f"Pulumi outputs {path}: unknown role {entry['role']!r}")
    return outputs


def _connection(entry: dict, via: str, ssh_user: str, ssh_key: str | None) -> dict:
    data: dict = {
        "ssh_user": ssh_user,
        # Instances are new on every `pulumi up`; their first key is trusted, later changes are not.
        "ssh_strict_host_key_checking": "accept-new",
        **_CONNECT_RETRIES,
    }
    if ssh_key:
        data["ssh_key"] = ssh_key
    if known_hosts := os.environ.get("ORDERFLOW_SSH_KNOWN_HOSTS"):
        data["ssh_known_hosts_file"] = known_hosts
    if via not in ("ssm", "public"):
        raise InventoryError(f"ORDERFLOW_SSH_VIA must be 'ssm' or 'public', not {via!r}")
    if via == "public" and entry["public_ip"]:
        data["ssh_hostname"] = entry["public_ip"]
    else:
        data["ssh_hostname"] = entry["instance_id"]
        data["ssh_config_file"] = str(_SSM_SSH_CONFIG)
    return data


def _host(
    entry: dict, via: str, ssh_user: str, ssh_key: str | None, ui_host: bool = False
) -> tuple[str, dict]:
    data = _connection(entry, via, ssh_user, ssh_key)
    data.update(
        role=entry["role"],
        instance_id=entry["instance_id"],
        private_ip=entry["private_ip"],
        public_ip=entry["public_ip"],
        az=entry["az"],
    )
    if entry["role"] == "app":
        data["ui_host"] = ui_host
    if entry["role"] == "kafka":
        data["kafka_node_id"] = int(entry["node_id"])
        data["kafka_data_volume_id"] = entry.get("data_volume_id")
    return entry["name"], data


def _is_public(url: str | None) -> bool:
    return bool(url) and not url.startswith(("http://localhost", "http://127.0.0.1"))


def _cluster_data(outputs: dict, kafka_entries: list[dict]) -> dict:
    """Values every host needs: how to reach Kafka and how durable it is."""
    node_ids = sorted(int(entry["node_id"]) for entry in kafka_entries)
    if node_ids != list(range(1, len(node_ids) + 1)):
        raise InventoryError(f"kafka node ids must be 1..{len(node_ids)}, got {node_ids}")
    brokers = len(kafka_entries)
    listed = sorted(
        address.strip().rpartition(":")[0]
        for address in str(outputs["bootstrap_servers"]).split(",")
        if address.strip()
    )
    if listed != sorted(entry["private_ip"] for entry in kafka_entries):
        raise InventoryError(
            f"bootstrap_servers lists {len(listed)} broker(s) ({', '.join(listed) or 'none'}) "
            f"but the outputs have {brokers} kafka host(s) "
            f"({', '.join(entry['private_ip'] for entry in kafka_entries)})"
        )
    replication_factor = min(3, brokers)
    return {
        "region": outputs["region"],
        "bootstrap_servers": outputs["bootstrap_servers"],
        "dashboard_url": outputs.get("dashboard_url"),
        "console_url": outputs.get("console_url"),
        # Pulumi opens a UI port to allowedCidrs only when asked; its URL is then not localhost.
        "dashboard_public": _is_public(outputs.get("dashboard_url")),
        "console_public": _is_public(outputs.get("console_url")),
        "kafka_broker_count": brokers,
        # Generated per stack by deploy/cloud.sh and kept in its Pulumi config.
        "kafka_cluster_id": outputs["kafka_cluster_id"],
        "kafka_replication_factor": replication_factor,
        # RF 3 / min ISR 2: an acks=all write survives one broker down; RF 1 has nothing to spare.
        "kafka_min_isr": max(1, replication_factor - 1),
        "kafka_hosts": [
            {"node_id": int(entry["node_id"]), "private_ip": entry["private_ip"]}
            for entry in sorted(kafka_entries, key=lambda entry: int(entry["node_id"]))
        ],
    }


_outputs = _load_outputs(Path(os.environ.get("ORDERFLOW_PULUMI_OUTPUTS") or _DEFAULT_OUTPUTS))
_via = os.environ.get("ORDERFLOW_SSH_VIA", "ssm")
_ssh_user = os.environ.get("ORDERFLOW_SSH_USER", "ubuntu")
_ssh_key = os.environ.get("ORDERFLOW_SSH_KEY") or None

_kafka_entries = [entry for entry in _outputs["hosts"] if entry["role"] == "kafka"]
_app_entries = [entry for entry in _outputs["hosts"] if entry["role"] == "app"]
if not _kafka_entries or not _app_entries:
    raise InventoryError("Pulumi outputs must list at least one kafka and one app host")
_cluster = _cluster_data(_outputs, _kafka_entries)

if _via == "public" and not any(entry["public_ip"] for entry in _outputs["hosts"]):
    raise InventoryError(
        "ORDERFLOW_SSH_VIA=public but no host has a public IP: set sshEnabled (and allowedCidrs) "
        "in the stack, or use ORDERFLOW_SSH_VIA=ssm"
    )
# The ProxyCommand's `aws` CLI inherits this process's environment: pin the stack's region.
os.environ["AWS_REGION"] = _outputs["region"]

kafka = (
    [_host(entry, _via, _ssh_user, _ssh_key) for entry in _kafka_entries],
    dict(_cluster),
)
# The dashboard and Redpanda Console run on the first app host (app-1), where the Pulumi
# outputs point dashboard_url, console_url and the port forwarding commands.
app = (
    [
        _host(entry, _via, _ssh_user, _ssh_key, ui_host=index == 0)
        for index, entry in enumerate(_app_entries)
    ],
    dict(_cluster),
)
