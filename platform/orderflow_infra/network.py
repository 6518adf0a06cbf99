"""The VPC: public and private subnets across availability zones, internet egress, SSM reach,
flow logs, and a default security group with no rules."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

#: Interface endpoints private hosts need when they have no NAT route: Session Manager's, and
#: Secrets Manager's (the deploy fetches each host's Kafka secrets on the host).
SSM_ENDPOINT_SERVICES = ("ssm", "ssmmessages", "ec2messages", "secretsmanager")
DEFAULT_VPC_CIDR = "10.42.0.0/16"
FLOW_LOG_RETENTION_DAYS = 365  # Security Hub CloudWatch.16's default minimum
_PRIVATE_OFFSET = 128  # private /24s start at x.x.128.0, public ones at x.x.0.0
_UI_OFFSET = 64  # the UI host's own /24 at x.x.64.0
# AWS-owned buckets the SSM agent reads (its updates, documents, plugins), per region; nothing
# else on S3 is reachable through the gateway endpoint.
SSM_AGENT_BUCKETS = (
    "amazon-ssm-{region}",
    "amazon-ssm-packages-{region}",
    "{region}-birdwatcher-prod",
    "aws-ssm-{region}",
    "aws-ssm-document-attachments-{region}",
    "aws-ssm-distributor-file-{region}",
    "patch-baseline-snapshot-{region}",
)


@dataclass(frozen=True)
class NetworkArgs:
    """az_count subnets of each kind, in zones that need no opt-in and offer every one of
    ``instance_types``; nat_gateway=False swaps the NAT for VPC endpoints. ``ui_public`` routes
    the UI host's subnet to the internet gateway (it then has an Elastic IP) instead of the NAT.
    """

    region: str
    az_count: int
    nat_gateway: bool
    instance_types: tuple[str, ...] = ("m7i.large", "t3.medium")
    ui_public: bool = False
    vpc_cidr: str = DEFAULT_VPC_CIDR


class Network(pulumi.ComponentResource):
    """VPC with one public and one private /24 per AZ, an internet gateway and either one NAT
    gateway (private hosts can download packages) or SSM interface endpoints (no egress at all).
    An S3 gateway endpoint is always added: it is free and keeps S3 traffic off the NAT.

    The UI host (``app-1``) has a subnet of its own in the first AZ, ``ui_subnet``: turning its
    public address on or off changes that subnet's route and an Elastic IP, never the instance.

    Attributes: ``vpc``, ``azs`` (list of Output[str]), ``public_subnets``, ``private_subnets``,
    ``ui_subnet``; ``private_ready`` and ``ui_ready``: what a host in those subnets needs before
    it boots so its SSM agent can register (its egress route, or the SSM endpoints).
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
        invoke = pulumi.InvokeOutputOptions(parent=self)
        zones = aws.get_availability_zones_output(
            state="available",
            filters=[
                aws.GetAvailabilityZonesFilterArgs(
                    name="opt-in-status", values=["opt-in-not-required"]
                )
            ],
            opts=invoke,
        )
        offerings = aws.ec2.get_instance_type_offerings_output(
            location_type="availability-zone",
            filters=[
                aws.ec2.GetInstanceTypeOfferingsFilterArgs(
                    name="instance-type", values=sorted(set(args.instance_types))
                )
            ],
            opts=invoke,
        )
        chosen = pulumi.Output.all(
            zones.names, offerings.instance_types, offerings.locations
        ).apply(
            lambda v: choose_zones(
                v[0], list(zip(v[1], v[2], strict=True)), args.instance_types, args.az_count
            )
        )
        self.azs = [chosen.apply(lambda names, i=i: names[i]) for i in range(args.az_count)]
        self._flow_logs(name)
        # No rules at all: anything launched without a group of ours is unreachable (CIS EC2.2).
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default", vpc_id=self.vpc.id, tags={"Name": f"{name}-default"}, opts=child
        )

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

        self.ui_subnet = aws.ec2.Subnet(
            f"{name}-ui",
            vpc_id=self.vpc.id,
            cidr_block=str(blocks[_UI_OFFSET]),
            availability_zone=self.azs[0],
            map_public_ip_on_launch=False,
            tags={"Name": f"{name}-ui", "Tier": "ui"},
            opts=child,
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

        ui_rt = aws.ec2.RouteTable(
            f"{name}-ui", vpc_id=self.vpc.id, tags={"Name": f"{name}-ui"}, opts=child
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-ui", subnet_id=self.ui_subnet.id, route_table_id=ui_rt.id, opts=child
        )

        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[private_rt.id, public_rt.id, ui_rt.id],
            policy=aws.get_partition_output(opts=invoke).partition.apply(
                lambda partition: s3_endpoint_policy(args.region, partition)
            ),
            tags={"Name": f"{name}-s3"},
            opts=child,
        )
        nat = self._nat(name, igw) if args.nat_gateway else None
        endpoints = [] if nat else self._ssm_endpoints(name, args)
        self.private_ready: list[pulumi.Resource] = [
            *([self._default_route(f"{name}-private-default", private_rt, nat=nat)] if nat else []),
            *endpoints,
        ]
        # Routed to the internet gateway only while it has an Elastic IP (sshEnabled); the
        # route is updated in place, so the toggle never replaces the instance behind it.
        ui_route = None
        if args.ui_public:
            ui_route = self._default_route(f"{name}-ui-default", ui_rt, igw=igw)
        elif nat:
            ui_route = self._default_route(f"{name}-ui-default", ui_rt, nat=nat)
        self.ui_ready: list[pulumi.Resource] = [*([ui_route] if ui_route else []), *endpoints]

        self.register_outputs(
            {
                "vpc_id": self.vpc.id,
                "public_subnet_ids": [s.id for s in self.public_subnets],
                "private_subnet_ids": [s.id for s in self.private_subnets],
            }
        )

    def _nat(self, name: str, igw: aws.ec2.InternetGateway) -> aws.ec2.NatGateway:
        # One NAT for all AZs: an AZ outage only cuts package downloads, never Kafka traffic.
        eip = aws.ec2.Eip(
            f"{name}-nat",
            domain="vpc",
            tags={"Name": f"{name}-nat"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
        )
        return aws.ec2.NatGateway(
            name,
            allocation_id=eip.id,
            subnet_id=self.public_subnets[0].id,
            tags={"Name": name},
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _default_route(
        self,
        name: str,
        table: aws.ec2.RouteTable,
        nat: aws.ec2.NatGateway | None = None,
        igw: aws.ec2.InternetGateway | None = None,
    ) -> aws.ec2.Route:
        return aws.ec2.Route(
            name,
            route_table_id=table.id,
            destination_cidr_block="0.0.0.0/0",
            nat_gateway_id=nat.id if nat else None,
            gateway_id=igw.id if igw else None,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _flow_logs(self, name: str) -> None:
        """Every accepted and rejected flow of the VPC to CloudWatch Logs (CIS EC2.6)."""
        child = pulumi.ResourceOptions(parent=self)
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs", retention_in_days=FLOW_LOG_RETENTION_DAYS, opts=child
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=_assume_role("vpc-flow-logs.amazonaws.com"),
            description="orderflow VPC flow logs: write to their log group only",
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=group.arn.apply(_flow_log_policy),
            opts=child,
        )
        aws.ec2.FlowLog(
            name,
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=600,
            tags={"Name": name},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )

    def _ssm_endpoints(self, name: str, args: NetworkArgs) -> list[pulumi.Resource]:
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
        return [
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
            for service in SSM_ENDPOINT_SERVICES
        ]


def choose_zones(
    names: Sequence[str],
    offerings: Sequence[tuple[str, str]],
    instance_types: Sequence[str],
    needed: int,
) -> list[str]:
    """The first ``needed`` zones (by name) of ``names`` where every one of ``instance_types`` is
    offered (``offerings``: (instance type, zone) pairs); one clear error if too few remain."""
    offered = {zone: {t for t, z in offerings if z == zone} for zone in names}
    usable = sorted(zone for zone in names if set(instance_types) <= offered[zone])
    if len(usable) < needed:
        wanted = " and ".join(sorted(set(instance_types)))
        raise pulumi.RunError(
            f"only {len(usable)} availability zone(s) of the region offer {wanted} without "
            f"opt-in ({', '.join(usable) or 'none'}); orderflow needs {needed}: choose other "
            "instance types or another region"
        )
    return usable[:needed]


def s3_endpoint_policy(region: str, partition: str = "aws") -> str:
    """Read-only access to the SSM agent's buckets in ``region``, nothing else on S3."""
    buckets = [bucket.format(region=region) for bucket in SSM_AGENT_BUCKETS]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "SsmAgentBuckets",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject"],
                    "Resource": [f"arn:{partition}:s3:::{bucket}/*" for bucket in buckets],
                }
            ],
        }
    )


def _assume_role(service: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _flow_log_policy(group_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogStreams",
                    ],
                    "Resource": [group_arn, f"{group_arn}:*"],
                }
            ],
        }
    )
