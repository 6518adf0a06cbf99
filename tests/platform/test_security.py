"""Security groups: no world-open ingress, Kafka ports only from the intended groups, public
ports only when switched on and only from allowedCidrs."""

from __future__ import annotations

import pytest

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
GROUP = "aws:ec2/securityGroup:SecurityGroup"
WORLD = {"0.0.0.0/0", "::/0"}
PUBLIC = {
    "publicDashboard": "true",
    "publicConsole": "true",
    "sshEnabled": "true",
    "allowedCidrs": '["203.0.113.0/24", "2001:db8::/48"]',
}
CONFIGS = [
    pytest.param({"brokerCount": "1"}, id="1-broker-private"),
    pytest.param({"brokerCount": "3"}, id="3-brokers-private"),
    pytest.param({"brokerCount": "3", "natGateway": "false"}, id="3-brokers-no-nat"),
    pytest.param({"brokerCount": "1", **PUBLIC}, id="1-broker-public"),
    pytest.param({"brokerCount": "3", **PUBLIC}, id="3-brokers-public"),
]


def groups(d) -> dict[str, str]:
    """Role ("broker"/"app") → security group id."""
    return {g.name.rsplit("-", 1)[-1]: g.id for g in d.of_type(GROUP)}


def sources(d, group_id: str, port: int) -> set[str]:
    """Everything allowed to reach ``port`` on ``group_id``: group ids and CIDRs."""
    found = set()
    for rule in d.of_type(INGRESS):
        i = rule.inputs
        if i["securityGroupId"] == group_id and i["fromPort"] <= port <= i["toPort"]:
            found.add(i.get("referencedSecurityGroupId") or i.get("cidrIpv4") or i["cidrIpv6"])
    return found


@pytest.mark.parametrize("raw", CONFIGS)
def test_no_ingress_from_the_whole_internet(deploy, raw: dict[str, str]) -> None:
    d = deploy(**raw)
    rules = d.of_type(INGRESS)
    assert rules
    for rule in rules:
        assert rule.inputs.get("cidrIpv4") not in WORLD, rule.name
        assert rule.inputs.get("cidrIpv6") not in WORLD, rule.name
        assert rule.inputs["ipProtocol"] == "tcp", rule.name
    for group in d.of_type(GROUP):
        assert not group.inputs.get("ingress"), f"inline ingress on {group.name}"


@pytest.mark.parametrize("raw", CONFIGS)
def test_kafka_ports_reachable_only_from_intended_groups(deploy, raw: dict[str, str]) -> None:
    d = deploy(**raw)
    sg = groups(d)
    assert sources(d, sg["broker"], 9092) == {sg["app"], sg["broker"]}
    assert sources(d, sg["broker"], 9093) == {sg["broker"]}
    assert sources(d, sg["app"], 9092) == set()
    assert sources(d, sg["app"], 9093) == set()
    broker_rules = [r for r in d.of_type(INGRESS) if r.inputs["securityGroupId"] == sg["broker"]]
    assert sorted(r.inputs["fromPort"] for r in broker_rules) == [9092, 9092, 9093]


@pytest.mark.parametrize("raw", CONFIGS[:3])
def test_private_stacks_open_no_port_to_any_cidr(deploy, raw: dict[str, str]) -> None:
    d = deploy(**raw)
    sg = groups(d)
    cidr_rules = [
        r
        for r in d.of_type(INGRESS)
        if r.inputs["securityGroupId"] in {sg["broker"], sg["app"]}
        and "referencedSecurityGroupId" not in r.inputs
    ]
    assert cidr_rules == []


def test_public_ports_open_only_to_allowed_cidrs(deploy) -> None:
    d = deploy(**PUBLIC)
    sg = groups(d)
    for port in (8501, 8080, 22):
        assert sources(d, sg["app"], port) == {"203.0.113.0/24", "2001:db8::/48"}
        assert sources(d, sg["broker"], port) == set()
    v6 = [r for r in d.of_type(INGRESS) if r.inputs.get("cidrIpv6")]
    assert v6 and all("cidrIpv4" not in r.inputs for r in v6)


def test_each_public_port_follows_its_own_flag(deploy) -> None:
    d = deploy(publicDashboard="true", allowedCidrs='["203.0.113.7/32"]')
    sg = groups(d)
    assert sources(d, sg["app"], 8501) == {"203.0.113.7/32"}
    assert sources(d, sg["app"], 8080) == set()
    assert sources(d, sg["app"], 22) == set()


def test_egress_is_explicit_for_both_groups(deploy) -> None:
    d = deploy()
    egress = d.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    sg = groups(d)
    assert {r.inputs["securityGroupId"] for r in egress} == {sg["broker"], sg["app"]}
