"""Configure the VMs created by `pulumi up`: Kafka on the `kafka` group, orderflow on `app`.

    pyinfra deploy/inventory.py deploy/deploy.py

Each role is one file under tasks/; the inventory and group_data/ hold every variable; templates/
hold every generated file.
"""

from pyinfra import host, inventory, local, state
from pyinfra.api.exceptions import DeployError

# The brokers form one cluster and the app hosts need all of them: never deploy a part.
_unreachable = [h.name for h in inventory if h not in state.activated_hosts]
if _unreachable:
    raise DeployError(f"cannot reach {', '.join(_unreachable)}: every host is needed, none changed")

local.include("./tasks/common.py")

# Docker only where a container runs: Kafka's docker runtime, Redpanda Console.
if ("kafka" in host.groups and host.data.kafka_runtime == "docker") or (
    "app" in host.groups and host.data.ui_host and host.data.redpanda_console
):
    local.include("./tasks/docker.py")

if "kafka" in host.groups:
    local.include("./tasks/kafka.py")

# On every host: the barrier between the brokers and their clients (see the task's docstring).
local.include("./tasks/cluster.py")

if "app" in host.groups:
    local.include("./tasks/app.py")
    if host.data.ui_host and host.data.redpanda_console:
        local.include("./tasks/console.py")
