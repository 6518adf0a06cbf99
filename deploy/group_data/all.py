"""Defaults for every host. Group files (kafka.py, app.py) and host data override them."""

# pyinfra logs in as the AMI's user (ORDERFLOW_SSH_USER) and needs root for every operation.
_sudo = True

# Time sync: the Amazon Time Sync Service, reachable from every instance without egress.
chrony_servers = ["169.254.169.123"]

# First-boot waits (seconds): cloud-init finishing, and apt waiting for a dpkg lock held by
# unattended-upgrades.
cloud_init_timeout = 900
apt_lock_timeout = 600

# Base packages on every host.
base_packages = ["ca-certificates", "curl", "chrony"]

# Kafka's ports, known to brokers (listeners) and to every client host (readiness checks).
kafka_client_port = 9092
kafka_controller_port = 9093
