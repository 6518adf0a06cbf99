"""Network component: subnets across usable AZs, NAT or SSM endpoints, nothing public by
accident, flow logs, a limited S3 endpoint."""

from __future__ import annotations

import json

import pulumi
import pytest
from orderflow_infra.config import parse_config
from orderflow_infra.network import choose_zones

from tests.platform.conftest import BASE_CONFIG, MOCKS, run_program

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
    (ui,) = [s for s in subnets if s.inputs["tags"]["Tier"] == "ui"]
    assert ui.inputs["availabilityZone"] == sorted(s.inputs["availabilityZone"] for s in public)[0]
    assert len({s.inputs["cidrBlock"] for s in subnets}) == 2 * azs + 1
    assert d.count("aws:ec2/vpc:Vpc") == 1
    assert d.count("aws:ec2/internetGateway:InternetGateway") == 1
    assert d.count("aws:ec2/routeTableAssociation:RouteTableAssociation") == 2 * azs + 1


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
    by_name = {r.name: r.inputs for r in d.of_type("aws:ec2/route:Route")}
    assert by_name["orderflow-private-default"]["natGatewayId"] == nat.id
    assert by_name["orderflow-public-default"]["gatewayId"] == igw.id


def test_without_nat_ssm_endpoints_serve_the_private_subnets(deploy) -> None:
    d = deploy(natGateway="false")
    assert d.count("aws:ec2/natGateway:NatGateway") == 0
    assert d.count("aws:ec2/eip:Eip") == 0
    assert [r.name for r in d.of_type("aws:ec2/route:Route")] == ["orderflow-public-default"]
    interface = [e for e in d.of_type(ENDPOINT) if e.inputs["vpcEndpointType"] == "Interface"]
    assert sorted(e.inputs["serviceName"] for e in interface) == [
        "com.amazonaws.eu-central-1.ec2messages",
        "com.amazonaws.eu-central-1.secretsmanager",
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


def test_vpc_flow_logs_go_to_cloudwatch_with_a_retention(deploy) -> None:
    d = deploy()
    (flow_log,) = d.of_type("aws:ec2/flowLog:FlowLog")
    vpc = d.of_type("aws:ec2/vpc:Vpc")[0]
    group = d.named("aws:cloudwatch/logGroup:LogGroup", "orderflow-flow-logs")
    assert flow_log.inputs["vpcId"] == vpc.id
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    assert flow_log.inputs["logDestination"] == group.state["arn"]
    assert group.inputs["retentionInDays"] == 365
    role = d.named("aws:iam/role:Role", "orderflow-flow-logs")
    assert flow_log.inputs["iamRoleArn"] == role.state["arn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [
        {"Service": "vpc-flow-logs.amazonaws.com"}
    ]
    policy = json.loads(
        d.named("aws:iam/rolePolicy:RolePolicy", "orderflow-flow-logs").inputs["policy"]
    )
    (statement,) = policy["Statement"]
    assert statement["Resource"] == [group.state["arn"], group.state["arn"] + ":*"]
    assert "logs:PutLogEvents" in statement["Action"]
    # The flow log is created once its role may write (else AWS marks it failed).
    assert ("aws:iam/rolePolicy:RolePolicy", "orderflow-flow-logs") in d.options_of(
        flow_log
    ).depends_on


def test_s3_endpoint_allows_only_reading_the_ssm_agents_buckets(deploy) -> None:
    d = deploy()
    (s3,) = [e for e in d.of_type(ENDPOINT) if e.inputs["vpcEndpointType"] == "Gateway"]
    (statement,) = json.loads(s3.inputs["policy"])["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == ["s3:GetObject"]
    assert "arn:aws:s3:::amazon-ssm-eu-central-1/*" in statement["Resource"]
    assert all(
        r.startswith("arn:aws:s3:::") and r.endswith("/*") and "eu-central-1" in r
        for r in statement["Resource"]
    )
    assert "*" not in statement["Resource"] and "arn:aws:s3:::*" not in statement["Resource"]


def test_zones_are_opt_in_free_and_offer_every_instance_type(deploy) -> None:
    d = deploy(kafkaInstanceType="r7i.xlarge", appInstanceType="t3.small")
    (zones,) = [c for c in d.calls if c.token.endswith("getAvailabilityZones")]
    assert zones.args["state"] == "available"
    assert zones.args["filters"] == [{"name": "opt-in-status", "values": ["opt-in-not-required"]}]
    (offerings,) = [c for c in d.calls if c.token.endswith("getInstanceTypeOfferings")]
    assert offerings.args["locationType"] == "availability-zone"
    assert offerings.args["filters"] == [
        {"name": "instance-type", "values": ["r7i.xlarge", "t3.small"]}
    ]


def test_a_zone_without_the_instance_type_is_skipped() -> None:
    offerings = [("m7i.large", z) for z in ("x-1a", "x-1c", "x-1d")] + [
        ("t3.medium", z) for z in ("x-1a", "x-1b", "x-1c", "x-1d")
    ]
    names = ["x-1d", "x-1b", "x-1c", "x-1a"]
    assert choose_zones(names, offerings, ("m7i.large", "t3.medium"), 3) == ["x-1a", "x-1c", "x-1d"]
    assert choose_zones(names, offerings, ("t3.medium",), 2) == ["x-1a", "x-1b"]


def test_too_few_usable_zones_fail_with_one_line() -> None:
    offerings = [("m7i.large", "x-1a"), ("t3.medium", "x-1a"), ("t3.medium", "x-1b")]
    with pytest.raises(pulumi.RunError) as info:
        choose_zones(["x-1a", "x-1b", "x-1c"], offerings, ("m7i.large", "t3.medium"), 2)
    message = str(info.value)
    assert message == (
        "only 1 availability zone(s) of the region offer m7i.large and t3.medium without "
        "opt-in (x-1a); orderflow needs 2: choose other instance types or another region"
    )


def test_the_program_places_subnets_only_in_zones_offering_the_types() -> None:
    # eu-central-1b lacks m7i.large: the three brokers go to a, c and d.
    offerings = [
        *(("m7i.large", f"eu-central-1{z}") for z in "acd"),
        *(("t3.medium", f"eu-central-1{z}") for z in "abcd"),
    ]
    try:
        d = run_program(parse_config(BASE_CONFIG), zones="abcd", offerings=offerings)
    finally:
        MOCKS.reset()
    azs = {s.inputs["availabilityZone"] for s in d.of_type(SUBNET)}
    assert azs == {"eu-central-1a", "eu-central-1c", "eu-central-1d"}


def test_the_program_stops_with_one_line_when_too_few_zones_offer_the_types() -> None:
    offerings = [("m7i.large", "eu-central-1a"), ("t3.medium", "eu-central-1a")]
    try:
        with pytest.raises(pulumi.RunError) as info:
            run_program(parse_config(BASE_CONFIG), zones="abc", offerings=offerings)
    finally:
        MOCKS.reset()
    assert str(info.value).startswith("only 1 availability zone(s) of the region offer")
    assert "orderflow needs 3" in str(info.value) and "\n" not in str(info.value)
