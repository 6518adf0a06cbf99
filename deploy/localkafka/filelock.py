"""An exclusive lock on a file, for caches that several deploy steps may build at once.

pyinfra prepares its hosts concurrently in gevent greenlets of one process (``pyinfra_cli``
monkey-patches the standard library). A blocking ``flock`` there is a real system call that
stops every greenlet, the lock's holder included: the holder's subprocess has exited but
nobody is left to reap it, and the deploy hangs for good. So the lock is taken without
blocking, and the wait is a (patched, cooperative) ``time.sleep`` between tries. The lock also
excludes other processes (a test run and a deploy sharing the cache).
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path

POLL_S = 0.2


class LockTimeoutError(TimeoutError):
    """The lock stayed taken for longer than the wait allowed."""


@contextlib.contextmanager
def exclusive(path: Path, timeout_s: float, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the ``with`` body;
    raise ``LockTimeoutError`` naming ``what`` if it cannot be had within ``timeout_s``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    with path.open("w") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(
                        f"{what}: {path} stayed locked for over {timeout_s:.0f} s"
                    ) from None
                time.sleep(POLL_S)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
