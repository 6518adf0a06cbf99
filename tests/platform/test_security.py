"""Security groups: no world-open ingress, Kafka ports only from the intended groups, public
entries only when switched on, only from allowedCidrs and only to the UI host or its load
balancer; egress only on the ports the hosts use."""

from __future__ import annotations

import pytest

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
GROUP = "aws:ec2/securityGroup:SecurityGroup"
WORLD = {"0.0.0.0/0", "::/0"}
CERT = "arn:aws:acm:eu-central-1:123456789012:certificate/0b1c2d3e-aaaa-bbbb-cccc-0123456789ab"
PUBLIC = {
    "publicDashboard": "true",
    "dashboardCertificateArn": CERT,
    "sshEnabled": "true",
    "allowedCidrs": '["203.0.113.0/24", "198.51.100.7/32"]',
}
CONFIGS = [
    pytest.param({"brokerCount": "1"}, id="1-broker-private"),
    pytest.param({"brokerCount": "3"}, id="3-brokers-private"),
    pytest.param({"brokerCount": "3", "natGateway": "false"}, id="3-brokers-no-nat"),
    pytest.param({"brokerCount": "1", **PUBLIC}, id="1-broker-public"),
    pytest.param({"brokerCount": "3", **PUBLIC}, id="3-brokers-public"),
]


def groups(d) -> dict[str, str]:
    """Role ("broker", "app", "ui", "lb", "endpoints") → security group id."""
    return {g.name.rsplit("-", 1)[-1]: g.id for g in d.of_type(GROUP)}


def sources(d, group_id: str, port: int, kind: str = INGRESS) -> set[str]:
    """Everything allowed to reach ``port`` on ``group_id`` (or, for egress rules, everything
    ``group_id`` may reach on ``port``): group ids and CIDRs."""
    found = set()
    for rule in d.of_type(kind):
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
        assert not group.inputs.get("egress"), f"inline egress on {group.name}"


@pytest.mark.parametrize("raw", CONFIGS)
def test_kafka_ports_reachable_only_from_intended_groups(deploy, raw: dict[str, str]) -> None:
    d = deploy(**raw)
    sg = groups(d)
    assert sources(d, sg["broker"], 9092) == {sg["app"], sg["broker"]}
    assert sources(d, sg["broker"], 9093) == {sg["broker"]}
    for other in ("app", "ui"):
        assert sources(d, sg[other], 9092) == set()
        assert sources(d, sg[other], 9093) == set()
    broker_rules = [r for r in d.of_type(INGRESS) if r.inputs["securityGroupId"] == sg["broker"]]
    assert sorted(r.inputs["fromPort"] for r in broker_rules) == [9092, 9092, 9093]


@pytest.mark.parametrize("raw", CONFIGS[:3])
def test_private_stacks_open_no_port_to_any_cidr(deploy, raw: dict[str, str]) -> None:
    d = deploy(**raw)
    sg = groups(d)
    cidr_rules = [
        r
        for r in d.of_type(INGRESS)
        if r.inputs["securityGroupId"] in {sg["broker"], sg["app"], sg["ui"]}
        and "referencedSecurityGroupId" not in r.inputs
    ]
    assert cidr_rules == []


def test_public_entries_open_only_to_allowed_cidrs_and_only_where_they_belong(deploy) -> None:
    d = deploy(**PUBLIC)
    sg = groups(d)
    allowed = {"203.0.113.0/24", "198.51.100.7/32"}
    assert sources(d, sg["ui"], 22) == allowed
    assert sources(d, sg["lb"], 443) == allowed
    # The dashboard port only from its load balancer; nothing public on app hosts or brokers.
    assert sources(d, sg["ui"], 8501) == {sg["lb"]}
    for port in (22, 443, 8501, 8080):
        assert sources(d, sg["app"], port) == set()
        assert sources(d, sg["broker"], port) == set()
    assert sources(d, sg["ui"], 8080) == set()
    assert sources(d, sg["lb"], 8501, EGRESS) == {sg["ui"]}


def test_each_public_entry_follows_its_own_flag(deploy) -> None:
    d = deploy(sshEnabled="true", allowedCidrs='["203.0.113.7/32"]')
    sg = groups(d)
    assert sources(d, sg["ui"], 22) == {"203.0.113.7/32"}
    assert sources(d, sg["ui"], 8501) == set()
    assert "lb" not in sg
    assert d.count("aws:lb/loadBalancer:LoadBalancer") == 0


def test_only_the_ui_host_carries_the_ui_group(deploy) -> None:
    d = deploy(appCount="3", **PUBLIC)
    sg = groups(d)
    for instance in d.of_type("aws:ec2/instance:Instance"):
        host = instance.inputs["tags"]["orderflow:host"]
        attached = set(instance.inputs.get("vpcSecurityGroupIds") or [])
        if host == "app-1":
            assert attached == {sg["app"], sg["ui"]}
        elif host.startswith("app"):
            assert attached == {sg["app"]}
        else:  # brokers: their group sits on their network interface
            assert not attached


@pytest.mark.parametrize("raw", CONFIGS)
def test_egress_is_limited_to_what_the_hosts_use(deploy, raw: dict[str, str]) -> None:
    d = deploy(**raw)
    sg = groups(d)
    egress = d.of_type(EGRESS)
    assert all(r.inputs["ipProtocol"] == "tcp" for r in egress), "no all-protocol egress"
    assert not [r for r in egress if r.inputs["securityGroupId"] == sg["ui"]]  # app's applies
    for role in ("broker", "app"):
        world = [
            r
            for r in egress
            if r.inputs["securityGroupId"] == sg[role] and r.inputs.get("cidrIpv4")
        ]
        # HTTP for Ubuntu's apt mirrors, HTTPS for SSM, images and PyPI; nothing else leaves.
        assert sorted(
            (r.inputs["fromPort"], r.inputs["toPort"], r.inputs["cidrIpv4"]) for r in world
        ) == [
            (80, 80, "0.0.0.0/0"),
            (443, 443, "0.0.0.0/0"),
        ], role
    assert sources(d, sg["broker"], 9092, EGRESS) == {sg["broker"]}
    assert sources(d, sg["broker"], 9093, EGRESS) == {sg["broker"]}
    assert sources(d, sg["app"], 9092, EGRESS) == {sg["broker"]}
    assert sources(d, sg["app"], 9093, EGRESS) == set()
    assert sources(d, sg["ui"], 22, EGRESS) == set()


def test_default_security_group_is_emptied(deploy) -> None:
    d = deploy()
    (default,) = d.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default.inputs["vpcId"] == d.of_type("aws:ec2/vpc:Vpc")[0].id
    # No ingress or egress argument: the provider removes every rule AWS put there.
    assert "ingress" not in default.inputs and "egress" not in default.inputs


#: Every rule of the default stack before Kafka had secrets (checked once against that commit's
#: program, 0773c8e): SASL_SSL/SCRAM and controller TLS use the same two ports, so securing
#: Kafka opens nothing new. (direction, rule, group, port, peer group or CIDR)
PLAINTEXT_STACK_RULES = [
    ("in", "orderflow-controller", "orderflow-broker", 9093, "orderflow-broker"),
    ("in", "orderflow-kafka-from-app", "orderflow-broker", 9092, "orderflow-app"),
    ("in", "orderflow-kafka-from-broker", "orderflow-broker", 9092, "orderflow-broker"),
    ("out", "orderflow-app-out-443", "orderflow-app", 443, "0.0.0.0/0"),
    ("out", "orderflow-app-out-80", "orderflow-app", 80, "0.0.0.0/0"),
    ("out", "orderflow-app-to-kafka", "orderflow-app", 9092, "orderflow-broker"),
    ("out", "orderflow-broker-out-443", "orderflow-broker", 443, "0.0.0.0/0"),
    ("out", "orderflow-broker-out-80", "orderflow-broker", 80, "0.0.0.0/0"),
    ("out", "orderflow-broker-to-controller", "orderflow-broker", 9093, "orderflow-broker"),
    ("out", "orderflow-broker-to-kafka", "orderflow-broker", 9092, "orderflow-broker"),
]


def test_secured_kafka_keeps_the_plaintext_stacks_security_group_rules(deploy) -> None:
    d = deploy()
    assert d.count("aws:secretsmanager/secret:Secret") > 0  # the secured stack
    names = {r.id: r.name for r in d.resources}
    rules = sorted(
        (
            "in" if r.typ == INGRESS else "out",
            r.name,
            names[r.inputs["securityGroupId"]],
            r.inputs["fromPort"],
            names.get(r.inputs.get("referencedSecurityGroupId")) or r.inputs["cidrIpv4"],
        )
        for r in d.of_type(INGRESS) + d.of_type(EGRESS)
    )
    assert all(r.inputs["fromPort"] == r.inputs["toPort"] for r in d.of_type(INGRESS))
    assert rules == PLAINTEXT_STACK_RULES
