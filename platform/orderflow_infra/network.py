"""The VPC: public and private subnets across availability zones, internet egress, SSM reach."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

#: Interface endpoints Session Manager needs when private hosts have no NAT route.
SSM_ENDPOINT_SERVICES = ("ssm", "ssmmessages", "ec2messages")
DEFAULT_VPC_CIDR = "10.42.0.0/16"
_PRIVATE_OFFSET = 128  # private /24s start at x.x.128.0, public ones at x.x.0.0


@dataclass(frozen=True)
class NetworkArgs:
    """az_count subnets of each kind; nat_gateway=False swaps the NAT for VPC endpoints."""

    region: str
    az_count: int
    nat_gateway: bool
    vpc_cidr: str = DEFAULT_VPC_CIDR


class Network(pulumi.ComponentResource):
    """VPC with one public and one private /24 per AZ, an internet gateway and either one NAT
    gateway (private hosts can download packages) or SSM interface endpoints (no egress at all).
    An S3 gateway endpoint is always added: it is free and keeps S3 traffic off the NAT.

    Attributes: ``vpc``, ``azs`` (list of Output[str]), ``public_subnets``, ``private_subnets``.
    """

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orderflow:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        blocks = list(ipaddress.ip_network(args.vpc_cidr).subnets(new_prefix=24))

        self.vpc = aws.ec2.Vpc(
            name,
            cidr_block=args.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # interface endpoints' private DNS needs both
            tags={"Name": name},
            opts=child,
        )
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self.azs = [zones.names.apply(_pick_zone(i, args.az_count)) for i in range(args.az_count)]

        self.public_subnets: list[aws.ec2.Subnet] = []
        self.private_subnets: list[aws.ec2.Subnet] = []
        for i, az in enumerate(self.azs):
            self.public_subnets.append(
                aws.ec2.Subnet(
                    f"{name}-public-{i + 1}",
                    vpc_id=self.vpc.id,
                    cidr_block=str(blocks[i]),
                    availability_zone=az,
                    map_public_ip_on_launch=False,  # each instance decides explicitly
                    tags={"Name": f"{name}-public-{i + 1}", "Tier": "public"},
                    opts=child,
                )
            )
            self.private_subnets.append(
                aws.ec2.Subnet(
                    f"{name}-private-{i + 1}",
                    vpc_id=self.vpc.id,
                    cidr_block=str(blocks[_PRIVATE_OFFSET + i]),
                    availability_zone=az,
                    map_public_ip_on_launch=False,
                    tags={"Name": f"{name}-private-{i + 1}", "Tier": "private"},
                    opts=child,
                )
            )

        igw = aws.ec2.InternetGateway(name, vpc_id=self.vpc.id, tags={"Name": name}, opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public", vpc_id=self.vpc.id, tags={"Name": f"{name}-public"}, opts=child
        )
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=child,
        )
        private_rt = aws.ec2.RouteTable(
            f"{name}-private", vpc_id=self.vpc.id, tags={"Name": f"{name}-private"}, opts=child
        )
        for i, (public, private) in enumerate(
            zip(self.public_subnets, self.private_subnets, strict=True)
        ):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i + 1}",
                subnet_id=public.id,
                route_table_id=public_rt.id,
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i + 1}",
                subnet_id=private.id,
                route_table_id=private_rt.id,
                opts=child,
            )

        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[private_rt.id, public_rt.id],
            tags={"Name": f"{name}-s3"},
            opts=child,
        )
        if args.nat_gateway:
            self._nat(name, private_rt, igw)
        else:
            self._ssm_endpoints(name, args)

        self.register_outputs(
            {
                "vpc_id": self.vpc.id,
                "public_subnet_ids": [s.id for s in self.public_subnets],
                "private_subnet_ids": [s.id for s in self.private_subnets],
            }
        )

    def _nat(self, name: str, private_rt: aws.ec2.RouteTable, igw: aws.ec2.InternetGateway) -> None:
        # One NAT for all AZs: an AZ outage only cuts package downloads, never Kafka traffic.
        child = pulumi.ResourceOptions(parent=self)
        eip = aws.ec2.Eip(
            f"{name}-nat",
            domain="vpc",
            tags={"Name": f"{name}-nat"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
        )
        nat = aws.ec2.NatGateway(
            name,
            allocation_id=eip.id,
            subnet_id=self.public_subnets[0].id,
            tags={"Name": name},
            opts=child,
        )
        aws.ec2.Route(
            f"{name}-private-default",
            route_table_id=private_rt.id,
            destination_cidr_block="0.0.0.0/0",
            nat_gateway_id=nat.id,
            opts=child,
        )

    def _ssm_endpoints(self, name: str, args: NetworkArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=self.vpc.id,
            description="HTTPS from inside the VPC to the SSM interface endpoints",
            tags={"Name": f"{name}-endpoints"},
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-endpoints-https",
            security_group_id=endpoint_sg.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4=self.vpc.cidr_block,
            description="instances in this VPC",
            opts=child,
        )
        for service in SSM_ENDPOINT_SERVICES:
            aws.ec2.VpcEndpoint(
                f"{name}-{service}",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in self.private_subnets],
                security_group_ids=[endpoint_sg.id],
                tags={"Name": f"{name}-{service}"},
                opts=child,
            )


def _pick_zone(index: int, needed: int) -> Callable[[list[str]], str]:
    """Return a function choosing AZ ``index`` that fails clearly if the region has too few."""

    def pick(names: list[str]) -> str:
        if len(names) < needed:
            raise pulumi.RunError(
                f"region has {len(names)} available AZs, orderflow needs {needed}"
            )
        return sorted(names)[index]

    return pick
