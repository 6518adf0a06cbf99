"""Stack configuration: raw Pulumi config values in, one frozen, validated ``StackConfig`` out.

Pure code (no Pulumi import) so every rule is unit-tested directly. ``parse_config`` raises
``ConfigError`` with a one-line message naming the offending key; ``__main__`` turns it into a
clean ``pulumi.RunError``.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: Config keys this program reads (``pulumi config set <key> <value>``), with their defaults.
DEFAULTS: dict[str, str | None] = {
    "region": None,
    "brokerCount": "3",
    "appCount": "1",
    "kafkaInstanceType": "m7i.large",
    "appInstanceType": "t3.medium",
    "dataVolumeGb": "100",
    "allowedCidrs": "[]",
    "sshPublicKey": None,
    "publicDashboard": "false",
    "dashboardCertificateArn": None,
    "sshEnabled": "false",
    "natGateway": "true",
    "tags": "{}",
    "kafkaClusterId": None,
}

#: Keys this program used to read and now refuses, with the one-line reason.
REMOVED = {
    "publicConsole": (
        "publicConsole was removed: Redpanda Console has no login in its free edition, so it is "
        "never public; reach it with SSM port forwarding (docs/cloud.md)"
    ),
}

BROKER_COUNTS = (1, 3)
MAX_APP_COUNT = 10
MAX_DATA_VOLUME_GB = 16_384  # gp3 upper bound
#: Narrowest-allowed public range: a /16 is already 65 536 addresses.
MIN_CIDR_PREFIX = 16

# Xen (pre-Nitro) families: no NVMe, so the broker's data volume never appears where the deploy
# looks for it (/dev/disk/by-id/nvme-…). Their *.metal sizes are Nitro.
_XEN_FAMILIES = frozenset(
    {"t1", "t2", "m1", "m2", "m3", "m4", "c1", "c3", "c4", "cc2", "cr1", "r3", "r4"}
    | {"i2", "i3", "d2", "g2", "g3", "g3s", "h1", "hs1", "p2", "p3", "x1", "x1e", "f1"}
)

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$")
_SSH_KEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$"
)
_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$")
# Kafka's own format (kafka-storage.sh random-uuid): 16 bytes, URL-safe base64, no padding.
_CLUSTER_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{21}$")
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


class ConfigError(ValueError):
    """A stack config value is missing or invalid; the message is one line naming the key."""


@dataclass(frozen=True)
class StackConfig:
    """Everything the program needs, validated. Build it with ``parse_config``."""

    region: str
    broker_count: int = 3
    app_count: int = 1
    kafka_instance_type: str = "m7i.large"
    app_instance_type: str = "t3.medium"
    data_volume_gb: int = 100
    allowed_cidrs: tuple[str, ...] = ()
    ssh_public_key: str | None = None
    public_dashboard: bool = False
    dashboard_certificate_arn: str | None = None
    ssh_enabled: bool = False
    nat_gateway: bool = True
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    kafka_cluster_id: str = ""

    @property
    def public_access(self) -> bool:
        """True when anything is opened to ``allowed_cidrs``."""
        return self.public_dashboard or self.ssh_enabled

    @property
    def az_count(self) -> int:
        """Availability zones used: one per broker, at least two (subnets need ≥ 2 AZs)."""
        return max(2, self.broker_count)


def parse_config(raw: Mapping[str, str | None]) -> StackConfig:
    """Validate raw config strings (as ``pulumi.Config().get`` returns them) into a StackConfig.

    Missing keys take ``DEFAULTS``; lists and maps are JSON (Pulumi stores structured config
    that way). Raises ``ConfigError`` on the first invalid value.
    """
    for key, reason in REMOVED.items():
        if raw.get(key) is not None:
            raise ConfigError(reason)
    values = {
        key: raw.get(key) if raw.get(key) is not None else default
        for key, default in DEFAULTS.items()
    }
    cfg = StackConfig(
        region=_region(values["region"]),
        broker_count=_broker_count(values["brokerCount"]),
        app_count=_int_in(values["appCount"], "appCount", 1, MAX_APP_COUNT),
        kafka_instance_type=_nitro(
            _instance_type(values["kafkaInstanceType"], "kafkaInstanceType"), "kafkaInstanceType"
        ),
        app_instance_type=_instance_type(values["appInstanceType"], "appInstanceType"),
        data_volume_gb=_int_in(values["dataVolumeGb"], "dataVolumeGb", 1, MAX_DATA_VOLUME_GB),
        allowed_cidrs=_cidrs(values["allowedCidrs"]),
        ssh_public_key=_ssh_key(values["sshPublicKey"]),
        public_dashboard=_flag(values["publicDashboard"], "publicDashboard"),
        dashboard_certificate_arn=_certificate_arn(values["dashboardCertificateArn"]),
        ssh_enabled=_flag(values["sshEnabled"], "sshEnabled"),
        nat_gateway=_flag(values["natGateway"], "natGateway"),
        tags=_tags(values["tags"]),
        kafka_cluster_id=_cluster_id(values["kafkaClusterId"]),
    )
    if cfg.public_access and not cfg.allowed_cidrs:
        opened = [
            key
            for key, on in (
                ("publicDashboard", cfg.public_dashboard),
                ("sshEnabled", cfg.ssh_enabled),
            )
            if on
        ]
        raise ConfigError(
            f"allowedCidrs is required when {', '.join(opened)} is on "
            '(e.g. pulumi config set --path "allowedCidrs[0]" 203.0.113.7/32)'
        )
    if cfg.public_dashboard and not cfg.dashboard_certificate_arn:
        raise ConfigError(
            "dashboardCertificateArn is required when publicDashboard is on: the dashboard is "
            "only public behind TLS (an ACM certificate for your domain, docs/cloud.md)"
        )
    return cfg


def _region(value: str | None) -> str:
    if not value:
        raise ConfigError("region is required (pulumi config set region eu-central-1)")
    if not _REGION.match(value):
        raise ConfigError(f"region {value!r} is not an AWS region name like eu-central-1")
    return value


def _int(value: str | None, key: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{key} must be an integer, got {value!r}") from None


def _int_in(value: str | None, key: str, low: int, high: int) -> int:
    number = _int(value, key)
    if not low <= number <= high:
        raise ConfigError(f"{key} must be between {low} and {high}, got {number}")
    return number


def _broker_count(value: str | None) -> int:
    number = _int(value, "brokerCount")
    if number not in BROKER_COUNTS:
        raise ConfigError(
            f"brokerCount must be 1 (development) or 3 (replicated KRaft quorum), got {number}"
        )
    return number


def _instance_type(value: str | None, key: str) -> str:
    if not value or not _INSTANCE_TYPE.match(value):
        raise ConfigError(f"{key} {value!r} is not an EC2 instance type like m7i.large")
    return value


def _nitro(instance_type: str, key: str) -> str:
    family, size = instance_type.split(".", 1)
    if family in _XEN_FAMILIES and size != "metal":
        raise ConfigError(
            f"{key} {instance_type} is a Xen instance type: it has no NVMe device for the "
            "broker's data volume; use a Nitro type such as m7i.large"
        )
    return instance_type


def _certificate_arn(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if not _ARN.match(value.strip()):
        raise ConfigError(
            f"dashboardCertificateArn {value!r} is not an ACM certificate ARN "
            "(arn:aws:acm:<region>:<account>:certificate/<id>)"
        )
    return value.strip()


def new_cluster_id() -> str:
    """A fresh cluster id like ``kafka-storage.sh random-uuid`` prints (never starting with "-",
    which Kafka's tools would read as an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _cluster_id(value: str | None) -> str:
    if value is None or not value.strip():
        raise ConfigError(
            "kafkaClusterId is required: deploy/cloud.sh up generates one into the stack config "
            '(or: pulumi config set kafkaClusterId "$(python3 platform/orderflow_infra/config.py)")'
        )
    if not _CLUSTER_ID.match(value.strip()):
        raise ConfigError(
            f"kafkaClusterId {value!r} is not a Kafka cluster id "
            "(22 URL-safe base64 characters, as kafka-storage.sh random-uuid prints)"
        )
    return value.strip()


def _flag(value: str | None, key: str) -> bool:
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{key} must be true or false, got {value!r}")


def _json(value: str | None, key: str, kind: type) -> object:
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        raise ConfigError(f"{key} must be a JSON {kind.__name__}, got {value!r}") from None
    if not isinstance(parsed, kind):
        raise ConfigError(f"{key} must be a {kind.__name__}, got {value!r}")
    return parsed


def _cidrs(value: str | None) -> tuple[str, ...]:
    items = _json(value, "allowedCidrs", list)
    cidrs: list[str] = []
    for item in items:  # type: ignore[union-attr]
        if not isinstance(item, str):
            raise ConfigError(f"allowedCidrs entries must be strings, got {item!r}")
        cidrs.append(_cidr(item.strip()))
    return tuple(dict.fromkeys(cidrs))


def _cidr(text: str) -> str:
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        hint = ""
        if "has host bits set" in str(exc):
            hint = f"; did you mean {ipaddress.ip_network(text, strict=False)}?"
        raise ConfigError(f"allowedCidrs entry {text!r} is not a valid CIDR{hint}") from None
    if network.prefixlen == 0:
        raise ConfigError(
            f"allowedCidrs entry {text!r} opens the port to the whole internet; "
            "list your own addresses or use SSM port forwarding"
        )
    if network.version == 6:
        raise ConfigError(
            f"allowedCidrs entry {text!r} is IPv6: the VPC has no IPv6, list IPv4 ranges only"
        )
    if network.prefixlen < MIN_CIDR_PREFIX:
        raise ConfigError(
            f"allowedCidrs entry {text!r} is wider than /{MIN_CIDR_PREFIX}; "
            "list your own addresses or use SSM port forwarding"
        )
    return str(network)


def _ssh_key(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    key = value.strip()
    if not _SSH_KEY.match(key):
        raise ConfigError(
            "sshPublicKey must be an OpenSSH public key line (ssh-ed25519 AAAA… comment)"
        )
    return key


def _tags(value: str | None) -> Mapping[str, str]:
    tags = _json(value, "tags", dict)
    clean: dict[str, str] = {}
    for key, tag in tags.items():  # type: ignore[union-attr]
        if not isinstance(tag, str | int | float | bool):
            raise ConfigError(f"tags.{key} must be a plain value, got {tag!r}")
        if str(key).lower().startswith("aws:"):
            raise ConfigError(f"tags.{key}: the aws: prefix is reserved by AWS")
        if not 1 <= len(str(key)) <= 128 or len(str(tag)) > 256:
            raise ConfigError(f"tags.{key}: keys are 1-128 chars, values at most 256")
        clean[str(key)] = str(tag).lower() if isinstance(tag, bool) else str(tag)
    return MappingProxyType(clean)


if __name__ == "__main__":  # `python3 platform/orderflow_infra/config.py`: a new cluster id
    print(new_cluster_id())
