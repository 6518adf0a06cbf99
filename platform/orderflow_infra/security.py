"""Security groups: brokers and app hosts reference each other; people come in only from
``allowed_cidrs``, only on what they switched on, and only to the UI host or its load balancer.
Egress is limited to what the hosts use."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

KAFKA_CLIENT_PORT = 9092
KAFKA_CONTROLLER_PORT = 9093
DASHBOARD_PORT = 8501
CONSOLE_PORT = 8080
SSH_PORT = 22
HTTPS_PORT = 443
#: Out to the internet (via the NAT, or the UI host's Elastic IP): HTTPS for SSM, container
#: images and PyPI; HTTP for Ubuntu's apt mirrors. DNS, NTP and instance metadata go to
#: link-local AWS services that security groups do not filter.
INTERNET_EGRESS_PORTS = (80, 443)
WORLD = "0.0.0.0/0"


@dataclass(frozen=True)
class SecurityGroupsArgs:
    """Public entry (SSH to the UI host, HTTPS to the dashboard's load balancer) from
    ``allowed_cidrs`` only when its flag is on; ``allowed_cidrs`` is already validated (IPv4,
    /16 or narrower) by the config."""

    vpc_id: pulumi.Input[str]
    allowed_cidrs: tuple[str, ...] = ()
    public_dashboard: bool = False
    ssh_enabled: bool = False


class SecurityGroups(pulumi.ComponentResource):
    """``broker``, ``app`` (every app host), ``ui`` (the UI host only: its public entries) and,
    with a public dashboard, ``lb`` (its load balancer). Kafka clients (9092) only from app and
    broker groups, KRaft controllers (9093) only broker↔broker."""

    def __init__(
        self, name: str, args: SecurityGroupsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orderflow:security:SecurityGroups", name, None, opts)
        self._child = pulumi.ResourceOptions(parent=self)
        self.broker = self._group(
            f"{name}-broker", args, "orderflow Kafka brokers (KRaft combined broker+controller)"
        )
        self.app = self._group(
            f"{name}-app", args, "orderflow processors, dashboard and Redpanda Console"
        )
        self.ui = self._group(f"{name}-ui", args, "orderflow UI host: entries from allowedCidrs")
        self.lb: aws.ec2.SecurityGroup | None = None

        self._ingress(f"{name}-kafka-from-app", self.broker, KAFKA_CLIENT_PORT, self.app)
        self._ingress(f"{name}-kafka-from-broker", self.broker, KAFKA_CLIENT_PORT, self.broker)
        self._ingress(f"{name}-controller", self.broker, KAFKA_CONTROLLER_PORT, self.broker)

        if args.ssh_enabled:
            for j, cidr in enumerate(args.allowed_cidrs):
                self._ingress(f"{name}-ssh-{j + 1}", self.ui, SSH_PORT, cidr=cidr)
        if args.public_dashboard:
            self.lb = self._group(f"{name}-lb", args, "orderflow dashboard load balancer")
            for j, cidr in enumerate(args.allowed_cidrs):
                self._ingress(f"{name}-dashboard-{j + 1}", self.lb, HTTPS_PORT, cidr=cidr)
            self._ingress(f"{name}-dashboard-from-lb", self.ui, DASHBOARD_PORT, self.lb)
            self._egress(f"{name}-lb-to-dashboard", self.lb, DASHBOARD_PORT, self.ui)

        # The UI host carries the app group too, so its egress is the app group's.
        for group_name, group in (("broker", self.broker), ("app", self.app)):
            for port in INTERNET_EGRESS_PORTS:
                self._egress(f"{name}-{group_name}-out-{port}", group, port, cidr=WORLD)
        self._egress(f"{name}-broker-to-kafka", self.broker, KAFKA_CLIENT_PORT, self.broker)
        self._egress(
            f"{name}-broker-to-controller", self.broker, KAFKA_CONTROLLER_PORT, self.broker
        )
        self._egress(f"{name}-app-to-kafka", self.app, KAFKA_CLIENT_PORT, self.broker)

        self.register_outputs(
            {"broker_sg_id": self.broker.id, "app_sg_id": self.app.id, "ui_sg_id": self.ui.id}
        )

    def _group(
        self, name: str, args: SecurityGroupsArgs, description: str
    ) -> aws.ec2.SecurityGroup:
        # revoke_rules_on_delete: no dependency loop between groups blocks `pulumi destroy`.
        return aws.ec2.SecurityGroup(
            name,
            vpc_id=args.vpc_id,
            description=description,
            revoke_rules_on_delete=True,
            tags={"Name": name},
            opts=self._child,
        )

    def _ingress(
        self,
        rule_name: str,
        target: aws.ec2.SecurityGroup,
        port: int,
        source: aws.ec2.SecurityGroup | None = None,
        cidr: str | None = None,
    ) -> None:
        aws.vpc.SecurityGroupIngressRule(
            rule_name,
            security_group_id=target.id,
            referenced_security_group_id=source.id if source else None,
            cidr_ipv4=cidr,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=rule_name.split("-", 1)[-1],
            opts=self._child,
        )

    def _egress(
        self,
        rule_name: str,
        target: aws.ec2.SecurityGroup,
        port: int,
        destination: aws.ec2.SecurityGroup | None = None,
        cidr: str | None = None,
    ) -> None:
        aws.vpc.SecurityGroupEgressRule(
            rule_name,
            security_group_id=target.id,
            referenced_security_group_id=destination.id if destination else None,
            cidr_ipv4=cidr,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=rule_name.split("-", 1)[-1],
            opts=self._child,
        )
