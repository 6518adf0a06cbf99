"""Kafka brokers: one KRaft node (broker + controller) per host, from files/kafka-compose.yaml.

The cluster id (``kafka_cluster_id``) comes from the stack outputs: deploy/cloud.sh generates one
per stack on its first ``up`` and keeps it in the stack's config (every node's data dir is
formatted with it, so it never changes afterwards).
"""

# How each node runs: "docker" (the apache/kafka image, deploy/files/kafka-compose.yaml) or
# "jars" (the Apache Kafka jars from this machine's cache and a systemd unit; no Docker).
kafka_runtime = "docker"
kafka_image = "apache/kafka:4.1.1"
# The image's digest next to its tag (the deploy then runs kafka_image@digest): the multi-arch
# index digest, from a machine with registry access, e.g.
#   docker buildx imagetools inspect apache/kafka:4.1.1   (its "Digest:" line)
# None pulls by tag only. Not filled in here: no registry is reachable where this was written.
kafka_image_digest = None
kafka_heap_size = "1g"
# Rolling restart: how long one broker may take to serve again with every partition in sync
# before the deploy stops (and leaves the remaining brokers untouched).
kafka_rolling_timeout = 900
kafka_rolling_poll = 5

# The compose project lives here; /var/lib/kafka is the mount point of the EBS data volume.
kafka_home = "/opt/kafka"
kafka_mount = "/var/lib/kafka"
kafka_data_dir = "/var/lib/kafka/data"
kafka_filesystem_label = "kafka-data"
# The jars runtime: the JRE package and the unprivileged user the node runs as.
kafka_java_package = "openjdk-17-jre-headless"
kafka_user = "kafka"
# The apache/kafka image runs as `appuser`, uid/gid 1000; its data dir must belong to it.
kafka_container_uid = 1000
