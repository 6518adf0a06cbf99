"""How people and tools reach the hosts: an SSM instance role per host class, Session Manager
preferences (session logs to CloudWatch, session data encrypted with a KMS key of the stack),
and an optional SSH key."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

#: Policy name under ``arn:<partition>:iam::aws:policy/`` (partition differs in China/GovCloud).
SSM_CORE_POLICY = "AmazonSSMManagedInstanceCore"
SESSION_LOG_RETENTION_DAYS = 365
IDLE_SESSION_TIMEOUT_MINUTES = 20

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


#: The host classes, each with its own role (so each reads only its own Kafka secrets):
#: brokers, app hosts, and the UI host (``app-1``: processors, dashboard, Redpanda Console).
HOST_CLASSES = ("kafka", "app", "ui")


@dataclass(frozen=True)
class InstanceIdentityArgs:
    """``ssh_public_key`` (optional) becomes an EC2 key pair installed on hosts created after it
    is set; ``stack`` names the Session Manager document (one per stack and region);
    ``host_policies``: an extra inline policy per host class (its Kafka secrets)."""

    stack: str
    region: str
    ssh_public_key: str | None = None
    host_policies: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class InstanceIdentity(pulumi.ComponentResource):
    """One EC2 role per host class (``roles``, ``profiles``: kafka, app, ui), each with
    AmazonSSMManagedInstanceCore, what session logging needs and its ``host_policies`` entry;
    ``session_document`` (the Session Manager preferences to start shells with) and, if a key
    was given, ``key_name`` (else None). ``ready[host_class]``: what an instance of that class
    needs before it boots so its agent registers with every permission at once."""

    def __init__(
        self, name: str, args: InstanceIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orderflow:identity:InstanceIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        partition = aws.get_partition_output(opts=invoke)
        account = aws.get_caller_identity_output(opts=invoke)
        self.session_key = aws.kms.Key(
            f"{name}-sessions",
            description="orderflow Session Manager session data and session logs",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(
                partition.partition, partition.dns_suffix, account.account_id
            ).apply(lambda v: session_key_policy(v[0], v[1], v[2], args.region)),
            opts=child,
        )
        self.session_logs = aws.cloudwatch.LogGroup(
            f"{name}-sessions",
            retention_in_days=SESSION_LOG_RETENTION_DAYS,
            kms_key_id=self.session_key.arn,
            opts=child,
        )
        self.session_document = aws.ssm.Document(
            f"{name}-sessions",
            name=f"orderflow-{args.stack}-sessions",
            document_type="Session",
            document_format="JSON",
            content=pulumi.Output.all(self.session_logs.name, self.session_key.key_id).apply(
                lambda v: session_preferences(v[0], v[1])
            ),
            opts=child,
        )
        session_policy = pulumi.Output.all(self.session_key.arn, self.session_logs.arn).apply(
            lambda v: session_host_policy(v[0], v[1])
        )
        core_policy = partition.partition.apply(
            lambda p: f"arn:{p}:iam::aws:policy/{SSM_CORE_POLICY}"
        )
        self.roles: dict[str, aws.iam.Role] = {}
        self.profiles: dict[str, aws.iam.InstanceProfile] = {}
        self.ready: dict[str, list[pulumi.Resource]] = {}
        for host_class in HOST_CLASSES:
            role_name = f"{name}-{host_class}"
            role = aws.iam.Role(
                role_name,
                assume_role_policy=_ASSUME_EC2,
                description=f"orderflow {host_class} hosts: SSM and their own Kafka secrets",
                opts=child,
            )
            ready: list[pulumi.Resource] = [
                aws.iam.RolePolicyAttachment(
                    f"{role_name}-ssm", role=role.name, policy_arn=core_policy, opts=child
                ),
                aws.iam.RolePolicy(
                    f"{role_name}-sessions", role=role.id, policy=session_policy, opts=child
                ),
            ]
            if host_class in args.host_policies:
                ready.append(
                    aws.iam.RolePolicy(
                        f"{role_name}-kafka-secrets",
                        role=role.id,
                        policy=args.host_policies[host_class],
                        opts=child,
                    )
                )
            self.roles[host_class] = role
            self.profiles[host_class] = aws.iam.InstanceProfile(
                role_name, role=role.name, opts=child
            )
            self.ready[host_class] = ready
        self.key_name: pulumi.Output[str] | None = None
        if args.ssh_public_key:
            self.key_name = aws.ec2.KeyPair(
                name, public_key=args.ssh_public_key, opts=child
            ).key_name
        self.register_outputs(
            {
                "role_arns": {c: r.arn for c, r in self.roles.items()},
                "session_document": self.session_document.name,
            }
        )


def session_preferences(log_group: str, key_id: str) -> str:
    """Session Manager preferences: logs streamed to ``log_group``, data encrypted with the key."""
    return json.dumps(
        {
            "schemaVersion": "1.0",
            "description": "orderflow shells: logged to CloudWatch, encrypted with KMS",
            "sessionType": "Standard_Stream",
            "inputs": {
                "s3BucketName": "",
                "s3KeyPrefix": "",
                "s3EncryptionEnabled": True,
                "cloudWatchLogGroupName": log_group,
                "cloudWatchEncryptionEnabled": True,
                "cloudWatchStreamingEnabled": True,
                "kmsKeyId": key_id,
                "runAsEnabled": False,
                "runAsDefaultUser": "",
                "idleSessionTimeout": str(IDLE_SESSION_TIMEOUT_MINUTES),
                "maxSessionDuration": "",
                "shellProfile": {"windows": "", "linux": ""},
            },
        },
        sort_keys=True,
    )


def account_administers(partition: str, account: str) -> dict[str, object]:
    """The key-policy statement that lets the account's IAM policies grant use of a key."""
    return {
        "Sid": "AccountAdministers",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


def session_key_policy(partition: str, dns_suffix: str, account: str, region: str) -> str:
    """The account administers the key; CloudWatch Logs may use it for this account's groups."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                account_administers(partition, account),
                {
                    "Sid": "CloudWatchLogsEncrypts",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{region}.{dns_suffix}"},
                    "Action": [
                        "kms:Encrypt*",
                        "kms:Decrypt*",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:Describe*",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "ArnLike": {
                            "kms:EncryptionContext:aws:logs:arn": (
                                f"arn:{partition}:logs:{region}:{account}:*"
                            )
                        }
                    },
                },
            ],
        }
    )


def session_host_policy(key_arn: str, log_group_arn: str) -> str:
    """What the SSM agent needs to encrypt sessions with the key and stream their logs."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": key_arn,
                },
                {
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": f"{log_group_arn}:*",
                },
                {
                    # The agent checks the group's encryption before streaming to it.
                    "Effect": "Allow",
                    "Action": ["logs:DescribeLogGroups", "logs:DescribeLogStreams"],
                    "Resource": "*",
                },
            ],
        }
    )
