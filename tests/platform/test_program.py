"""The whole program: components, provider, and the exported output contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from orderflow_infra.outputs import CONTRACT_KEYS

SAMPLE_PATH = Path(__file__).resolve().parents[2] / "deploy" / "stack-outputs.sample.json"
COMPONENTS = {
    "orderflow:network:Network",
    "orderflow:security:SecurityGroups",
    "orderflow:identity:InstanceIdentity",
    "orderflow:kafka:KafkaCluster",
    "orderflow:apps:AppHosts",
    "orderflow:credentials:KafkaSecrets",
}


def shape(value: Any) -> Any:
    """Keys and value types, recursively: what deploy/inventory.py relies on."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


@pytest.fixture(scope="module")
def sample() -> dict[str, Any]:
    return json.loads(SAMPLE_PATH.read_text())


def test_exported_outputs_have_exactly_the_sample_shape(deploy, sample) -> None:
    # The sample's stack: brokerCount 3, appCount 1, private access (the defaults).
    outputs = deploy(brokerCount="3", appCount="1")
    assert tuple(outputs.outputs) == CONTRACT_KEYS
    assert set(sample) == set(CONTRACT_KEYS)
    assert shape(outputs.outputs) == shape(sample)
    for exported, expected in zip(outputs.outputs["hosts"], sample["hosts"], strict=True):
        assert list(exported) == list(expected)
    assert json.loads(json.dumps(outputs.outputs)) == outputs.outputs  # plain JSON values


@pytest.mark.parametrize("count", [1, 3])
def test_host_list_and_bootstrap_servers_follow_the_instances(deploy, count: int) -> None:
    d = deploy(brokerCount=str(count), appCount="2")
    hosts = d.outputs["hosts"]
    assert [h["role"] for h in hosts] == ["kafka"] * count + ["app"] * 2
    instances = {i.id: i for i in d.of_type("aws:ec2/instance:Instance")}
    for host in hosts:
        instance = instances[host["instance_id"]]
        assert host["private_ip"] == instance.state["privateIp"]
        assert host["az"] == instance.state["availabilityZone"]
        assert instance.inputs["tags"]["orderflow:host"] == host["name"]
    expected = ",".join(f"{h['private_ip']}:9092" for h in hosts if h["role"] == "kafka")
    assert d.outputs["bootstrap_servers"] == expected
    assert set(d.outputs["ssh_commands"]) == {h["name"] for h in hosts}
    assert set(d.outputs["ssm_commands"]["sessions"]) == {h["name"] for h in hosts}
    app1 = next(h for h in hosts if h["name"] == "app-1")
    forwards = d.outputs["ssm_commands"]["port_forwarding"]
    assert forwards["dashboard"] == (
        f"aws ssm start-session --target {app1['instance_id']} --region eu-central-1 "
        "--document-name AWS-StartPortForwardingSession "
        "--parameters portNumber=8501,localPortNumber=8501"
    )
    assert "portNumber=8080,localPortNumber=8080" in forwards["console"]


def test_one_component_per_concern_and_every_resource_has_a_component_parent(deploy) -> None:
    d = deploy()
    assert {r.typ for r in d.resources if r.typ.startswith("orderflow:")} == COMPONENTS
    for resource in d.resources:
        parent = d.parents[(resource.typ, resource.name)]
        if resource.typ in COMPONENTS or resource.typ.startswith("pulumi:providers:"):
            assert parent.endswith("::orderflow-test"), resource.name  # the stack
        else:
            assert parent.rsplit("::", 2)[-2].split("$")[-1] in COMPONENTS, resource.name


def test_region_and_tags_come_from_the_stack_config(deploy) -> None:
    d = deploy(region="us-west-2", tags='{"team": "payments"}')
    (provider,) = d.of_type("pulumi:providers:aws")
    assert provider.inputs["region"] == "us-west-2"
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert tags == {"Project": "orderflow", "Stack": "test", "team": "payments"}
    assert d.outputs["region"] == "us-west-2"
    assert {h["az"][:-1] for h in d.outputs["hosts"]} == {"us-west-2"}
    assert all(c.provider and "pulumi:providers:aws" in c.provider for c in d.calls)
