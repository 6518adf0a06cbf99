"""Defaults for every host. Group files (kafka.py, app.py) and host data override them."""

import os as _os

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

# Install from what this machine uploads (Debian packages, the wheelhouse, the Kafka jars)
# instead of the internet: True, False, or None to decide per host (no route to PyPI: offline).
offline = None
# Offline: apt sources lines of the hosts' release (default: Debian's mirrors for the
# host's own release; set it for other distributions).
offline_apt_sources = None

# Kafka's ports, known to brokers (listeners) and to every client host (readiness checks).
kafka_client_port = 9092
kafka_controller_port = 9093

# Kafka security: "plaintext" (default: PLAINTEXT inside the VPC) or "sasl_ssl" (SASL_SSL with
# SCRAM-SHA-512 for clients, TLS between controllers, ACLs per principal; kafka_runtime=jars).
# Read from the environment (ORDERFLOW_SECURITY) or set with `pyinfra --data`.
kafka_security = _os.environ.get("ORDERFLOW_SECURITY", "plaintext")
# Where the secured mode's certificates and SCRAM passwords live on this (the deploying)
# machine, outside the repository; None: ~/.config/orderflow/<kafka_cluster_id>/.
orderflow_secrets_dir = _os.environ.get("ORDERFLOW_SECRETS_DIR") or None
