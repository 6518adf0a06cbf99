"""Kafka brokers: one KRaft node (broker + controller) per host, from files/kafka-compose.yaml.

The cluster id must stay the same for the life of the cluster (every node's data dir is formatted
with it). Generate your own with ``kafka-storage.sh random-uuid`` before the first deploy if you
like; never change it afterwards.
"""

# How each node runs: "docker" (the apache/kafka image, deploy/files/kafka-compose.yaml) or
# "jars" (the Apache Kafka jars from this machine's cache and a systemd unit; no Docker).
kafka_runtime = "docker"
kafka_image = "apache/kafka:4.1.1"
kafka_cluster_id = "ZljhLFr_RvuBvx_LI3XmUg"
kafka_heap_size = "1g"

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
