"""App hosts: the orderflow processors, the dashboard and Redpanda Console."""

orderflow_user = "orderflow"
orderflow_home = "/opt/orderflow"
orderflow_venv = "/opt/orderflow/venv"
orderflow_config_dir = "/etc/orderflow"
orderflow_env_file = "/etc/orderflow/orderflow.env"
orderflow_state_dir = "/var/lib/orderflow"

# systemd instances enabled by the deploy: orderflow-main@1..N, orderflow-retry@1..N.
orderflow_main_instances = 1
orderflow_retry_instances = 1

# A prebuilt wheel to install instead of building one from this checkout (path on this machine).
orderflow_wheel = None

# Extra ORDERFLOW_* settings for /etc/orderflow/orderflow.env (key without the prefix → value),
# e.g. {"PARTITIONS": 6, "MAX_ATTEMPTS": 5}. Bootstrap servers and replication factor come from
# the inventory.
orderflow_settings = {"LOG_FORMAT": "json", "PROCESSING_GUARANTEE": "exactly-once"}

dashboard_port = 8501
# The dashboard's own system user and state: it never runs as, or reads the state of, the
# processors' user.
dashboard_user = "orderflow-dashboard"
dashboard_state_dir = "/var/lib/orderflow-dashboard"
# Only when the dashboard is public (Pulumi publicDashboard): generated on the host at first deploy.
dashboard_secrets_file = "/etc/orderflow/dashboard-secrets.toml"

# Redpanda Console (a Docker container) on the UI host; False runs no Docker there.
redpanda_console = True
console_image = "docker.redpanda.com/redpandadata/console:v3.7.3"
# As kafka_image_digest (group_data/kafka.py): the index digest of console_image, or None.
console_image_digest = None
console_port = 8080
console_home = "/opt/redpanda-console"
