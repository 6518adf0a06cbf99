"""Kafka hosts, ``kafka_runtime: jars``: the Apache Kafka jars and a systemd unit, no Docker.

The jars are the ones ``orderflow kafka`` runs locally, uploaded from this machine's cache
(fetched from Maven Central first if needed); the node runs as the unprivileged ``kafka`` user
with its log on the data volume path. Settings shared with the local cluster and the compose
file come from ``deploy.localkafka.config.broker_settings``.

``kafka_security: sasl_ssl``: the listener, TLS, SASL and authorizer keys come from
``deploy.localkafka.broker_security`` as for ``orderflow kafka up --secure`` (via
``deploy.tasks.security``); the node's key and the CA are uploaded to ``/etc/kafka/tls`` and the
settings file (it holds the broker user's password) is 0600, all owned by the kafka user; the
SCRAM users are created when the storage is formatted, from a 0600 ``@file`` removed right after.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.facts.server import Command
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from deploy.localkafka.config import broker_settings
from deploy.localkafka.jars import ensure_jars, kafka_version
from deploy.tasks import packages, security

DEPLOY_DIR = Path(__file__).resolve().parent.parent
PROPERTIES = "/etc/kafka/server.properties"
LOG4J_CONFIG = "/etc/kafka/log4j2.properties"
SCRAM_FORMAT_FILE = "/etc/kafka/scram-users.args"
ADMIN_PROPERTIES = "/etc/kafka/admin.properties"
# Each admin call of the rolling restart's wait gives up after this (Kafka's default is 60 s).
ADMIN_TIMEOUT_MS = 10_000


def jars_broker(*, quorum_voters: str) -> None:
    """One KRaft node (broker + controller) of the jars runtime on the current host."""
    data = host.data
    user = data.kafka_user
    version = kafka_version()
    jars_dir = f"{data.kafka_home}/kafka-{version}/jars"

    packages.install([data.kafka_java_package], name="Install Java for Kafka")
    server.group(name="Create the kafka system group", group=user, system=True)
    # No login shell, no password, no SSH keys; it owns only the data directory.
    server.user(
        name="Create the kafka system user",
        user=user,
        group=user,
        system=True,
        home=data.kafka_mount,
        shell="/usr/sbin/nologin",
        create_home=False,
        # Its home is the data mount point, root-owned: pyinfra must not chown it every run.
        ensure_home=False,
    )
    files.directory(
        name="Create the Kafka data directory",
        path=data.kafka_data_dir,
        user=user,
        group=user,
        mode="750",
    )
    jars = files.sync(
        name=f"Upload the Kafka {version} jars",
        src=str(ensure_jars()),
        dest=jars_dir,
        user="root",
        group="root",
        mode="644",
        dir_mode="755",
        delete=True,
    )
    files.directory(
        name="Create the Kafka settings directory",
        path="/etc/kafka",
        user="root",
        group=user,
        mode="750",
    )
    address = data.private_ip
    secured = security.secured(data)
    tls_uploads = _broker_tls(user) if secured else []
    properties = files.template(
        name="Render this node's Kafka settings",
        src=str(DEPLOY_DIR / "templates" / "kafka-server.properties.j2"),
        dest=PROPERTIES,
        # Secured, it holds the broker user's password: the kafka user's alone.
        user=user if secured else "root",
        group=user,
        mode="600" if secured else "640",
        properties={
            "node.id": data.kafka_node_id,
            "controller.quorum.voters": quorum_voters,
            "listeners": (
                f"PLAINTEXT://{address}:{data.kafka_client_port},"
                f"CONTROLLER://{address}:{data.kafka_controller_port}"
            ),
            "advertised.listeners": (
                f"PLAINTEXT://{address}:{data.kafka_client_port},"
                f"CONTROLLER://{address}:{data.kafka_controller_port}"
            ),
            "log.dirs": data.kafka_data_dir,
            **broker_settings(data.kafka_replication_factor, data.kafka_min_isr),
            **(security.broker_properties(data) if secured else {}),
        },
    )
    log4j = files.put(
        name="Upload Kafka's logging settings",
        src=str(DEPLOY_DIR / "files" / "kafka-log4j2.properties"),
        dest=LOG4J_CONFIG,
        user="root",
        group=user,
        mode="640",
    )
    if host.get_fact(File, path=f"{data.kafka_data_dir}/meta.properties") is None:
        format_command = (
            f"runuser -u {user} -- /usr/bin/java -Dlog4j2.configurationFile={LOG4J_CONFIG} "
            f"-cp '{jars_dir}/*' kafka.tools.StorageTool format --ignore-formatted "
            f"-t {data.kafka_cluster_id} -c {PROPERTIES}"
        )
        if secured:
            # The SCRAM users live in the metadata log: created at format time, as locally.
            # The tool reads their passwords from an @file, never from its command line.
            files.put(
                name="Upload the SCRAM users for the first format",
                src=StringIO(security.scram_format_file(data)),
                dest=SCRAM_FORMAT_FILE,
                user=user,
                group=user,
                mode="600",
            )
            server.shell(
                name="Format this node's Kafka storage with its SCRAM users "
                "(once: an existing log is never touched)",
                commands=[
                    f"{format_command} @{SCRAM_FORMAT_FILE}; rc=$?; rm -f {SCRAM_FORMAT_FILE}; "
                    "exit $rc"
                ],
            )
        else:
            server.shell(
                name="Format this node's Kafka storage (once: an existing log is never touched)",
                commands=[format_command],
            )
    unit = files.template(
        name="Install the kafka.service unit",
        src=str(DEPLOY_DIR / "templates" / "kafka.service.j2"),
        dest="/etc/systemd/system/kafka.service",
        user="root",
        group="root",
        mode="644",
        version=version,
        node_id=data.kafka_node_id,
        kafka_user=user,
        heap_size=data.kafka_heap_size,
        log4j_config=LOG4J_CONFIG,
        jars_dir=jars_dir,
        properties=PROPERTIES,
        data_dir=data.kafka_data_dir,
    )
    systemd.daemon_reload(name="Reload systemd units (Kafka)", _if=unit.did_change)
    admin_settings = {
        "default.api.timeout.ms": ADMIN_TIMEOUT_MS,
        "request.timeout.ms": ADMIN_TIMEOUT_MS,
        **(security.admin_client_properties(data) if secured else {}),
    }
    admin = files.put(
        name="Upload the admin tools' client settings (the rolling restart's in-sync check)",
        src=StringIO("".join(f"{key}={value}\n" for key, value in admin_settings.items())),
        dest=ADMIN_PROPERTIES,
        user=user,
        group=user,
        mode="600",
    )
    # A running broker whose jars, settings or unit changed restarts one host at a time
    # (_serial): each first waits until no partition is under-replicated or unavailable,
    # restarts, and waits the same way again, so an acks=all producer (min ISR 2) never loses
    # its quorum. A broker not running yet just starts below (a lone broker cannot serve before
    # a controller quorum exists, so a first start must not wait).
    if host.get_fact(Command, "systemctl is-active kafka.service || true") == "active":
        in_sync = _in_sync_wait(jars_dir, address, user)
        server.shell(
            name="Restart Kafka, one node at a time, each once the cluster is in sync",
            commands=[
                in_sync,
                "systemctl restart kafka.service",
                f"timeout 300 bash -c 'until (exec 3<>/dev/tcp/{address}/{data.kafka_client_port})"
                " 2>/dev/null; do sleep 2; done'",
                in_sync,
            ],
            _if=any_changed(jars, properties, log4j, unit, admin, *tls_uploads),
            _serial=True,
        )
    systemd.service(name="Run Kafka at boot", service="kafka.service", running=True, enabled=True)


def _in_sync_wait(jars_dir: str, address: str, user: str) -> str:
    """Shell that waits (``kafka_rolling_timeout``) until the cluster reports no
    under-replicated and no unavailable partition, asking through this host's broker."""
    data = host.data
    # `\*`: a classpath wildcard for java, not a glob for the inner shell.
    topics = (
        f"runuser -u {user} -- /usr/bin/java -Xmx256m -cp {jars_dir}/\\* "
        "org.apache.kafka.tools.TopicCommand "
        f"--bootstrap-server {address}:{data.kafka_client_port} "
        f"--command-config {ADMIN_PROPERTIES} --describe"
    )
    # Each listed partition is a line with "Partition:"; anything else (a log line) is not.
    return (
        f"timeout {data.kafka_rolling_timeout} sh -c 'until "
        f'lagging="$({topics} --under-replicated-partitions 2>/dev/null)" && '
        f'missing="$({topics} --unavailable-partitions 2>/dev/null)" && '
        f'! printf "%s\\n%s\\n" "$lagging" "$missing" | grep -q "Partition:"; '
        f"do sleep {data.kafka_rolling_poll}; done'"
    )


def _broker_tls(user: str) -> list:
    """Upload this node's key and certificate chain and the CA (0600, the kafka user's)."""
    data = host.data
    files.directory(
        name="Create the Kafka TLS directory",
        path=security.BROKER_TLS_DIR,
        user=user,
        group=user,
        mode="700",
    )
    return [
        files.put(
            name="Upload this node's TLS key and certificate",
            src=str(security.keystore_file(data, data.kafka_node_id)),
            dest=security.BROKER_KEYSTORE,
            user=user,
            group=user,
            mode="600",
        ),
        files.put(
            name="Upload the Kafka CA certificate",
            src=str(security.ca_file(data)),
            dest=security.BROKER_TRUSTSTORE,
            user=user,
            group=user,
            mode="600",
        ),
    ]
