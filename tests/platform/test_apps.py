"""App hosts: private by default; public IP only when some port is opened to allowedCidrs."""

from __future__ import annotations

from tests.platform.conftest import Deployment, Recorded

INSTANCE = "aws:ec2/instance:Instance"


def apps(d: Deployment) -> list[Recorded]:
    return [i for i in d.of_type(INSTANCE) if i.inputs["tags"]["orderflow:host"].startswith("app")]


def test_app_hosts_are_private_by_default(deploy) -> None:
    d = deploy(appCount="2", brokerCount="1")
    hosts = apps(d)
    assert len(hosts) == 2
    assert len({h.state["availabilityZone"] for h in hosts}) == 2
    for host in hosts:
        assert host.inputs["associatePublicIpAddress"] is False
        assert d.by_id(host.inputs["subnetId"]).inputs["tags"]["Tier"] == "private"
    assert [h["public_ip"] for h in d.outputs["hosts"] if h["role"] == "app"] == [None, None]
    assert d.outputs["dashboard_url"] == "http://localhost:8501"
    assert d.outputs["console_url"] == "http://localhost:8080"


def test_public_access_gives_app_hosts_public_ips_and_urls(deploy) -> None:
    d = deploy(publicDashboard="true", publicConsole="true", allowedCidrs='["203.0.113.7/32"]')
    (host,) = apps(d)
    assert host.inputs["associatePublicIpAddress"] is True
    assert d.by_id(host.inputs["subnetId"]).inputs["tags"]["Tier"] == "public"
    (record,) = [h for h in d.outputs["hosts"] if h["role"] == "app"]
    assert record["public_ip"] == host.state["publicIp"] != ""
    assert d.outputs["dashboard_url"] == f"http://{record['public_ip']}:8501"
    assert d.outputs["console_url"] == f"http://{record['public_ip']}:8080"
    assert d.outputs["ssh_commands"]["app-1"].startswith("ssh -o ProxyCommand=")


def test_ssh_enabled_gives_direct_ssh_to_app_hosts_only(deploy) -> None:
    d = deploy(sshEnabled="true", allowedCidrs='["203.0.113.7/32"]')
    (record,) = [h for h in d.outputs["hosts"] if h["role"] == "app"]
    assert d.outputs["ssh_commands"]["app-1"] == f"ssh ubuntu@{record['public_ip']}"
    assert d.outputs["ssh_commands"]["kafka-1"].startswith("ssh -o ProxyCommand=")
    assert d.outputs["dashboard_url"] == "http://localhost:8501"
