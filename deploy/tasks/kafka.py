"""Kafka hosts: the EBS data volume, then one KRaft node.

``kafka_runtime: docker`` (default): deploy/files/kafka-compose.yaml, with an env file rendered
from the inventory per node: node id, this host's private IP (advertised and bound), the
controller voters of every Kafka host, the cluster id. ``kafka_runtime: jars``: the Kafka jars
and a systemd unit (tasks/kafka_jars.py). Without a ``data_volume_id`` (hosts you bring
yourself) the data stays on the root filesystem at ``kafka_mount``.

Boot order (docker runtime): Docker requires the data volume's mount, so after a reboot no
broker ever starts on an empty directory of the root disk. Changes to a running cluster roll:
one broker at a time, the next only once this one serves again and no partition is
under-replicated.
"""

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.server import Command, Users
from pyinfra.operations import files, server, systemd

from deploy.tasks.compose import compose_project, pinned_image
from deploy.tasks.kafka_jars import jars_broker

DEPLOY_DIR = Path(__file__).resolve().parent.parent
RUNTIMES = ("docker", "jars")
data = host.data

if data.kafka_runtime not in RUNTIMES:
    raise DeployError(
        f"kafka_runtime must be one of {', '.join(RUNTIMES)}, not {data.kafka_runtime!r}"
    )
quorum_voters = ",".join(
    f"{broker['node_id']}@{broker['private_ip']}:{data.kafka_controller_port}"
    for broker in data.kafka_hosts
)


def _data_volume(volume_id: str) -> None:
    # Nitro instances expose EBS volumes as NVMe disks; this link names the volume, not a slot.
    device = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_" + volume_id.replace("-", "")
    # Never format a volume that already holds a filesystem: that would erase the broker's log.
    if not host.get_fact(Command, f"blkid -o value -s TYPE {device} || true"):
        server.shell(
            name="Format the Kafka data volume",
            commands=[
                f"timeout 300 sh -c 'until [ -b {device} ]; do sleep 2; done'",
                f"blkid {device} || mkfs.ext4 -q -L {data.kafka_filesystem_label} {device}",
            ],
        )

    files.directory(
        name="Create the Kafka data volume mount point",
        path=data.kafka_mount,
        user="root",
        group="root",
        mode="755",
    )

    files.line(
        name="Mount the Kafka data volume at boot",
        path="/etc/fstab",
        line=f"^{device} ",
        replace=f"{device} {data.kafka_mount} ext4 defaults,noatime,nofail 0 2",
    )

    server.mount(
        name="Mount the Kafka data volume",
        path=data.kafka_mount,
        device=device,
        fs_type="ext4",
        options=["noatime"],
    )


if data.kafka_data_volume_id:
    _data_volume(data.kafka_data_volume_id)
else:
    files.directory(
        name="Create the Kafka data mount point (no data volume: on the root filesystem)",
        path=data.kafka_mount,
        user="root",
        group="root",
        mode="755",
    )


def _docker_broker() -> None:
    if data.kafka_data_volume_id:
        # Requires= and After= the mount unit: if the volume is missing (fstab says nofail, so
        # the boot goes on), Docker and with it the broker stay down instead of formatting a
        # fresh log on the root disk (the image formats an empty data directory by itself).
        docker_needs_mount = files.put(
            name="Make Docker require the Kafka data volume's mount",
            src=StringIO(f"[Unit]\nRequiresMountsFor={data.kafka_mount}\n"),
            dest="/etc/systemd/system/docker.service.d/10-orderflow-kafka-data.conf",
            user="root",
            group="root",
            mode="644",
        )

        systemd.daemon_reload(
            name="Reload systemd for Docker's mount requirement",
            _if=docker_needs_mount.did_change,
        )

    # The image runs as uid 1000; owning the directory by its local name keeps this idempotent.
    _uid = data.kafka_container_uid
    _owner = next(
        (
            (name, user["group"])
            for name, user in host.get_fact(Users).items()
            if user.get("uid") == _uid
        ),
        (str(_uid), str(_uid)),
    )
    files.directory(
        name="Create the Kafka data directory on the volume",
        path=data.kafka_data_dir,
        user=_owner[0],
        group=_owner[1],
        mode="750",
    )

    # A running broker whose settings changed is restarted one host at a time: each host first
    # waits until its broker serves with no partition under-replicated or unavailable, restarts it,
    # and waits again, so an acks=all producer (min ISR 2) never loses its quorum. A first start
    # needs no wait (nothing runs yet, and a lone broker cannot serve before a controller quorum).
    _running = host.get_fact(
        Command,
        "docker ps -q --filter label=com.docker.compose.project=orderflow-kafka "
        "--filter status=running 2>/dev/null || true",
    )
    _bootstrap = f"{data.private_ip}:{data.kafka_client_port}"
    _topics = (
        # The container's KAFKA_HEAP_OPTS is the broker's heap; the tool needs far less.
        f"docker compose --project-directory {data.kafka_home} -p orderflow-kafka exec -T "
        "-e KAFKA_HEAP_OPTS=-Xmx256m kafka "
        f"/opt/kafka/bin/kafka-topics.sh --bootstrap-server {_bootstrap} --describe"
    )
    in_sync = [
        f"timeout {data.kafka_rolling_timeout} sh -c 'until "
        f'out="$({_topics} --under-replicated-partitions 2>/dev/null)" && [ -z "$out" ] && '
        f'out="$({_topics} --unavailable-partitions 2>/dev/null)" && [ -z "$out" ]; '
        f"do sleep {data.kafka_rolling_poll}; done'"
    ]

    compose_project(
        home=data.kafka_home,
        project_name="orderflow-kafka",
        compose_file=DEPLOY_DIR / "files" / "kafka-compose.yaml",
        env_template=DEPLOY_DIR / "templates" / "kafka.env.j2",
        subject="Kafka",
        settings="this node's Kafka settings",
        service="the Kafka node",
        rolling_wait=in_sync if _running else None,
        kafka_home=data.kafka_home,
        kafka_image=pinned_image(data.kafka_image, data.kafka_image_digest, "kafka_image_digest"),
        node_id=data.kafka_node_id,
        cluster_id=data.kafka_cluster_id,
        private_ip=data.private_ip,
        client_port=data.kafka_client_port,
        controller_port=data.kafka_controller_port,
        quorum_voters=quorum_voters,
        replication_factor=data.kafka_replication_factor,
        min_isr=data.kafka_min_isr,
        data_dir=data.kafka_data_dir,
        heap_size=data.kafka_heap_size,
    )


if data.kafka_runtime == "jars":
    jars_broker(quorum_voters=quorum_voters)
else:
    _docker_broker()
