"""Kafka's secrets in AWS Secrets Manager: one SCRAM password per principal and the cluster CA's
private key.

Pulumi generates them (pulumi-random, pulumi-tls), so they exist only as Pulumi secrets in the
stack's state and as Secrets Manager secrets encrypted with a KMS key of their own. Each host
class's instance role may read only its own (``READERS``); the stack outputs carry the secrets'
ARNs, never a value, and hosts fetch their values at deploy time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import pulumi
import pulumi_aws as aws
import pulumi_random as random
import pulumi_tls as tls

from orderflow_infra.identity import account_administers

#: The SCRAM users of a secured cluster: ``broker`` (inter-broker, the ACL super user) and the
#: application principals of processors/acls.py, plus Redpanda Console's own.
PRINCIPALS = ("broker", "main", "retry", "producer", "operator", "admin", "console")
CA_KEY = "ca-key"
ITEMS = (*PRINCIPALS, CA_KEY)
#: What each host class's role may read. The UI host runs the processors too. Nobody's role
#: reads ``producer`` (it is for your producer applications) or the CA key (node certificates
#: are issued on the deploying machine).
READERS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "kafka": ("broker", "admin"),
        "app": ("main", "retry"),
        "ui": ("main", "retry", "operator", "console"),
    }
)
#: 32 characters of A-Z a-z 0-9 (~190 bits): inside the alphabet a JAAS string and Kafka's
#: StorageTool accept (deploy/localkafka/broker_security.py check_secret).
PASSWORD_LENGTH = 32
#: As deploy/localkafka/certs.py: the CA lasts 825 days, and a `pulumi up` within its last 30
#: days issues a new certificate for the same key and subject (node certificates stay valid).
CA_VALIDITY_HOURS = 825 * 24
CA_EARLY_RENEWAL_HOURS = 30 * 24


def secret_name(stack: str, item: str) -> str:
    """The Secrets Manager name of ``item`` (a principal or ``ca-key``) in ``stack``."""
    return f"orderflow/{stack}/kafka/{item}"


@dataclass(frozen=True)
class KafkaSecretsArgs:
    """``stack`` prefixes every secret's name, so stacks in one account and region never mix."""

    stack: str
    region: str


class KafkaSecrets(pulumi.ComponentResource):
    """The passwords and the CA key, each in its own secret (``arns``: item → ARN), encrypted
    with ``key``; ``ca_certificate`` is the CA's public certificate (PEM, plain)."""

    def __init__(
        self, name: str, args: KafkaSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orderflow:credentials:KafkaSecrets", name, None, opts)
        self._name, self._args = name, args
        self._child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        partition = aws.get_partition_output(opts=invoke)
        account = aws.get_caller_identity_output(opts=invoke)
        self._dns_suffix = partition.dns_suffix
        # Not the session key: every host role may decrypt with that one (session data).
        self.key = aws.kms.Key(
            f"{name}-secrets",
            description=f"orderflow {args.stack}: Kafka passwords and CA key in Secrets Manager",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(partition.partition, account.account_id).apply(
                lambda v: secrets_key_policy(v[0], v[1])
            ),
            opts=self._child,
        )
        self.arns: dict[str, pulumi.Output[str]] = {}
        for principal in PRINCIPALS:
            password = random.RandomPassword(
                f"{name}-{principal}", length=PASSWORD_LENGTH, special=False, opts=self._child
            )
            self._store(principal, password.result)
        ca_key = tls.PrivateKey(
            f"{name}-ca", algorithm="ECDSA", ecdsa_curve="P256", opts=self._child
        )
        certificate = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(
                common_name=f"orderflow {args.stack} Kafka CA", organization="orderflow"
            ),
            is_ca_certificate=True,
            validity_period_hours=CA_VALIDITY_HOURS,
            early_renewal_hours=CA_EARLY_RENEWAL_HOURS,
            allowed_uses=["cert_signing", "crl_signing"],
            opts=self._child,
        )
        # Public by nature; said explicitly so it can never make the output contract secret.
        self.ca_certificate: pulumi.Output[str] = pulumi.Output.unsecret(certificate.cert_pem)
        self._store(CA_KEY, ca_key.private_key_pem_pkcs8)
        self.register_outputs({"arns": self.arns, "key_arn": self.key.arn})

    def _store(self, item: str, value: pulumi.Output[str]) -> None:
        # No recovery window: the secrets die with the cluster they belong to (destroy deletes
        # its data volumes too), and a pending deletion would block the next `up` of the stack
        # from creating a secret of the same name.
        secret = aws.secretsmanager.Secret(
            f"{self._name}-{item}",
            name=secret_name(self._args.stack, item),
            description=f"orderflow {self._args.stack}: Kafka {_describe(item)}",
            kms_key_id=self.key.arn,
            recovery_window_in_days=0,
            opts=self._child,
        )
        aws.secretsmanager.SecretVersion(
            f"{self._name}-{item}",
            secret_id=secret.id,
            secret_string=pulumi.Output.secret(value),
            opts=self._child,
        )
        self.arns[item] = secret.arn

    def read_policy(self, host_class: str) -> pulumi.Output[str]:
        """The IAM policy letting ``host_class``'s role read its own secrets (``READERS``)."""
        readable = [self.arns[item] for item in READERS[host_class]]
        return pulumi.Output.all(self.key.arn, self._dns_suffix, *readable).apply(
            lambda v: secrets_read_policy(v[2:], v[0], self._args.region, v[1])
        )


def _describe(item: str) -> str:
    return "cluster CA private key (PEM)" if item == CA_KEY else f"SCRAM password of {item}"


def secrets_key_policy(partition: str, account: str) -> str:
    """The account administers the key; principals use it through their IAM policies (hosts:
    only via Secrets Manager, for their own secrets)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [account_administers(partition, account)],
        }
    )


def secrets_read_policy(
    secret_arns: Sequence[str], key_arn: str, region: str, dns_suffix: str = "amazonaws.com"
) -> str:
    """Read exactly ``secret_arns``, and decrypt with the key only through Secrets Manager and
    only for those secrets (Secrets Manager passes the secret's ARN as encryption context)."""
    arns = sorted(secret_arns)
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadOwnKafkaSecrets",
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                    "Resource": arns,
                },
                {
                    "Sid": "DecryptOwnKafkaSecrets",
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": key_arn,
                    "Condition": {
                        "StringEquals": {
                            "kms:ViaService": f"secretsmanager.{region}.{dns_suffix}",
                            "kms:EncryptionContext:SecretARN": arns,
                        }
                    },
                },
            ],
        }
    )
