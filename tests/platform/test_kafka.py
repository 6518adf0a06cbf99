"""Kafka cluster component: brokers private, spread over AZs, each with its own data volume."""

from __future__ import annotations

import pytest

from tests.platform.conftest import Deployment, Recorded

INSTANCE = "aws:ec2/instance:Instance"
VOLUME = "aws:ebs/volume:Volume"
ATTACHMENT = "aws:ec2/volumeAttachment:VolumeAttachment"


def brokers(d: Deployment) -> list[Recorded]:
    return [
        i for i in d.of_type(INSTANCE) if i.inputs["tags"]["orderflow:host"].startswith("kafka")
    ]


@pytest.mark.parametrize("count", [1, 3])
def test_broker_count_and_az_spread(deploy, count: int) -> None:
    d = deploy(brokerCount=str(count))
    nodes = brokers(d)
    assert len(nodes) == count
    assert len({n.state["availabilityZone"] for n in nodes}) == count
    kafka_hosts = [h for h in d.outputs["hosts"] if h["role"] == "kafka"]
    assert [h["node_id"] for h in kafka_hosts] == list(range(1, count + 1))
    assert [h["name"] for h in kafka_hosts] == [f"kafka-{i}" for i in range(1, count + 1)]
    assert len({h["az"] for h in kafka_hosts}) == count


@pytest.mark.parametrize(
    "raw",
    [
        {"brokerCount": "1"},
        {"brokerCount": "3"},
        {"brokerCount": "3", "sshEnabled": "true", "allowedCidrs": '["203.0.113.7/32"]'},
    ],
)
def test_brokers_have_no_public_ip_and_sit_in_private_subnets(deploy, raw) -> None:
    d = deploy(**raw)
    for node in brokers(d):
        assert "associatePublicIpAddress" not in node.inputs and "subnetId" not in node.inputs
        interface = d.by_id(node.inputs["primaryNetworkInterface"]["networkInterfaceId"])
        assert d.by_id(interface.inputs["subnetId"]).inputs["tags"]["Tier"] == "private"
        assert node.state["publicIp"] == ""
    assert all(h["public_ip"] is None for h in d.outputs["hosts"] if h["role"] == "kafka")


def test_each_broker_keeps_its_private_ip_on_its_own_network_interface(deploy) -> None:
    d = deploy()
    broker_group = next(
        g for g in d.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("-broker")
    )
    records = {h["name"]: h for h in d.outputs["hosts"] if h["role"] == "kafka"}
    for node in brokers(d):
        interface = d.by_id(node.inputs["primaryNetworkInterface"]["networkInterfaceId"])
        assert interface.inputs["securityGroups"] == [broker_group.id]
        # The address the voter list and bootstrap servers use is the interface's, which
        # outlives the instance.
        assert (
            records[node.inputs["tags"]["orderflow:host"]]["private_ip"]
            == interface.state["privateIp"]
        )
        options = d.options_of(node)
        assert options.delete_before_replace, "the interface holds one instance at a time"
    assert d.outputs["bootstrap_servers"] == ",".join(
        f"{records[f'kafka-{i}']['private_ip']}:9092" for i in (1, 2, 3)
    )


def test_data_volume_attachments_are_replacement_and_destroy_safe(deploy) -> None:
    d = deploy()
    attachments = d.of_type(ATTACHMENT)
    assert len(attachments) == 3
    for attachment in attachments:
        # VolumeInUse otherwise: the new attachment would be made before the old one is gone.
        assert d.options_of(attachment).delete_before_replace is True
        # A mounted, busy volume can hang in "detaching" on destroy; a stopped instance cannot.
        assert attachment.inputs["stopInstanceBeforeDetaching"] is True
        assert "forceDetach" not in attachment.inputs


@pytest.mark.parametrize("count", [1, 3])
def test_each_broker_has_its_own_encrypted_gp3_data_volume_in_its_az(deploy, count: int) -> None:
    d = deploy(brokerCount=str(count), dataVolumeGb="250")
    volumes = {v.id: v for v in d.of_type(VOLUME)}
    attachments = d.of_type(ATTACHMENT)
    assert len(volumes) == len(attachments) == count
    assert len({a.inputs["instanceId"] for a in attachments}) == count
    assert len({a.inputs["volumeId"] for a in attachments}) == count
    nodes = {n.id: n for n in brokers(d)}
    for attachment in attachments:
        volume = volumes[attachment.inputs["volumeId"]]
        node = nodes[attachment.inputs["instanceId"]]
        assert volume.inputs["encrypted"] is True
        assert volume.inputs["type"] == "gp3"
        assert volume.inputs["size"] == 250
        assert volume.inputs["availabilityZone"] == node.state["availabilityZone"]
        assert attachment.inputs["deviceName"] == "/dev/sdf"
    reported = {h["data_volume_id"] for h in d.outputs["hosts"] if h["role"] == "kafka"}
    assert reported == set(volumes)


def test_brokers_use_the_configured_instance_type(deploy) -> None:
    d = deploy(kafkaInstanceType="r7i.xlarge")
    assert {n.inputs["instanceType"] for n in brokers(d)} == {"r7i.xlarge"}
