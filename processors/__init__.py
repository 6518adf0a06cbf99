"""orderflow processors: the pure core, the Kafka adapters and the command line."""

__version__ = "0.1.0"
