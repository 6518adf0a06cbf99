"""The Kafka cluster's machines: one instance per broker, each with its own network interface
(a private IP that survives a replacement) and its own data volume."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from orderflow_infra.hosts import DATA_DEVICE, HostSpec, Placement, launch_instance


@dataclass(frozen=True)
class KafkaClusterArgs:
    """Broker ``i`` (1-based node id) lands in ``subnets[(i - 1) % len(subnets)]``: private
    subnets, one per AZ, so three brokers sit in three AZs. ``depends_on``: what must exist
    before a broker boots (its role's policies, its egress route or the SSM endpoints)."""

    broker_count: int
    instance_type: str
    data_volume_gb: int
    subnets: list[aws.ec2.Subnet]
    security_group_id: pulumi.Input[str]
    instance_profile: pulumi.Input[str]
    key_name: pulumi.Input[str] | None = None
    depends_on: tuple[pulumi.Resource, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class KafkaNode:
    """One broker host: its KRaft ``node_id``, instance, network interface and data volume."""

    name: str
    node_id: int
    instance: aws.ec2.Instance
    network_interface: aws.ec2.NetworkInterface
    data_volume: aws.ebs.Volume


class KafkaCluster(pulumi.ComponentResource):
    """Brokers in private subnets with no public IP.

    What a broker keeps when its instance is replaced (new key, new image, ``--replace``): its
    name and node id (from its position), its private IP (the network interface outlives the
    instance, so the controller voter list stays valid) and its data (the volume's AZ comes from
    the subnet, not the instance). The old instance goes first, stopped before its volume is
    detached; ``pulumi destroy`` deletes the volumes too.
    """

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
            interface = aws.ec2.NetworkInterface(
                f"{name}-{node_id}",
                subnet_id=subnet.id,
                security_groups=[args.security_group_id],
                description=f"orderflow {host}: its private IP for the controller quorum",
                tags={"Name": f"orderflow-{host}", "orderflow:host": host},
                opts=child,
            )
            instance = launch_instance(
                f"{name}-{node_id}",
                host,
                spec,
                Placement(network_interface=interface, depends_on=args.depends_on),
                self,
            )
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
                # A mounted, busy volume can hang in "detaching"; a stopped instance cannot.
                stop_instance_before_detaching=True,
                # The volume attaches to one instance at a time: detach before re-attaching.
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
            )
            self.nodes.append(KafkaNode(host, node_id, instance, interface, volume))

        self.register_outputs({"instance_ids": [node.instance.id for node in self.nodes]})
