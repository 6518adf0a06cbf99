"""orderflow processors: the pure core, the Kafka adapters and the command line.

Handler authors raise ``TransientError`` (retry later) or ``PermanentError`` (dead-letter now).
"""

from processors.core.classify import PermanentError, TransientError

__version__ = "0.1.0"
__all__ = ["PermanentError", "TransientError", "__version__"]
