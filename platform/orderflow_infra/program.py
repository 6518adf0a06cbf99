"""Wire the components into one stack and compute the output contract."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from orderflow_infra.apps import AppHosts, AppHostsArgs
from orderflow_infra.config import StackConfig
from orderflow_infra.identity import InstanceIdentity, InstanceIdentityArgs
from orderflow_infra.kafka import KafkaCluster, KafkaClusterArgs
from orderflow_infra.network import Network, NetworkArgs
from orderflow_infra.outputs import CONTRACT_KEYS, Exposure, contract, host_record
from orderflow_infra.security import SecurityGroups, SecurityGroupsArgs


def build(cfg: StackConfig, stack: str) -> dict[str, pulumi.Output[Any]]:
    """Declare every resource for ``cfg``; return the outputs to export, keyed by CONTRACT_KEYS."""
    provider = aws.Provider(
        "aws",
        region=cfg.region,
        default_tags=aws.ProviderDefaultTagsArgs(
            tags={"Project": "orderflow", "Stack": stack, **cfg.tags}
        ),
    )
    opts = pulumi.ResourceOptions(providers=[provider])

    network = Network(
        "orderflow",
        NetworkArgs(region=cfg.region, az_count=cfg.az_count, nat_gateway=cfg.nat_gateway),
        opts,
    )
    groups = SecurityGroups(
        "orderflow",
        SecurityGroupsArgs(
            vpc_id=network.vpc.id,
            allowed_cidrs=cfg.allowed_cidrs,
            public_dashboard=cfg.public_dashboard,
            public_console=cfg.public_console,
            ssh_enabled=cfg.ssh_enabled,
        ),
        opts,
    )
    identity = InstanceIdentity(
        "orderflow", InstanceIdentityArgs(ssh_public_key=cfg.ssh_public_key), opts
    )
    kafka = KafkaCluster(
        "kafka",
        KafkaClusterArgs(
            broker_count=cfg.broker_count,
            instance_type=cfg.kafka_instance_type,
            data_volume_gb=cfg.data_volume_gb,
            subnets=network.private_subnets,
            security_group_id=groups.broker.id,
            instance_profile=identity.profile.name,
            key_name=identity.key_name,
        ),
        opts,
    )
    apps = AppHosts(
        "app",
        AppHostsArgs(
            app_count=cfg.app_count,
            instance_type=cfg.app_instance_type,
            subnets=network.public_subnets if cfg.public_access else network.private_subnets,
            security_group_id=groups.app.id,
            instance_profile=identity.profile.name,
            public_ip=cfg.public_access,
            key_name=identity.key_name,
        ),
        opts,
    )

    records = [
        pulumi.Output.all(
            n.instance.id,
            n.instance.private_ip,
            n.instance.public_ip,
            n.instance.availability_zone,
            n.data_volume.id,
        ).apply(
            lambda v, n=n: host_record(n.name, "kafka", v[0], v[1], v[2], v[3], n.node_id, v[4])
        )
        for n in kafka.nodes
    ] + [
        pulumi.Output.all(
            h.instance.id, h.instance.private_ip, h.instance.public_ip, h.instance.availability_zone
        ).apply(lambda v, h=h: host_record(h.name, "app", v[0], v[1], v[2], v[3]))
        for h in apps.hosts
    ]
    exposure = Exposure(cfg.public_dashboard, cfg.public_console, cfg.ssh_enabled)
    outputs = pulumi.Output.all(*records).apply(
        lambda hosts: contract(cfg.region, list(hosts), exposure)
    )
    return {key: outputs.apply(lambda o, key=key: o[key]) for key in CONTRACT_KEYS}
