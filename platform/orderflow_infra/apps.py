"""App hosts: the processors everywhere; the dashboard and Redpanda Console on ``app-1``."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from orderflow_infra.hosts import HostSpec, Placement, launch_instance


@dataclass(frozen=True)
class AppHostsArgs:
    """``app-1`` (the UI host) sits in ``ui_subnet`` with ``ui_security_group_id`` too, and gets
    an Elastic IP when ``public_ip`` (sshEnabled), and has ``ui_instance_profile`` (its own
    role: it reads the UIs' secrets too); the others sit in ``subnets`` (private, one per AZ).
    ``depends_on`` / ``ui_depends_on``: what must exist before they boot."""

    app_count: int
    instance_type: str
    subnets: list[aws.ec2.Subnet]
    ui_subnet: aws.ec2.Subnet
    security_group_id: pulumi.Input[str]
    ui_security_group_id: pulumi.Input[str]
    instance_profile: pulumi.Input[str]
    ui_instance_profile: pulumi.Input[str]
    public_ip: bool = False
    key_name: pulumi.Input[str] | None = None
    depends_on: tuple[pulumi.Resource, ...] = field(default_factory=tuple)
    ui_depends_on: tuple[pulumi.Resource, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class AppHost:
    """One app host: its inventory ``name``, instance and, on a public UI host, its EIP."""

    name: str
    instance: aws.ec2.Instance
    eip: aws.ec2.Eip | None = None


class AppHosts(pulumi.ComponentResource):
    """``app_count`` instances: ``app-1`` in the UI subnet, the rest round-robin over ``subnets``
    starting with the second AZ (so two app hosts sit in two AZs)."""

    def __init__(
        self, name: str, args: AppHostsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orderflow:apps:AppHosts", name, None, opts)
        spec = HostSpec.for_hosts(args, parent=self)
        self.hosts: list[AppHost] = []
        for i in range(1, args.app_count + 1):
            host = f"app-{i}"
            if i == 1:
                placement = Placement(
                    subnet=args.ui_subnet,
                    security_group_ids=(args.ui_security_group_id,),
                    depends_on=args.ui_depends_on,
                    instance_profile=args.ui_instance_profile,
                )
            else:
                subnet = args.subnets[(i - 1) % len(args.subnets)]
                placement = Placement(subnet=subnet, depends_on=args.depends_on)
            instance = launch_instance(f"{name}-{i}", host, spec, placement, self)
            eip = None
            if i == 1 and args.public_ip:
                eip = aws.ec2.Eip(
                    f"{name}-{i}",
                    domain="vpc",
                    instance=instance.id,
                    tags={"Name": f"orderflow-{host}"},
                    opts=pulumi.ResourceOptions(parent=self),
                )
            self.hosts.append(AppHost(host, instance, eip))

        self.register_outputs({"instance_ids": [h.instance.id for h in self.hosts]})
