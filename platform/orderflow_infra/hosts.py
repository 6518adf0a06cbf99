"""What every orderflow EC2 instance shares: the AMI lookup and hardened launch settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import pulumi
import pulumi_aws as aws

#: Ubuntu 24.04 ships the SSM agent (Session Manager is our default way in); Debian 12 does not.
UBUNTU_OWNER = "099720109477"  # Canonical
UBUNTU_NAME = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-*"
SSH_USER = "ubuntu"
ROOT_VOLUME_GB = 30
DATA_DEVICE = "/dev/sdf"  # shows up as /dev/nvme1n1 on Nitro; find it by volume id

# Graviton families carry a "g" after the generation digit: t4g, m7g, c7gn, r8gd (not g5).
_ARM_FAMILY = re.compile(r"^[a-z]+\d+[a-z]*g[a-z]*\.")


def architecture(instance_type: str) -> str:
    """``arm64`` for Graviton instance types, ``amd64`` otherwise (Ubuntu's naming)."""
    return "arm64" if _ARM_FAMILY.match(instance_type) else "amd64"


def ubuntu_ami(arch: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """The newest Canonical Ubuntu 24.04 AMI id for ``arch`` in the provider's region."""
    ami = aws.ec2.get_ami_output(
        most_recent=True,
        owners=[UBUNTU_OWNER],
        filters=[
            aws.ec2.GetAmiFilterArgs(name="name", values=[UBUNTU_NAME.format(arch=arch)]),
            aws.ec2.GetAmiFilterArgs(name="virtualization-type", values=["hvm"]),
            aws.ec2.GetAmiFilterArgs(name="root-device-type", values=["ebs"]),
        ],
        opts=pulumi.InvokeOutputOptions(parent=parent),
    )
    return ami.id


@dataclass(frozen=True)
class HostSpec:
    """Launch settings shared by the hosts of one component; ``ami`` from ``ubuntu_ami``."""

    ami: pulumi.Input[str]
    instance_type: str
    security_group_id: pulumi.Input[str]
    instance_profile: pulumi.Input[str]
    key_name: pulumi.Input[str] | None = None

    @classmethod
    def for_hosts(cls, args: _HostArgs, parent: pulumi.Resource) -> HostSpec:
        """The spec for a component's args, with the Ubuntu image for their architecture."""
        return cls(
            ami=ubuntu_ami(architecture(args.instance_type), parent),
            instance_type=args.instance_type,
            security_group_id=args.security_group_id,
            instance_profile=args.instance_profile,
            key_name=args.key_name,
        )


class _HostArgs(Protocol):
    """What ``HostSpec.for_hosts`` reads from a component's args dataclass."""

    instance_type: str
    security_group_id: pulumi.Input[str]
    instance_profile: pulumi.Input[str]
    key_name: pulumi.Input[str] | None


def launch_instance(
    resource_name: str,
    host_name: str,
    spec: HostSpec,
    subnet: aws.ec2.Subnet,
    public_ip: bool,
    parent: pulumi.Resource,
) -> aws.ec2.Instance:
    """An instance with IMDSv2 required (hop limit 1, so containers cannot reach instance
    credentials), an encrypted gp3 root volume and the SSM instance profile.

    ``ami`` changes are ignored: a newer Ubuntu image must not replace a running broker.
    """
    return aws.ec2.Instance(
        resource_name,
        ami=spec.ami,
        instance_type=spec.instance_type,
        subnet_id=subnet.id,
        vpc_security_group_ids=[spec.security_group_id],
        iam_instance_profile=spec.instance_profile,
        key_name=spec.key_name,
        associate_public_ip_address=public_ip,
        metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
            http_endpoint="enabled",
            http_tokens="required",
            http_put_response_hop_limit=1,
        ),
        root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
            volume_type="gp3",
            volume_size=ROOT_VOLUME_GB,
            encrypted=True,
            delete_on_termination=True,
            tags={"Name": f"orderflow-{host_name}-root"},
        ),
        tags={"Name": f"orderflow-{host_name}", "orderflow:host": host_name},
        opts=pulumi.ResourceOptions(parent=parent, ignore_changes=["ami"]),
    )
