"""Stack config validation: defaults, each rule, and the one-line errors users see."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from orderflow_infra.config import DEFAULTS, ConfigError, StackConfig, parse_config

REGION = {"region": "eu-central-1"}


def test_defaults_are_private_three_brokers_with_nat() -> None:
    cfg = parse_config(REGION)
    assert cfg == StackConfig(region="eu-central-1")
    assert (cfg.broker_count, cfg.app_count, cfg.az_count) == (3, 1, 3)
    assert not cfg.public_access
    assert cfg.allowed_cidrs == ()
    assert cfg.nat_gateway


def test_full_config_parses_json_lists_maps_and_flags() -> None:
    cfg = parse_config(
        {
            **REGION,
            "brokerCount": "1",
            "appCount": "2",
            "kafkaInstanceType": "m7g.large",
            "dataVolumeGb": "250",
            "allowedCidrs": '["203.0.113.7/32", "2001:db8::/48", "198.51.100.9"]',
            "publicDashboard": "true",
            "sshEnabled": "yes",
            "natGateway": "false",
            "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample me@laptop",
            "tags": '{"team": "payments", "cost-center": 42}',
        }
    )
    assert (cfg.broker_count, cfg.app_count, cfg.az_count) == (1, 2, 2)
    assert cfg.allowed_cidrs == ("203.0.113.7/32", "2001:db8::/48", "198.51.100.9/32")
    assert cfg.public_dashboard and cfg.ssh_enabled and not cfg.public_console
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
        ({"allowedCidrs": "203.0.113.7/32"}, "allowedCidrs must be a JSON list"),
        ({"allowedCidrs": '{"a": 1}'}, "allowedCidrs must be a list"),
        ({"allowedCidrs": "[7]"}, "allowedCidrs entries must be strings, got 7"),
        ({"publicDashboard": "true"}, "allowedCidrs is required when publicDashboard is on"),
        ({"publicConsole": "true"}, "allowedCidrs is required when publicConsole is on"),
        (
            {"sshEnabled": "true", "publicConsole": "on"},
            "allowedCidrs is required when publicConsole, sshEnabled is on",
        ),
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
        parse_config({})


def test_whole_internet_is_rejected_even_next_to_valid_cidrs() -> None:
    with pytest.raises(ConfigError, match="whole internet"):
        parse_config(
            {**REGION, "publicConsole": "true", "allowedCidrs": '["203.0.113.7/32", "::/0"]'}
        )


def test_allowed_cidrs_are_normalised_and_deduplicated() -> None:
    cfg = parse_config(
        {**REGION, "allowedCidrs": '["203.0.113.7", "203.0.113.7/32", "2001:DB8::/32"]'}
    )
    assert cfg.allowed_cidrs == ("203.0.113.7/32", "2001:db8::/32")


def test_example_stack_config_documents_every_key_and_validates() -> None:
    example = Path(__file__).resolve().parents[2] / "platform" / "Pulumi.example.yaml"
    values = yaml.safe_load(example.read_text())["config"]
    assert {key.removeprefix("orderflow:") for key in values} == set(DEFAULTS)

    def as_pulumi_config_get(value: object) -> str:  # what pulumi.Config().get returns
        if isinstance(value, list | dict):
            return json.dumps(value)
        return str(value).lower() if isinstance(value, bool) else str(value)

    cfg = parse_config(
        {k.removeprefix("orderflow:"): as_pulumi_config_get(v) for k, v in values.items()}
    )
    assert cfg.broker_count == 3 and not cfg.public_access and cfg.allowed_cidrs
