"""App hosts: private by default; only the UI host (app-1) can get a public address, an Elastic
IP, and only with sshEnabled. The public dashboard sits behind an HTTPS load balancer."""

from __future__ import annotations

from tests.platform.conftest import Deployment, Recorded

INSTANCE = "aws:ec2/instance:Instance"
EIP = "aws:ec2/eip:Eip"
CERT = "arn:aws:acm:eu-central-1:123456789012:certificate/0b1c2d3e-aaaa-bbbb-cccc-0123456789ab"
SSH = {"sshEnabled": "true", "allowedCidrs": '["203.0.113.7/32"]'}
DASHBOARD = {
    "publicDashboard": "true",
    "dashboardCertificateArn": CERT,
    "allowedCidrs": '["203.0.113.7/32"]',
}


def apps(d: Deployment) -> list[Recorded]:
    """App instances in host-name order (registration order is not guaranteed)."""
    found = [i for i in d.of_type(INSTANCE) if i.inputs["tags"]["orderflow:host"].startswith("app")]
    return sorted(found, key=lambda i: int(i.inputs["tags"]["orderflow:host"].split("-")[1]))


def tier(d: Deployment, instance: Recorded) -> str:
    return d.by_id(instance.inputs["subnetId"]).inputs["tags"]["Tier"]


def test_app_hosts_are_private_by_default(deploy) -> None:
    d = deploy(appCount="3", brokerCount="1")
    hosts = apps(d)
    assert len(hosts) == 3
    assert [tier(d, h) for h in hosts] == ["ui", "private", "private"]
    assert len({h.state["availabilityZone"] for h in hosts[1:]}) == 2
    for host in hosts:
        assert host.inputs["associatePublicIpAddress"] is False
    assert d.count(EIP) == 1  # the NAT gateway's
    assert [h["public_ip"] for h in d.outputs["hosts"] if h["role"] == "app"] == [None] * 3
    assert d.outputs["dashboard_url"] == "http://localhost:8501"
    assert d.outputs["console_url"] == "http://localhost:8080"


def test_ssh_enabled_gives_only_the_ui_host_an_elastic_ip(deploy) -> None:
    d = deploy(appCount="2", **SSH)
    ui, other = apps(d)
    (eip,) = [e for e in d.of_type(EIP) if e.inputs.get("instance")]
    assert eip.inputs["instance"] == ui.id
    records = {h["name"]: h for h in d.outputs["hosts"]}
    assert records["app-1"]["public_ip"] == eip.state["publicIp"]
    assert [n for n, h in records.items() if h["public_ip"]] == ["app-1"]
    assert d.outputs["ssh_commands"]["app-1"] == f"ssh ubuntu@{eip.state['publicIp']}"
    assert d.outputs["ssh_commands"]["app-2"].startswith("ssh -o ProxyCommand=")
    assert d.outputs["ssh_commands"]["kafka-1"].startswith("ssh -o ProxyCommand=")
    assert tier(d, other) == "private"
    assert d.outputs["dashboard_url"] == "http://localhost:8501"


def test_ui_subnet_routes_to_the_internet_only_while_the_ui_host_is_public(deploy) -> None:
    def ui_route(d: Deployment) -> dict:
        (route,) = [r for r in d.of_type("aws:ec2/route:Route") if r.name == "orderflow-ui-default"]
        return route.inputs

    private, public = deploy(), deploy(**SSH)
    nat = private.of_type("aws:ec2/natGateway:NatGateway")[0]
    assert ui_route(private).get("natGatewayId") == nat.id and "gatewayId" not in ui_route(private)
    igw = public.of_type("aws:ec2/internetGateway:InternetGateway")[0]
    assert ui_route(public).get("gatewayId") == igw.id and "natGatewayId" not in ui_route(public)
    # Without a NAT the private UI host has no route out at all; with sshEnabled, the IGW.
    assert not [
        r for r in deploy(natGateway="false").of_type("aws:ec2/route:Route") if "ui" in r.name
    ]


def test_public_dashboard_is_an_https_load_balancer_in_front_of_the_ui_host(deploy) -> None:
    d = deploy(appCount="2", **DASHBOARD)
    (lb,) = d.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert lb.inputs["internal"] is False and lb.inputs["dropInvalidHeaderFields"] is True
    public_subnets = {
        s.id for s in d.of_type("aws:ec2/subnet:Subnet") if s.inputs["tags"]["Tier"] == "public"
    }
    assert set(lb.inputs["subnets"]) == public_subnets
    (listener,) = d.of_type("aws:lb/listener:Listener")
    assert (listener.inputs["port"], listener.inputs["protocol"]) == (443, "HTTPS")
    assert listener.inputs["certificateArn"] == CERT
    assert listener.inputs["sslPolicy"].startswith("ELBSecurityPolicy-TLS13-1-2")
    (target,) = d.of_type("aws:lb/targetGroupAttachment:TargetGroupAttachment")
    assert target.inputs["targetId"] == apps(d)[0].id and target.inputs["port"] == 8501
    assert d.outputs["dashboard_url"] == f"https://{lb.state['dnsName']}"
    assert d.outputs["console_url"] == "http://localhost:8080"
    # No host gets a public address for it.
    assert all(h["public_ip"] is None for h in d.outputs["hosts"])
    assert len([e for e in d.of_type(EIP) if e.inputs.get("instance")]) == 0
