"""Security groups: brokers and app hosts reference each other; people come in only from
``allowed_cidrs``, and only on the ports they switched on."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

KAFKA_CLIENT_PORT = 9092
KAFKA_CONTROLLER_PORT = 9093
DASHBOARD_PORT = 8501
CONSOLE_PORT = 8080
SSH_PORT = 22


@dataclass(frozen=True)
class SecurityGroupsArgs:
    """Public ports (dashboard, console, SSH) open to ``allowed_cidrs`` only when their flag is
    on; ``allowed_cidrs`` is already validated (no /0) by the config."""

    vpc_id: pulumi.Input[str]
    allowed_cidrs: tuple[str, ...] = ()
    public_dashboard: bool = False
    public_console: bool = False
    ssh_enabled: bool = False


class SecurityGroups(pulumi.ComponentResource):
    """Two groups, ``broker`` and ``app``. Kafka clients (9092) only from app and broker groups,
    KRaft controllers (9093) only broker↔broker. Egress is open: hosts fetch packages and images.
    """

    def __init__(
        self, name: str, args: SecurityGroupsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orderflow:security:SecurityGroups", name, None, opts)
        self._child = pulumi.ResourceOptions(parent=self)
        self.broker = aws.ec2.SecurityGroup(
            f"{name}-broker",
            vpc_id=args.vpc_id,
            description="orderflow Kafka brokers (KRaft combined broker+controller)",
            tags={"Name": f"{name}-broker"},
            opts=self._child,
        )
        self.app = aws.ec2.SecurityGroup(
            f"{name}-app",
            vpc_id=args.vpc_id,
            description="orderflow processors, dashboard and Redpanda Console",
            tags={"Name": f"{name}-app"},
            opts=self._child,
        )

        self._from_group(
            f"{name}-kafka-from-app",
            self.broker,
            self.app,
            KAFKA_CLIENT_PORT,
            "Kafka clients on app hosts",
        )
        self._from_group(
            f"{name}-kafka-from-broker",
            self.broker,
            self.broker,
            KAFKA_CLIENT_PORT,
            "inter-broker replication",
        )
        self._from_group(
            f"{name}-controller",
            self.broker,
            self.broker,
            KAFKA_CONTROLLER_PORT,
            "KRaft controller quorum",
        )

        public_ports = [
            ("dashboard", DASHBOARD_PORT, args.public_dashboard),
            ("console", CONSOLE_PORT, args.public_console),
            ("ssh", SSH_PORT, args.ssh_enabled),
        ]
        for label, port, enabled in public_ports:
            if not enabled:
                continue
            for j, cidr in enumerate(args.allowed_cidrs):
                self._from_cidr(
                    f"{name}-{label}-{j + 1}", self.app, port, cidr, f"{label} from allowedCidrs"
                )

        for group_name, group in (("broker", self.broker), ("app", self.app)):
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-{group_name}-egress",
                security_group_id=group.id,
                ip_protocol="-1",
                cidr_ipv4="0.0.0.0/0",
                description="packages, images, SSM and Kafka peers",
                opts=self._child,
            )

        self.register_outputs({"broker_sg_id": self.broker.id, "app_sg_id": self.app.id})

    def _from_group(
        self,
        rule_name: str,
        target: aws.ec2.SecurityGroup,
        source: aws.ec2.SecurityGroup,
        port: int,
        description: str,
    ) -> None:
        aws.vpc.SecurityGroupIngressRule(
            rule_name,
            security_group_id=target.id,
            referenced_security_group_id=source.id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=description,
            opts=self._child,
        )

    def _from_cidr(
        self,
        rule_name: str,
        target: aws.ec2.SecurityGroup,
        port: int,
        cidr: str,
        description: str,
    ) -> None:
        family = ipaddress.ip_network(cidr).version
        aws.vpc.SecurityGroupIngressRule(
            rule_name,
            security_group_id=target.id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            cidr_ipv4=cidr if family == 4 else None,
            cidr_ipv6=cidr if family == 6 else None,
            description=description,
            opts=self._child,
        )
