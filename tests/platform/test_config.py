"""Stack config validation: defaults, each rule, and the one-line errors users see."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from orderflow_infra.config import (
    DEFAULTS,
    ConfigError,
    StackConfig,
    new_cluster_id,
    parse_config,
)

CLUSTER_ID = "ZljhLFr_RvuBvx_LI3XmUg"
REGION = {"region": "eu-central-1", "kafkaClusterId": CLUSTER_ID}


def test_defaults_are_private_three_brokers_with_nat() -> None:
    cfg = parse_config(REGION)
    assert cfg == StackConfig(region="eu-central-1", kafka_cluster_id=CLUSTER_ID)
    assert (cfg.broker_count, cfg.app_count, cfg.az_count) == (3, 1, 3)
    assert not cfg.public_access
    assert cfg.allowed_cidrs == ()
    assert cfg.nat_gateway


CERT = "arn:aws:acm:eu-central-1:123456789012:certificate/0b1c2d3e-aaaa-bbbb-cccc-0123456789ab"


def test_full_config_parses_json_lists_maps_and_flags() -> None:
    cfg = parse_config(
        {
            **REGION,
            "brokerCount": "1",
            "appCount": "2",
            "kafkaInstanceType": "m7g.large",
            "dataVolumeGb": "250",
            "allowedCidrs": '["203.0.113.7/32", "198.51.100.9", "10.20.0.0/16"]',
            "publicDashboard": "true",
            "dashboardCertificateArn": CERT,
            "sshEnabled": "yes",
            "natGateway": "false",
            "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample me@laptop",
            "tags": '{"team": "payments", "cost-center": 42}',
        }
    )
    assert (cfg.broker_count, cfg.app_count, cfg.az_count) == (1, 2, 2)
    assert cfg.allowed_cidrs == ("203.0.113.7/32", "198.51.100.9/32", "10.20.0.0/16")
    assert cfg.public_dashboard and cfg.ssh_enabled
    assert cfg.dashboard_certificate_arn == CERT
    assert cfg.public_access and not cfg.nat_gateway
    assert cfg.ssh_public_key is not None and cfg.ssh_public_key.startswith("ssh-ed25519 ")
    assert dict(cfg.tags) == {"team": "payments", "cost-center": "42"}


def test_config_is_frozen() -> None:
    cfg = parse_config(REGION)
    with pytest.raises(AttributeError):
        cfg.broker_count = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.tags["x"] = "y"  # type: ignore[index]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"brokerCount": "2"}, "brokerCount must be 1 (development) or 3"),
        ({"brokerCount": "three"}, "brokerCount must be an integer, got 'three'"),
        ({"appCount": "0"}, "appCount must be between 1 and 10, got 0"),
        ({"dataVolumeGb": "0"}, "dataVolumeGb must be between 1 and 16384"),
        ({"kafkaInstanceType": "large"}, "kafkaInstanceType 'large' is not an EC2 instance type"),
        (
            {"allowedCidrs": '["10.0.0.300/32"]'},
            "allowedCidrs entry '10.0.0.300/32' is not a valid",
        ),
        ({"allowedCidrs": '["not-a-cidr"]'}, "allowedCidrs entry 'not-a-cidr' is not a valid CIDR"),
        ({"allowedCidrs": '["10.1.2.3/24"]'}, "did you mean 10.1.2.0/24?"),
        ({"allowedCidrs": '["0.0.0.0/0"]'}, "'0.0.0.0/0' opens the port to the whole internet"),
        ({"allowedCidrs": '["::/0"]'}, "'::/0' opens the port to the whole internet"),
        ({"allowedCidrs": '["2001:db8::/48"]'}, "is IPv6: the VPC has no IPv6"),
        ({"allowedCidrs": '["10.0.0.0/8"]'}, "'10.0.0.0/8' is wider than /16"),
        ({"allowedCidrs": '["128.0.0.0/1"]'}, "'128.0.0.0/1' is wider than /16"),
        ({"allowedCidrs": '["10.0.0.0/15"]'}, "'10.0.0.0/15' is wider than /16"),
        ({"allowedCidrs": "203.0.113.7/32"}, "allowedCidrs must be a JSON list"),
        ({"allowedCidrs": '{"a": 1}'}, "allowedCidrs must be a list"),
        ({"allowedCidrs": "[7]"}, "allowedCidrs entries must be strings, got 7"),
        ({"publicDashboard": "true"}, "allowedCidrs is required when publicDashboard is on"),
        (
            {"sshEnabled": "true", "publicDashboard": "on"},
            "allowedCidrs is required when publicDashboard, sshEnabled is on",
        ),
        (
            {"publicDashboard": "true", "allowedCidrs": '["203.0.113.7/32"]'},
            "dashboardCertificateArn is required when publicDashboard is on",
        ),
        ({"dashboardCertificateArn": "my-cert"}, "'my-cert' is not an ACM certificate ARN"),
        ({"publicConsole": "true"}, "publicConsole was removed: Redpanda Console has no login"),
        ({"publicConsole": "false"}, "publicConsole was removed"),
        ({"kafkaInstanceType": "t2.large"}, "t2.large is a Xen instance type: it has no NVMe"),
        ({"kafkaInstanceType": "m4.xlarge"}, "m4.xlarge is a Xen instance type"),
        ({"kafkaInstanceType": "i3.2xlarge"}, "i3.2xlarge is a Xen instance type"),
        ({"kafkaClusterId": ""}, "kafkaClusterId is required: deploy/cloud.sh up generates one"),
        ({"kafkaClusterId": "not a uuid"}, "kafkaClusterId 'not a uuid' is not a Kafka cluster id"),
        ({"kafkaClusterId": "-ljhLFr_RvuBvx_LI3XmUg"}, "is not a Kafka cluster id"),
        ({"natGateway": "maybe"}, "natGateway must be true or false, got 'maybe'"),
        ({"sshPublicKey": "hello"}, "sshPublicKey must be an OpenSSH public key line"),
        ({"tags": '{"aws:owner": "me"}'}, "tags.aws:owner: the aws: prefix is reserved"),
        ({"tags": '{"owner": ["me"]}'}, "tags.owner must be a plain value"),
        ({"region": "Frankfurt"}, "region 'Frankfurt' is not an AWS region name"),
    ],
)
def test_invalid_config_fails_with_one_clear_line(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({**REGION, **raw})
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_region_is_required() -> None:
    with pytest.raises(ConfigError, match=r"^region is required \(pulumi config set region"):
        parse_config({"kafkaClusterId": CLUSTER_ID})


def test_whole_internet_is_rejected_even_next_to_valid_cidrs() -> None:
    with pytest.raises(ConfigError, match="whole internet"):
        parse_config({**REGION, "sshEnabled": "true", "allowedCidrs": '["203.0.113.7/32", "::/0"]'})


def test_allowed_cidrs_are_normalised_and_deduplicated() -> None:
    cfg = parse_config(
        {**REGION, "allowedCidrs": '["203.0.113.7", "203.0.113.7/32", " 198.51.100.0/24"]'}
    )
    assert cfg.allowed_cidrs == ("203.0.113.7/32", "198.51.100.0/24")


def test_example_stack_config_documents_every_key_and_validates() -> None:
    example = Path(__file__).resolve().parents[2] / "platform" / "Pulumi.example.yaml"
    values = yaml.safe_load(example.read_text())["config"]
    assert {key.removeprefix("orderflow:") for key in values} == set(DEFAULTS) - {"kafkaClusterId"}

    def as_pulumi_config_get(value: object) -> str:  # what pulumi.Config().get returns
        if isinstance(value, list | dict):
            return json.dumps(value)
        return str(value).lower() if isinstance(value, bool) else str(value)

    cfg = parse_config(
        {
            **{k.removeprefix("orderflow:"): as_pulumi_config_get(v) for k, v in values.items()},
            "kafkaClusterId": CLUSTER_ID,  # cloud.sh generates it, never a shared example value
        }
    )
    assert cfg.broker_count == 3 and not cfg.public_access and cfg.allowed_cidrs


@pytest.mark.parametrize("instance_type", ["i3.metal", "m7i.large", "t3.large", "c5.xlarge"])
def test_nitro_instance_types_are_accepted_for_brokers(instance_type: str) -> None:
    assert parse_config({**REGION, "kafkaInstanceType": instance_type}).kafka_instance_type


def test_app_hosts_may_be_xen_they_have_no_data_volume() -> None:
    assert parse_config({**REGION, "appInstanceType": "t2.medium"}).app_instance_type == "t2.medium"


def test_new_cluster_ids_are_kafka_shaped_and_distinct() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cluster_id in ids:
        assert parse_config({**REGION, "kafkaClusterId": cluster_id}).kafka_cluster_id == cluster_id
