"""Launch settings every instance shares: IMDSv2, encrypted root, SSM profile, looked-up AMI."""

from __future__ import annotations

import pytest
from orderflow_infra.hosts import UBUNTU_OWNER, architecture

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


def test_instances_use_the_ssm_profile_and_the_looked_up_ami(deploy) -> None:
    d = deploy()
    profile = d.of_type("aws:iam/instanceProfile:InstanceProfile")[0]
    amis = [c for c in d.calls if c.token == "aws:ec2/getAmi:getAmi"]
    assert amis, "AMI must be looked up, not hard-coded"
    for call in amis:
        assert call.args["owners"] == [UBUNTU_OWNER]
        names = next(f["values"] for f in call.args["filters"] if f["name"] == "name")
        assert names[0].startswith("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-")
        assert call.args["mostRecent"] is True
    for instance in d.of_type(INSTANCE):
        assert instance.inputs["iamInstanceProfile"] == profile.state["name"]
        assert instance.inputs["ami"] == "ami-0123456789abcdef0"
        assert "keyName" not in instance.inputs


def test_graviton_instance_types_get_the_arm64_image(deploy) -> None:
    d = deploy(kafkaInstanceType="m7g.large")
    names = sorted(
        next(f["values"] for f in c.args["filters"] if f["name"] == "name")[0]
        for c in d.calls
        if c.token == "aws:ec2/getAmi:getAmi"
    )
    assert ["-amd64-" in names[0], "-arm64-" in names[1]] == [True, True]


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


def test_a_newer_image_never_replaces_a_running_host(deploy) -> None:
    d = deploy()
    instances = d.of_type(INSTANCE)
    assert instances
    for instance in instances:
        assert d.ignore_changes[(instance.typ, instance.name)] == ["ami"], instance.name
