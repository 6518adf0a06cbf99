"""What changing each config toggle replaces, created and deletes, diffed from two mock runs.

Mocks know nothing of the provider's schema, so ``FORCE_NEW`` lists, per resource type this
program uses, the inputs whose change makes AWS (the Terraform AWS provider behind pulumi-aws)
create a new resource ("Changing this forces a new resource" in its docs). A change to any of
them on an existing resource, unless covered by ``ignore_changes``, is a replacement. Every
replacement, creation and deletion a toggle causes is listed below; an unlisted one fails.
docs/cloud.md carries the same table for users.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.platform.conftest import Deployment

FORCE_NEW: dict[str, set[str]] = {
    # A replaced provider replaces every resource it manages.
    "pulumi:providers:aws": {"region"},
    "aws:ec2/instance:Instance": {
        "ami",
        "availabilityZone",
        "subnetId",
        "associatePublicIpAddress",
        "keyName",
        "privateIp",
        "primaryNetworkInterface",
        "tenancy",
        "placementGroup",
        "ebsBlockDevices",
        "ephemeralBlockDevices",
        "networkInterfaces",
    },
    "aws:ec2/networkInterface:NetworkInterface": {"subnetId"},
    "aws:ebs/volume:Volume": {"availabilityZone", "encrypted", "kmsKeyId", "snapshotId"},
    "aws:ec2/volumeAttachment:VolumeAttachment": {"deviceName", "instanceId", "volumeId"},
    "aws:ec2/subnet:Subnet": {"availabilityZone", "cidrBlock", "vpcId"},
    "aws:ec2/vpc:Vpc": {"cidrBlock"},
    "aws:ec2/route:Route": {"routeTableId", "destinationCidrBlock"},
    "aws:ec2/routeTable:RouteTable": {"vpcId"},
    "aws:ec2/internetGateway:InternetGateway": set(),  # vpcId: detached and re-attached
    "aws:ec2/routeTableAssociation:RouteTableAssociation": {"subnetId"},
    "aws:ec2/securityGroup:SecurityGroup": {"name", "namePrefix", "description", "vpcId"},
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": {"securityGroupId"},
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": {"securityGroupId"},
    "aws:ec2/eip:Eip": {"domain"},
    "aws:ec2/keyPair:KeyPair": {"keyName", "publicKey"},
    "aws:ec2/natGateway:NatGateway": {"allocationId", "subnetId", "connectivityType"},
    "aws:ec2/vpcEndpoint:VpcEndpoint": {"serviceName", "vpcId", "vpcEndpointType"},
    "aws:ec2/flowLog:FlowLog": {
        "vpcId",
        "trafficType",
        "logDestination",
        "logDestinationType",
        "iamRoleArn",
        "maxAggregationInterval",
    },
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": {"vpcId"},
    "aws:cloudwatch/logGroup:LogGroup": {"name", "namePrefix"},
    "aws:iam/role:Role": {"name", "namePrefix"},
    "aws:iam/rolePolicy:RolePolicy": {"name", "role"},
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": {"role", "policyArn"},
    "aws:iam/instanceProfile:InstanceProfile": {"name", "namePrefix"},
    "aws:kms/key:Key": {"customerMasterKeySpec", "keyUsage"},
    "aws:ssm/document:Document": {"name", "documentType"},
    "aws:lb/loadBalancer:LoadBalancer": {"name", "internal", "loadBalancerType"},
    "aws:lb/targetGroup:TargetGroup": {"name", "port", "protocol", "vpcId", "targetType"},
    "aws:lb/targetGroupAttachment:TargetGroupAttachment": {"targetGroupArn", "targetId", "port"},
    "aws:lb/listener:Listener": {"loadBalancerArn"},
    "aws:secretsmanager/secret:Secret": {"name", "namePrefix"},
    "aws:secretsmanager/secretVersion:SecretVersion": {"secretId", "secretString", "secretBinary"},
    # Every input of pulumi-random and pulumi-tls resources forces a new one.
    "random:index/randomPassword:RandomPassword": {
        "length",
        "special",
        "upper",
        "lower",
        "numeric",
        "minLower",
        "minUpper",
        "minNumeric",
        "minSpecial",
        "overrideSpecial",
        "keepers",
    },
    "tls:index/privateKey:PrivateKey": {"algorithm", "ecdsaCurve", "rsaBits"},
    "tls:index/selfSignedCert:SelfSignedCert": {
        "privateKeyPem",
        "subject",
        "validityPeriodHours",
        "allowedUses",
        "isCaCertificate",
        "dnsNames",
        "ipAddresses",
        "uris",
    },
}

CIDRS = '["203.0.113.7/32"]'
CERT = "arn:aws:acm:eu-central-1:123456789012:certificate/0b1c2d3e-aaaa-bbbb-cccc-0123456789ab"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample me@laptop"
ROUTE = "aws:ec2/route:Route"
RULE_IN = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
RULE_OUT = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
LB_PARTS = {
    "aws:lb/loadBalancer:LoadBalancer/dashboard",
    "aws:lb/targetGroup:TargetGroup/dashboard",
    "aws:lb/targetGroupAttachment:TargetGroupAttachment/dashboard",
    "aws:lb/listener:Listener/dashboard-https",
    "aws:ec2/securityGroup:SecurityGroup/orderflow-lb",
    f"{RULE_IN}/orderflow-dashboard-1",
    f"{RULE_IN}/orderflow-dashboard-from-lb",
    f"{RULE_OUT}/orderflow-lb-to-dashboard",
    "orderflow:dashboard:PublicDashboard/dashboard",
}
ENDPOINTS = {
    *(
        f"aws:ec2/vpcEndpoint:VpcEndpoint/orderflow-{s}"
        for s in ("ssm", "ssmmessages", "ec2messages", "secretsmanager")
    ),
    "aws:ec2/securityGroup:SecurityGroup/orderflow-endpoints",
    f"{RULE_IN}/orderflow-endpoints-https",
}
NAT = {
    "aws:ec2/natGateway:NatGateway/orderflow",
    "aws:ec2/eip:Eip/orderflow-nat",
    f"{ROUTE}/orderflow-private-default",
    f"{ROUTE}/orderflow-ui-default",
}


def brokers_and_interfaces(*nodes: int) -> set[str]:
    return {
        item
        for n in nodes
        for item in (
            f"aws:ec2/instance:Instance/kafka-{n}",
            f"aws:ec2/networkInterface:NetworkInterface/kafka-{n}",
            f"aws:ebs/volume:Volume/kafka-{n}-data",
            f"aws:ec2/volumeAttachment:VolumeAttachment/kafka-{n}-data",
        )
    }


# (from, to, replaced, created, deleted): config overrides of BASE_CONFIG before and after.
TOGGLES = [
    pytest.param(
        {},
        {"sshPublicKey": KEY},
        set(),
        {"aws:ec2/keyPair:KeyPair/orderflow"},
        set(),
        id="ssh-key-set",
    ),
    pytest.param(
        {"sshPublicKey": KEY},
        {"sshPublicKey": KEY.replace("Example", "Another")},
        {"aws:ec2/keyPair:KeyPair/orderflow"},  # the key pair only; hosts ignore key_name
        set(),
        set(),
        id="ssh-key-changed",
    ),
    pytest.param(
        {},
        {"sshEnabled": "true", "allowedCidrs": CIDRS},
        set(),
        {"aws:ec2/eip:Eip/app-1", f"{RULE_IN}/orderflow-ssh-1"},
        set(),
        id="ssh-enabled",
    ),
    pytest.param(
        {},
        {"publicDashboard": "true", "dashboardCertificateArn": CERT, "allowedCidrs": CIDRS},
        set(),
        LB_PARTS,
        set(),
        id="public-dashboard",
    ),
    pytest.param(
        {"sshEnabled": "true", "allowedCidrs": CIDRS},
        {"sshEnabled": "true", "allowedCidrs": '["203.0.113.7/32", "198.51.100.0/24"]'},
        set(),
        {f"{RULE_IN}/orderflow-ssh-2"},
        set(),
        id="allowed-cidr-added",
    ),
    pytest.param({}, {"natGateway": "false"}, set(), ENDPOINTS, NAT, id="nat-off"),
    pytest.param(
        {}, {"appCount": "2"}, set(), {"aws:ec2/instance:Instance/app-2"}, set(), id="app-count-up"
    ),
    pytest.param({}, {"kafkaInstanceType": "m7i.xlarge"}, set(), set(), set(), id="broker-type"),
    pytest.param({}, {"appInstanceType": "t3.large"}, set(), set(), set(), id="app-type"),
    pytest.param({}, {"dataVolumeGb": "200"}, set(), set(), set(), id="data-volume-grows"),
    pytest.param({}, {"tags": '{"team": "payments"}'}, set(), set(), set(), id="tags"),
    pytest.param(
        {"brokerCount": "1"},
        {"brokerCount": "3"},
        set(),
        {
            *brokers_and_interfaces(2, 3),
            *(
                f"aws:ec2/{kind}/orderflow-{tier}-3"
                for kind in ("subnet:Subnet", "routeTableAssociation:RouteTableAssociation")
                for tier in ("public", "private")
            ),
        },
        set(),
        id="brokers-1-to-3",
    ),
    pytest.param(
        {},
        {"kafkaClusterId": "AAAAAAAAAAAAAAAAAAAAAA"},
        set(),
        set(),
        set(),
        id="cluster-id-is-deploy-only",
    ),
]


def keyed(d: Deployment) -> dict[str, Any]:
    """Each resource's inputs by "type/name", with ids of other resources replaced by their
    "type/name" (mock ids depend on creation order, not on the program)."""
    names = {r.id: f"{r.typ}/{r.name}" for r in d.resources}

    def normal(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: normal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [normal(v) for v in value]
        if isinstance(value, str):
            for rid, name in names.items():
                value = value.replace(rid, name) if rid in value else value
        return value

    return {f"{r.typ}/{r.name}": normal(r.inputs) for r in d.resources}


def replaced(before: Deployment, after: Deployment) -> set[str]:
    old, new = keyed(before), keyed(after)
    found = set()
    for key in old.keys() & new.keys():
        typ, name = key.rsplit("/", 1)
        if typ.startswith("orderflow:"):
            continue  # components: replaced only with a new name or parent
        fields = FORCE_NEW[typ] - set(after.ignore_changes.get((typ, name), []))
        if any(old[key].get(f) != new[key].get(f) for f in fields):
            found.add(key)
    return found


@pytest.mark.parametrize(("before", "after", "replaces", "creates", "deletes"), TOGGLES)
def test_toggle_replaces_creates_and_deletes_exactly_what_is_listed(
    deploy, before, after, replaces, creates, deletes
) -> None:
    old, new = deploy(**before), deploy(**after)
    assert replaced(old, new) == replaces
    assert set(keyed(new)) - set(keyed(old)) == creates
    assert set(keyed(old)) - set(keyed(new)) == deletes


def test_every_resource_type_has_its_force_new_fields_listed(deploy) -> None:
    # A new resource type must be classified before a toggle can be trusted not to replace it.
    types = {
        r.typ
        for raw in (
            {},
            {"natGateway": "false"},
            {
                "publicDashboard": "true",
                "dashboardCertificateArn": CERT,
                "allowedCidrs": CIDRS,
                "sshEnabled": "true",
                "sshPublicKey": KEY,
            },
        )
        for r in deploy(**raw).resources
        if not r.typ.startswith("orderflow:")
    }
    assert types <= set(FORCE_NEW), sorted(types - set(FORCE_NEW))


def test_the_diff_sees_a_replacement_when_there_is_one(deploy) -> None:
    # Guards the test above against a diff that never finds anything: moving the VPC replaces
    # the VPC, every subnet, security group and route table, and so everything in them.
    old = deploy()
    new = deploy(region="eu-west-1")
    found = replaced(old, new)
    assert "pulumi:providers:aws/aws" in found
    assert "aws:ec2/vpcEndpoint:VpcEndpoint/orderflow-s3" in found  # service name has the region
    assert "aws:ec2/subnet:Subnet/orderflow-private-1" in found  # AZ names have the region
