"""``python -m processors …`` is the ``orderflow`` command (used to start background services)."""

from processors.cli import main

main()
