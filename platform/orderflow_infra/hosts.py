"""What every orderflow EC2 instance shares: the AMI lookup and hardened launch settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws

#: Ubuntu 24.04 ships the SSM agent (Session Manager is our default way in); Debian 12 does not.
UBUNTU_RELEASE = "24.04"
#: Canonical publishes its current AMI ids as SSM public parameters in every partition (no owner
#: id to hard-code, which differs in China and GovCloud).
UBUNTU_AMI_PARAMETER = (
    "/aws/service/canonical/ubuntu/server/{release}/stable/current/{arch}/hvm/ebs-gp3/ami-id"
)
SSH_USER = "ubuntu"
ROOT_VOLUME_GB = 30
DATA_DEVICE = "/dev/sdf"  # shows up as /dev/nvme1n1 on Nitro; find it by volume id

# Graviton families carry a "g" after the generation digit: t4g, m7g, c7gn, r8gd (not g5).
_ARM_FAMILY = re.compile(r"^[a-z]+\d+[a-z]*g[a-z]*\.")


def architecture(instance_type: str) -> str:
    """``arm64`` for Graviton instance types, ``amd64`` otherwise (Ubuntu's naming)."""
    return "arm64" if _ARM_FAMILY.match(instance_type) else "amd64"


def ubuntu_ami(arch: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """The current Canonical Ubuntu AMI id for ``arch`` in the provider's region."""
    parameter = aws.ssm.get_parameter_output(
        name=UBUNTU_AMI_PARAMETER.format(release=UBUNTU_RELEASE, arch=arch),
        opts=pulumi.InvokeOutputOptions(parent=parent),
    )
    # A public String parameter: the plain value, not a secret.
    return parameter.insecure_value


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


@dataclass(frozen=True)
class Placement:
    """Where one instance goes: a ``subnet`` (AWS picks its address) or a ``network_interface``
    of its own (a stable private IP across replacements); extra ``security_group_ids``; what
    must exist before it boots (``depends_on``); an ``instance_profile`` other than the spec's."""

    subnet: aws.ec2.Subnet | None = None
    network_interface: aws.ec2.NetworkInterface | None = None
    security_group_ids: tuple[pulumi.Input[str], ...] = ()
    depends_on: tuple[pulumi.Resource, ...] = ()
    instance_profile: pulumi.Input[str] | None = None


def launch_instance(
    resource_name: str,
    host_name: str,
    spec: HostSpec,
    placement: Placement,
    parent: pulumi.Resource,
) -> aws.ec2.Instance:
    """An instance with IMDSv2 required (hop limit 1, so containers cannot reach instance
    credentials), an encrypted gp3 root volume and the SSM instance profile. It never has a
    public IP of its own (the UI host gets an Elastic IP when asked).

    ``ami`` and ``key_name`` changes are ignored: a newer Ubuntu image or a new SSH key must not
    replace a running host (docs/cloud.md says how to roll either). A host on its own network
    interface is deleted before its replacement is created: the interface holds one instance.
    """
    own_interface = placement.network_interface is not None
    if placement.network_interface is not None:  # its groups sit on the interface
        network: dict[str, Any] = {
            "primary_network_interface": aws.ec2.InstancePrimaryNetworkInterfaceArgs(
                network_interface_id=placement.network_interface.id
            )
        }
    elif placement.subnet is not None:
        network = {
            "subnet_id": placement.subnet.id,
            "vpc_security_group_ids": [spec.security_group_id, *placement.security_group_ids],
            "associate_public_ip_address": False,
        }
    else:
        raise ValueError(f"{host_name}: a placement needs a subnet or a network interface")
    return aws.ec2.Instance(
        resource_name,
        ami=spec.ami,
        instance_type=spec.instance_type,
        **network,
        iam_instance_profile=placement.instance_profile or spec.instance_profile,
        key_name=spec.key_name,
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
        opts=pulumi.ResourceOptions(
            parent=parent,
            ignore_changes=["ami", "key_name"],
            depends_on=list(placement.depends_on),
            delete_before_replace=own_interface,
        ),
    )
