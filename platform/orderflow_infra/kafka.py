"""The Kafka cluster's machines: one instance per broker, each with its own data volume."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from orderflow_infra.hosts import DATA_DEVICE, HostSpec, launch_instance


@dataclass(frozen=True)
class KafkaClusterArgs:
    """Broker ``i`` (1-based node id) lands in ``subnets[(i - 1) % len(subnets)]``: private
    subnets, one per AZ, so three brokers sit in three AZs."""

    broker_count: int
    instance_type: str
    data_volume_gb: int
    subnets: list[aws.ec2.Subnet]
    security_group_id: pulumi.Input[str]
    instance_profile: pulumi.Input[str]
    key_name: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class KafkaNode:
    """One broker host: its KRaft ``node_id``, instance and data volume."""

    name: str
    node_id: int
    instance: aws.ec2.Instance
    data_volume: aws.ebs.Volume


class KafkaCluster(pulumi.ComponentResource):
    """Brokers in private subnets with no public IP. Each gets an encrypted gp3 data volume
    attached at ``/dev/sdf`` (``/dev/nvme1n1`` on Nitro). The volume's AZ comes from the
    subnet, not the instance, so replacing an instance re-attaches the same data; ``pulumi
    destroy`` deletes it."""

    def __init__(
        self, name: str, args: KafkaClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orderflow:kafka:KafkaCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        spec = HostSpec.for_hosts(args, parent=self)
        self.nodes: list[KafkaNode] = []
        for node_id in range(1, args.broker_count + 1):
            host = f"kafka-{node_id}"
            subnet = args.subnets[(node_id - 1) % len(args.subnets)]
            instance = launch_instance(f"{name}-{node_id}", host, spec, subnet, False, self)
            volume = aws.ebs.Volume(
                f"{name}-{node_id}-data",
                availability_zone=subnet.availability_zone,
                size=args.data_volume_gb,
                type="gp3",
                encrypted=True,
                tags={"Name": f"orderflow-{host}-data", "orderflow:host": host},
                opts=child,
            )
            aws.ec2.VolumeAttachment(
                f"{name}-{node_id}-data",
                device_name=DATA_DEVICE,
                volume_id=volume.id,
                instance_id=instance.id,
                opts=child,
            )
            self.nodes.append(KafkaNode(host, node_id, instance, volume))

        self.register_outputs({"instance_ids": [node.instance.id for node in self.nodes]})
