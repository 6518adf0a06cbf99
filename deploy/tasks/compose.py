"""One docker compose project on a host: its directory, compose file, `.env`, and `up -d`.

kafka.py and console.py each run one. A plain function, not a `pyinfra.api.deploy`: that
decorator would prefix every operation name with its own ("… | Compose project | Start …").
"""

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyinfra.api import operation
from pyinfra.api.exceptions import DeployError
from pyinfra.operations import docker, files
from pyinfra.operations.util import any_changed

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def pinned_image(image: str, digest: str | None, key: str) -> str:
    """``image`` (a tag) pinned to ``digest`` when one is set: ``repo:tag@sha256:…``. Docker then
    pulls exactly that content and refuses anything else; the tag stays for people to read.
    ``key`` names the setting in errors."""
    if digest is None:
        return image
    if "@" in image:
        raise DeployError(f"{key}: {image!r} already has a digest; set the tag only")
    if not _DIGEST.match(digest):
        raise DeployError(f"{key} {digest!r} is not a digest like sha256:<64 hex digits>")
    return f"{image}@{digest}"


@operation()
def _rolling_up(project_directory: str, project_name: str, in_sync: Sequence[str]):
    """Wait until the service is in sync, ``docker compose up -d``, wait again: one operation,
    so that with ``_serial`` one host finishes all three before the next host begins. The first
    wait also holds the next host back if the previous one never got back in sync (pyinfra goes
    on to the next host of a serial operation even when one failed)."""
    yield from in_sync
    yield from docker.compose._inner(project_directory=project_directory, project_name=project_name)
    yield from in_sync


def compose_project(
    *,
    home: str,
    project_name: str,
    compose_file: Path,
    env_template: Path,
    subject: str,
    settings: str,
    service: str,
    rolling_wait: Sequence[str] | None = None,
    **env: Any,
) -> None:
    """Run the compose project ``project_name`` from ``home`` on the current host.

    Uploads ``compose_file`` as ``home``/compose.yaml and renders ``env_template`` with ``env``
    to ``home``/.env (mode 600: it may hold secrets), both owned by root, then runs
    ``docker compose up -d`` there. Operation names: "Create the {subject} compose project
    directory", "Upload the {subject} compose file", "Render {settings}", "Start {service}
    (recreated only when its compose file or settings changed)".

    ``rolling_wait``, on hosts where the service already runs: commands that pass once the
    service is in sync. If the compose file or settings changed, a "Restart {service} one host
    at a time (its compose file or settings changed)" operation first runs on one host after the
    other (pyinfra ``_serial``): wait, ``up -d``, wait. The start above then finds it current.
    """
    files.directory(
        name=f"Create the {subject} compose project directory",
        path=home,
        user="root",
        group="root",
        mode="755",
    )

    compose_upload = files.put(
        name=f"Upload the {subject} compose file",
        src=str(compose_file),
        dest=f"{home}/compose.yaml",
        user="root",
        group="root",
        mode="644",
    )

    env_render = files.template(
        name=f"Render {settings}",
        src=str(env_template),
        # `.env` in the project directory: compose reads it for every command run there.
        dest=f"{home}/.env",
        user="root",
        group="root",
        mode="600",
        **env,
    )

    # Always invoked: compose recreates the container only when the resolved compose file or
    # .env changed, and starts it if it is down (which also recovers from a half-finished run).
    start = {
        "name": f"Start {service} (recreated only when its compose file or settings changed)",
        "project_directory": home,
        "project_name": project_name,
    }
    if rolling_wait is None:
        # Ordered before any rolling restart: a new broker (say, a replaced instance) joins
        # first, so the running ones can get back in sync before they are restarted.
        docker.compose(**start)
    else:
        _rolling_up(
            name=f"Restart {service} one host at a time (its compose file or settings changed)",
            project_directory=home,
            project_name=project_name,
            in_sync=list(rolling_wait),
            _serial=True,
            _if=any_changed(compose_upload, env_render),
        )
        docker.compose(**start)
