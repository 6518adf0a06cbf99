"""``python -m deploy.testhosts``: boot test hosts by hand, print how to reach them, stop them.

sudo .venv/bin/python -m deploy.testhosts up --hosts 4   # Ctrl-C stops them all
sudo .venv/bin/python -m deploy.testhosts purge          # remove what a killed run left
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from deploy.testhosts import TestHostError
from deploy.testhosts.lab import Lab
from deploy.testhosts.rootfs import ensure_rootfs

STATE_DIR = Path("/run/orderflow-testhosts")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.testhosts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR, help="keys and host trees")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("rootfs", help="build the cached Debian 12 root file system")
    up = commands.add_parser("up", help="boot hosts and keep them until Ctrl-C")
    up.add_argument("--hosts", type=int, default=1, help="how many (named host-1..N)")
    commands.add_parser("purge", help="remove every host, namespace and mount of the lab")
    args = parser.parse_args(argv)
    try:
        if args.command == "rootfs":
            print(ensure_rootfs())
        elif args.command == "purge":
            Lab(args.state_dir).purge()
        else:
            with Lab(args.state_dir) as lab:
                for index in range(1, args.hosts + 1):
                    host = lab.start(f"host-{index}", index)
                    print(" ".join(lab.ssh_argv(host)), flush=True)
                print("Ctrl-C stops every host", flush=True)
                signal.sigwait({signal.SIGINT, signal.SIGTERM})
    except TestHostError as exc:
        print(f"testhosts: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(main())
