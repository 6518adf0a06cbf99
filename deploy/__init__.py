"""orderflow deployment: the local Kafka manager (``deploy.localkafka``) and the files the VM
deployment reuses (``deploy/files``)."""
