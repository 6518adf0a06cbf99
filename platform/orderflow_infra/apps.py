"""App hosts: the processors everywhere; the dashboard and Redpanda Console on ``app-1``."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from orderflow_infra.hosts import HostSpec, launch_instance


@dataclass(frozen=True)
class AppHostsArgs:
    """``public_ip`` puts the hosts in public subnets with a public IP (only when some port is
    opened to allowedCidrs); otherwise they sit in private subnets like the brokers."""

    app_count: int
    instance_type: str
    subnets: list[aws.ec2.Subnet]
    security_group_id: pulumi.Input[str]
    instance_profile: pulumi.Input[str]
    public_ip: bool = False
    key_name: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class AppHost:
    """One app host: its inventory ``name`` and instance."""

    name: str
    instance: aws.ec2.Instance


class AppHosts(pulumi.ComponentResource):
    """``app_count`` instances spread round-robin over ``subnets`` (one per AZ)."""

    def __init__(
        self, name: str, args: AppHostsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orderflow:apps:AppHosts", name, None, opts)
        spec = HostSpec.for_hosts(args, parent=self)
        self.hosts: list[AppHost] = []
        for i in range(1, args.app_count + 1):
            host = f"app-{i}"
            subnet = args.subnets[(i - 1) % len(args.subnets)]
            instance = launch_instance(f"{name}-{i}", host, spec, subnet, args.public_ip, self)
            self.hosts.append(AppHost(host, instance))

        self.register_outputs({"instance_ids": [h.instance.id for h in self.hosts]})
