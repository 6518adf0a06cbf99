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
def _up_then_wait(project_directory: str, project_name: str, wait_commands: Sequence[str]):
    """``docker compose up -d``, then the commands that wait until the service is back: one
    operation, so that with ``_serial`` one host finishes both before the next begins."""
    yield from docker.compose._inner(project_directory=project_directory, project_name=project_name)
    yield from wait_commands


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

    With ``rolling_wait`` (a list, maybe empty) the start runs on one host at a time (pyinfra
    ``_serial``), each host running those commands after ``up -d`` before the next host
    starts: a rolling restart.
    """
    files.directory(
        name=f"Create the {subject} compose project directory",
        path=home,
        user="root",
        group="root",
        mode="755",
    )

    files.put(
        name=f"Upload the {subject} compose file",
        src=str(compose_file),
        dest=f"{home}/compose.yaml",
        user="root",
        group="root",
        mode="644",
    )

    files.template(
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
    start = f"Start {service} (recreated only when its compose file or settings changed)"
    if rolling_wait is not None:
        _up_then_wait(
            name=start,
            project_directory=home,
            project_name=project_name,
            wait_commands=list(rolling_wait),
            _serial=True,
        )
    else:
        docker.compose(name=start, project_directory=home, project_name=project_name)
