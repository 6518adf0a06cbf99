"""deploy/localkafka/filelock: the cache lock under gevent, as pyinfra runs it (hosts prepared
at once in greenlets of one monkey-patched process), and against another process."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deploy.localkafka.filelock import LockTimeoutError, exclusive
from tests.deploy.conftest import REPO

# Three greenlets take the lock in turn; the holder runs a subprocess meanwhile, which yields to
# the others (as deploy/offline's `apt-get update` does). A blocking flock in a waiting greenlet
# would stop the whole process, the holder with it: the script would never print.
GREENLETS = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()
    import subprocess, sys
    import gevent
    from pathlib import Path
    from deploy.localkafka.filelock import exclusive

    lock, order = Path(sys.argv[1]), []

    def prepare(name):
        with exclusive(lock, 30, "test"):
            order.append(f"{name}+")
            subprocess.run(["sleep", "0.3"], check=True)
            order.append(f"{name}-")

    gevent.joinall([gevent.spawn(prepare, n) for n in "abc"], raise_error=True)
    print(" ".join(order))
    """
)


def test_greenlets_of_one_process_take_the_lock_in_turn(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", GREENLETS, str(tmp_path / "cache.lock")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    order = done.stdout.split()
    assert len(order) == 6
    # Never two holders at once: every take is followed by its own release.
    assert all(order[i][0] == order[i + 1][0] and order[i].endswith("+") for i in (0, 2, 4))


def test_a_lock_held_by_another_process_times_out_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "cache.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX);"
         " print('held', flush=True); time.sleep(30)", str(path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(LockTimeoutError, match=r"fetching things: .* over 1 s"),
            exclusive(path, 1.0, "fetching things"),
        ):
            pass
    finally:
        holder.kill()
        holder.wait(10)
    # Free again once its holder is gone, and held against others while taken.
    with (
        exclusive(path, 5.0, "fetching things"),
        path.open() as other,
        pytest.raises(BlockingIOError),
    ):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
