"""Configure the VMs created by `pulumi up`: Kafka on the `kafka` group, orderflow on `app`.

    pyinfra deploy/inventory.py deploy/deploy.py

Each role is one file under tasks/; the inventory and group_data/ hold every variable; templates/
hold every generated file. Kafka tasks come first in this file, so pyinfra finishes them on all
brokers before any app host starts (it runs operations in file order across hosts).
"""

from pyinfra import host, local

local.include("./tasks/common.py")
local.include("./tasks/docker.py")

if "kafka" in host.groups:
    local.include("./tasks/kafka.py")

if "app" in host.groups:
    local.include("./tasks/app.py")
    local.include("./tasks/console.py")
