"""Wire the components into one stack and compute the output contract."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from orderflow_infra.apps import AppHosts, AppHostsArgs
from orderflow_infra.config import StackConfig
from orderflow_infra.credentials import KafkaSecrets, KafkaSecretsArgs
from orderflow_infra.dashboard import PublicDashboard, PublicDashboardArgs
from orderflow_infra.identity import HOST_CLASSES, InstanceIdentity, InstanceIdentityArgs
from orderflow_infra.kafka import KafkaCluster, KafkaClusterArgs
from orderflow_infra.network import Network, NetworkArgs
from orderflow_infra.outputs import CONTRACT_KEYS, Exposure, KafkaAccess, contract, host_record
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
        NetworkArgs(
            region=cfg.region,
            az_count=cfg.az_count,
            nat_gateway=cfg.nat_gateway,
            instance_types=(cfg.kafka_instance_type, cfg.app_instance_type),
            ui_public=cfg.ssh_enabled,
        ),
        opts,
    )
    groups = SecurityGroups(
        "orderflow",
        SecurityGroupsArgs(
            vpc_id=network.vpc.id,
            allowed_cidrs=cfg.allowed_cidrs,
            public_dashboard=cfg.public_dashboard,
            ssh_enabled=cfg.ssh_enabled,
        ),
        opts,
    )
    secrets = KafkaSecrets("kafka", KafkaSecretsArgs(stack=stack, region=cfg.region), opts)
    identity = InstanceIdentity(
        "orderflow",
        InstanceIdentityArgs(
            stack=stack,
            region=cfg.region,
            ssh_public_key=cfg.ssh_public_key,
            host_policies={c: secrets.read_policy(c) for c in HOST_CLASSES},
        ),
        opts,
    )
    kafka = KafkaCluster(
        "kafka",
        KafkaClusterArgs(
            broker_count=cfg.broker_count,
            instance_type=cfg.kafka_instance_type,
            data_volume_gb=cfg.data_volume_gb,
            subnets=network.private_subnets,
            security_group_id=groups.broker.id,
            instance_profile=identity.profiles["kafka"].name,
            key_name=identity.key_name,
            depends_on=(*identity.ready["kafka"], *network.private_ready),
        ),
        opts,
    )
    apps = AppHosts(
        "app",
        AppHostsArgs(
            app_count=cfg.app_count,
            instance_type=cfg.app_instance_type,
            subnets=network.private_subnets,
            ui_subnet=network.ui_subnet,
            security_group_id=groups.app.id,
            ui_security_group_id=groups.ui.id,
            instance_profile=identity.profiles["app"].name,
            ui_instance_profile=identity.profiles["ui"].name,
            public_ip=cfg.ssh_enabled,
            key_name=identity.key_name,
            depends_on=(*identity.ready["app"], *network.private_ready),
            ui_depends_on=(*identity.ready["ui"], *network.ui_ready),
        ),
        opts,
    )
    dashboard_url: pulumi.Output[str] | None = None
    if cfg.public_dashboard:
        assert cfg.dashboard_certificate_arn and groups.lb  # parse_config guarantees both
        dashboard_url = PublicDashboard(
            "dashboard",
            PublicDashboardArgs(
                certificate_arn=cfg.dashboard_certificate_arn,
                vpc_id=network.vpc.id,
                subnets=network.public_subnets,
                security_group_id=groups.lb.id,
                ui_instance=apps.hosts[0].instance,
            ),
            opts,
        ).url

    records = [
        pulumi.Output.all(
            n.instance.id,
            n.network_interface.private_ip,
            n.instance.availability_zone,
            n.data_volume.id,
        ).apply(
            lambda v, n=n: host_record(n.name, "kafka", v[0], v[1], None, v[2], n.node_id, v[3])
        )
        for n in kafka.nodes
    ] + [
        pulumi.Output.all(
            h.instance.id,
            h.instance.private_ip,
            h.eip.public_ip if h.eip else None,
            h.instance.availability_zone,
        ).apply(lambda v, h=h: host_record(h.name, "app", v[0], v[1], v[2], v[3]))
        for h in apps.hosts
    ]
    exposure = Exposure(ssh_enabled=cfg.ssh_enabled)
    outputs = pulumi.Output.all(
        pulumi.Output.all(*records),
        identity.session_document.name,
        dashboard_url,
        pulumi.Output.all(**secrets.arns),
        secrets.ca_certificate,
    ).apply(
        lambda v: contract(
            cfg.region,
            list(v[0]),
            exposure,
            v[1],
            cfg.kafka_cluster_id,
            dashboard_url=v[2],
            kafka=KafkaAccess(secret_arns=v[3], ca_certificate=v[4]),
        )
    )
    return {key: outputs.apply(lambda o, key=key: o[key]) for key in CONTRACT_KEYS}
