"""Network component: subnets across AZs, NAT or SSM endpoints, nothing public by accident."""

from __future__ import annotations

import pytest

SUBNET = "aws:ec2/subnet:Subnet"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


@pytest.mark.parametrize(("brokers", "azs"), [("1", 2), ("3", 3)])
def test_one_public_and_one_private_subnet_per_az(deploy, brokers: str, azs: int) -> None:
    d = deploy(brokerCount=brokers)
    subnets = d.of_type(SUBNET)
    public = [s for s in subnets if s.inputs["tags"]["Tier"] == "public"]
    private = [s for s in subnets if s.inputs["tags"]["Tier"] == "private"]
    assert len(public) == len(private) == azs
    assert len({s.inputs["availabilityZone"] for s in public}) == azs
    assert {s.inputs["availabilityZone"] for s in public} == {
        s.inputs["availabilityZone"] for s in private
    }
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    assert len({s.inputs["cidrBlock"] for s in subnets}) == 2 * azs
    assert d.count("aws:ec2/vpc:Vpc") == 1
    assert d.count("aws:ec2/internetGateway:InternetGateway") == 1
    assert d.count("aws:ec2/routeTableAssociation:RouteTableAssociation") == 2 * azs


def test_private_subnets_route_to_the_nat_and_public_ones_to_the_igw(deploy) -> None:
    d = deploy()
    igw = d.of_type("aws:ec2/internetGateway:InternetGateway")[0]
    nat = d.of_type("aws:ec2/natGateway:NatGateway")[0]
    routes = {
        r.inputs.get("gatewayId") or r.inputs.get("natGatewayId")
        for r in d.of_type("aws:ec2/route:Route")
    }
    assert routes == {igw.id, nat.id}
    assert d.by_id(nat.inputs["subnetId"]).inputs["tags"]["Tier"] == "public"
    assert d.count("aws:ec2/eip:Eip") == 1
    assert [e.inputs["vpcEndpointType"] for e in d.of_type(ENDPOINT)] == ["Gateway"]


def test_without_nat_ssm_endpoints_serve_the_private_subnets(deploy) -> None:
    d = deploy(natGateway="false")
    assert d.count("aws:ec2/natGateway:NatGateway") == 0
    assert d.count("aws:ec2/eip:Eip") == 0
    assert [r.inputs.get("gatewayId") is not None for r in d.of_type("aws:ec2/route:Route")] == [
        True
    ]
    interface = [e for e in d.of_type(ENDPOINT) if e.inputs["vpcEndpointType"] == "Interface"]
    assert sorted(e.inputs["serviceName"] for e in interface) == [
        "com.amazonaws.eu-central-1.ec2messages",
        "com.amazonaws.eu-central-1.ssm",
        "com.amazonaws.eu-central-1.ssmmessages",
    ]
    private_ids = {s.id for s in d.of_type(SUBNET) if s.inputs["tags"]["Tier"] == "private"}
    for endpoint in interface:
        assert endpoint.inputs["privateDnsEnabled"] is True
        assert set(endpoint.inputs["subnetIds"]) == private_ids
    gateway = [e for e in d.of_type(ENDPOINT) if e.inputs["vpcEndpointType"] == "Gateway"]
    assert [e.inputs["serviceName"] for e in gateway] == ["com.amazonaws.eu-central-1.s3"]


def test_endpoint_group_admits_only_https_from_the_vpc(deploy) -> None:
    d = deploy(natGateway="false")
    vpc = d.of_type("aws:ec2/vpc:Vpc")[0]
    endpoint_sg = next(
        g for g in d.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("-endpoints")
    )
    rules = [r for r in d.of_type(INGRESS) if r.inputs["securityGroupId"] == endpoint_sg.id]
    assert [(r.inputs["fromPort"], r.inputs["toPort"], r.inputs["cidrIpv4"]) for r in rules] == [
        (443, 443, vpc.inputs["cidrBlock"])
    ]
