"""The public dashboard: an HTTPS load balancer in the public subnets in front of the UI host.

Only when ``publicDashboard`` is on. TLS ends at the load balancer with your ACM certificate
(TLS 1.2+); the dashboard's own password login is required behind it; the UI host itself stays
without any open port to the internet.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from orderflow_infra.security import DASHBOARD_PORT, HTTPS_PORT

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
HEALTH_PATH = "/_stcore/health"  # Streamlit's own health endpoint


@dataclass(frozen=True)
class PublicDashboardArgs:
    certificate_arn: str
    vpc_id: pulumi.Input[str]
    subnets: list[aws.ec2.Subnet]
    security_group_id: pulumi.Input[str]
    ui_instance: aws.ec2.Instance


class PublicDashboard(pulumi.ComponentResource):
    """``load_balancer``; ``url`` is ``https://<its DNS name>`` (point your certificate's name
    at it with a CNAME)."""

    def __init__(
        self, name: str, args: PublicDashboardArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orderflow:dashboard:PublicDashboard", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.load_balancer = aws.lb.LoadBalancer(
            name,
            load_balancer_type="application",
            internal=False,
            subnets=[s.id for s in args.subnets],
            security_groups=[args.security_group_id],
            drop_invalid_header_fields=True,
            opts=child,
        )
        targets = aws.lb.TargetGroup(
            name,
            port=DASHBOARD_PORT,
            protocol="HTTP",
            target_type="instance",
            vpc_id=args.vpc_id,
            health_check=aws.lb.TargetGroupHealthCheckArgs(path=HEALTH_PATH, matcher="200"),
            opts=child,
        )
        aws.lb.TargetGroupAttachment(
            name,
            target_group_arn=targets.arn,
            target_id=args.ui_instance.id,
            port=DASHBOARD_PORT,
            opts=child,
        )
        aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=self.load_balancer.arn,
            port=HTTPS_PORT,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=args.certificate_arn,
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=targets.arn)
            ],
            opts=child,
        )
        self.url = self.load_balancer.dns_name.apply(lambda dns: f"https://{dns}")
        self.register_outputs({"url": self.url})
