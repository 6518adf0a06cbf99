"""Every host: wait until every broker serves clients, from this host.

It runs on all hosts, so pyinfra orders it after the last Kafka operation and before the first
app operation: topics are created and processors started only once the whole cluster is up. It
also proves that this host can reach every broker's client port.
"""

from pyinfra import host
from pyinfra.operations import server

server.shell(
    name="Wait until every broker serves clients",
    commands=[
        # The client port opens only once a broker has joined the quorum and is unfenced.
        "timeout 300 bash -c "
        f"'until (exec 3<>/dev/tcp/{broker['private_ip']}/{host.data.kafka_client_port}) "
        "2>/dev/null; do sleep 2; done'"
        for broker in host.data.kafka_hosts
    ],
)
