"""How people and tools reach the hosts: the SSM instance role, and an optional SSH key."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

#: Policy name under ``arn:<partition>:iam::aws:policy/`` (partition differs in China/GovCloud).
SSM_CORE_POLICY = "AmazonSSMManagedInstanceCore"

_ASSUME_EC2 = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@dataclass(frozen=True)
class InstanceIdentityArgs:
    """``ssh_public_key`` (optional) becomes an EC2 key pair installed on every host."""

    ssh_public_key: str | None = None


class InstanceIdentity(pulumi.ComponentResource):
    """How hosts are reached: an EC2 role with AmazonSSMManagedInstanceCore, its instance
    ``profile`` and, if a key was given, ``key_name`` of the key pair (else None)."""

    def __init__(
        self, name: str, args: InstanceIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orderflow:identity:InstanceIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            name,
            assume_role_policy=_ASSUME_EC2,
            description="orderflow hosts: SSM Session Manager only",
            opts=child,
        )
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
        aws.iam.RolePolicyAttachment(
            f"{name}-ssm",
            role=self.role.name,
            policy_arn=partition.partition.apply(
                lambda p: f"arn:{p}:iam::aws:policy/{SSM_CORE_POLICY}"
            ),
            opts=child,
        )
        self.profile = aws.iam.InstanceProfile(name, role=self.role.name, opts=child)
        self.key_name: pulumi.Output[str] | None = None
        if args.ssh_public_key:
            self.key_name = aws.ec2.KeyPair(
                name, public_key=args.ssh_public_key, opts=child
            ).key_name
        self.register_outputs({"role_arn": self.role.arn, "profile_name": self.profile.name})
