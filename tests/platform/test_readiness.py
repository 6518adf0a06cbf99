"""Readiness in order: an instance is created only once its SSM agent can register at first
boot, i.e. after its role's policies are attached and its way out (route or SSM endpoints)
exists. The options come from a stack transformation (mocks never see them)."""

from __future__ import annotations

import pytest

from tests.platform.conftest import Deployment, Recorded

INSTANCE = "aws:ec2/instance:Instance"
POLICY = "aws:iam/rolePolicy:RolePolicy"


def role_policies(host: str) -> set[tuple[str, str]]:
    """The SSM attachment, session policy and Kafka secrets policy of the host's own role."""
    role = "orderflow-" + ("ui" if host == "app-1" else host.split("-")[0])
    return {
        ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", f"{role}-ssm"),
        (POLICY, f"{role}-sessions"),
        (POLICY, f"{role}-kafka-secrets"),
    }


ROUTE = "aws:ec2/route:Route"
ENDPOINTS = {
    ("aws:ec2/vpcEndpoint:VpcEndpoint", f"orderflow-{s}")
    for s in ("ssm", "ssmmessages", "ec2messages", "secretsmanager")
}


def by_host(d: Deployment) -> dict[str, Recorded]:
    return {i.inputs["tags"]["orderflow:host"]: i for i in d.of_type(INSTANCE)}


@pytest.mark.parametrize("ssh", [False, True])
def test_with_nat_every_host_waits_for_its_policies_and_its_default_route(deploy, ssh) -> None:
    raw = {"sshEnabled": "true", "allowedCidrs": '["203.0.113.7/32"]'} if ssh else {}
    d = deploy(appCount="2", **raw)
    hosts = by_host(d)
    assert sorted(hosts) == ["app-1", "app-2", "kafka-1", "kafka-2", "kafka-3"]
    for name, instance in hosts.items():
        route = "orderflow-ui-default" if name == "app-1" else "orderflow-private-default"
        assert d.options_of(instance).depends_on == {*role_policies(name), (ROUTE, route)}, name
    ui_route = d.named(ROUTE, "orderflow-ui-default").inputs
    assert ("gatewayId" in ui_route) is ssh  # public UI host: out through the IGW and its EIP


def test_without_nat_every_host_waits_for_the_ssm_endpoints(deploy) -> None:
    d = deploy(natGateway="false")
    for name, instance in by_host(d).items():
        assert d.options_of(instance).depends_on == {*role_policies(name), *ENDPOINTS}, name


def test_the_instance_profile_is_an_input_so_it_is_a_dependency_too(deploy) -> None:
    d = deploy()
    profiles = {p.state["name"] for p in d.of_type("aws:iam/instanceProfile:InstanceProfile")}
    assert profiles == {"orderflow-kafka", "orderflow-app", "orderflow-ui"}
    assert all(i.inputs["iamInstanceProfile"] in profiles for i in d.of_type(INSTANCE))
