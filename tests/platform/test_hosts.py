"""Launch settings every instance shares: IMDSv2, encrypted root, SSM profile, looked-up AMI."""

from __future__ import annotations

import pytest
from orderflow_infra.hosts import architecture

INSTANCE = "aws:ec2/instance:Instance"
CONFIGS = [{"brokerCount": "1"}, {"brokerCount": "3", "appCount": "2"}]


@pytest.mark.parametrize("raw", CONFIGS)
def test_imdsv2_required_with_hop_limit_one(deploy, raw) -> None:
    d = deploy(**raw)
    instances = d.of_type(INSTANCE)
    assert len(instances) == int(raw["brokerCount"]) + int(raw.get("appCount", "1"))
    for instance in instances:
        metadata = instance.inputs["metadataOptions"]
        assert metadata["httpTokens"] == "required", instance.name
        assert metadata["httpPutResponseHopLimit"] == 1, instance.name


@pytest.mark.parametrize("raw", CONFIGS)
def test_every_volume_is_encrypted(deploy, raw) -> None:
    d = deploy(**raw)
    for instance in d.of_type(INSTANCE):
        root = instance.inputs["rootBlockDevice"]
        assert root["encrypted"] is True, instance.name
        assert root["volumeType"] == "gp3"
        assert "ebsBlockDevices" not in instance.inputs  # data volumes are separate resources
    volumes = d.of_type("aws:ebs/volume:Volume")
    assert volumes
    assert all(v.inputs["encrypted"] is True for v in volumes)


def ami_parameters(d) -> list[str]:
    return sorted(c.args["name"] for c in d.calls if c.token == "aws:ssm/getParameter:getParameter")


def test_instances_use_the_ssm_profile_and_canonicals_ssm_ami_parameter(deploy) -> None:
    d = deploy()
    profiles = {
        p.name: p.state["name"] for p in d.of_type("aws:iam/instanceProfile:InstanceProfile")
    }
    assert not [c for c in d.calls if c.token == "aws:ec2/getAmi:getAmi"], "no owner-id lookup"
    assert set(ami_parameters(d)) == {
        "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
    }
    for instance in d.of_type(INSTANCE):
        host = instance.inputs["tags"]["orderflow:host"]
        host_class = "ui" if host == "app-1" else host.split("-")[0]
        assert instance.inputs["iamInstanceProfile"] == profiles[f"orderflow-{host_class}"]
        assert instance.inputs["ami"] == "ami-0123456789abcdef0"  # the parameter's value
        assert "keyName" not in instance.inputs


def test_graviton_instance_types_get_the_arm64_image(deploy) -> None:
    d = deploy(kafkaInstanceType="m7g.large")
    assert ["/amd64/" in n or "/arm64/" in n for n in ami_parameters(d)] == [True, True]
    assert {"/amd64/" in n for n in ami_parameters(d)} == {True, False}
    amis = {i.inputs["tags"]["orderflow:host"]: i.inputs["ami"] for i in d.of_type(INSTANCE)}
    assert amis["kafka-1"] == "ami-0fedcba9876543210" and amis["app-1"] == "ami-0123456789abcdef0"


@pytest.mark.parametrize(
    ("instance_type", "arch"),
    [
        ("m7g.large", "arm64"),
        ("t4g.small", "arm64"),
        ("c7gn.xlarge", "arm64"),
        ("r8gd.2xlarge", "arm64"),
        ("m7i.large", "amd64"),
        ("t3.medium", "amd64"),
        ("g5.xlarge", "amd64"),
        ("m7a.large", "amd64"),
    ],
)
def test_architecture_from_instance_type(instance_type: str, arch: str) -> None:
    assert architecture(instance_type) == arch


def test_a_newer_image_or_a_new_key_never_replaces_a_running_host(deploy) -> None:
    d = deploy()
    instances = d.of_type(INSTANCE)
    assert instances
    for instance in instances:
        # What the engine receives (the SDK translates key_name to the provider's keyName).
        assert d.ignore_changes[(instance.typ, instance.name)] == ["ami", "keyName"]
        assert d.options_of(instance).ignore_changes == ("ami", "key_name")


def test_no_instance_has_a_public_ip_of_its_own(deploy) -> None:
    d = deploy(sshEnabled="true", allowedCidrs='["203.0.113.7/32"]')
    for instance in d.of_type(INSTANCE):
        assert instance.inputs.get("associatePublicIpAddress") in (None, False), instance.name
        assert instance.state["publicIp"] == ""
