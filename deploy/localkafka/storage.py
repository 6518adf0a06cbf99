"""KRaft storage of the local nodes: cluster ids, formatting, and checking a data dir is ours.

Uses Kafka's own ``kafka.tools.StorageTool`` from the same jars the broker runs.
"""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from deploy.localkafka.config import JIT_GC_OPTS, Node, meta_problem, parse_meta_properties
from processors.errors import LocalKafkaError

_UUID = re.compile(r"^[A-Za-z0-9_-]{22}$")
_TIMEOUT_S = 120


def _storage_tool(java: str, jars: Path, log4j_config: Path | None, *args: str) -> str:
    argv = [java, "-Xmx256m", *JIT_GC_OPTS, "-cp", f"{jars}/*"]
    if log4j_config is not None:
        argv.append(f"-Dlog4j2.configurationFile={log4j_config}")
    argv += ["kafka.tools.StorageTool", *args]
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalKafkaError(f"kafka StorageTool {args[0]} failed: {exc}") from None
    if result.returncode != 0:
        raise LocalKafkaError(
            f"kafka StorageTool {args[0]} failed: {_reason(result.stderr + result.stdout)}"
        )
    return result.stdout


def _reason(output: str) -> str:
    """The exception message of a Java failure, not its stack trace."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if re.search(r"(Exception|Error)\b.*:", line) and not line.startswith("at "):
            return line.removeprefix('Exception in thread "main" ')
    messages = [line for line in lines if not line.startswith("at ")]
    return messages[-1] if messages else "no output"


def random_cluster_id(java: str, jars: Path) -> str:
    """A new cluster id from ``StorageTool random-uuid``."""
    output = _storage_tool(java, jars, None, "random-uuid")
    for line in reversed(output.split()):
        if _UUID.match(line):
            return line
    raise LocalKafkaError(f"kafka StorageTool random-uuid printed no id: {output.strip()[:200]}")


def format_nodes(
    java: str,
    jars: Path,
    cluster_id: str,
    nodes: list[tuple[Path, Path]],
    arguments_file: Path | None = None,
) -> None:
    """Format each ``(server.properties, log4j2.properties)`` node with ``cluster_id``, in parallel.

    Static quorum (``controller.quorum.voters``), so no ``--standalone``/``--initial-controllers``.
    ``arguments_file``: more arguments, one per line (the SCRAM users: ``--add-scram …``), read
    by the tool itself (``@file``) so no password is on a command line.
    """
    if not nodes:
        return
    more = [f"@{arguments_file}"] if arguments_file is not None else []

    def one(paths: tuple[Path, Path]) -> None:
        properties, log4j = paths
        _storage_tool(java, jars, log4j, "format", "-t", cluster_id, "-c", str(properties), *more)

    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        for future in [pool.submit(one, paths) for paths in nodes]:
            future.result()


def private_file(path: Path, text: str) -> None:
    """Write a config file readable by its owner only (it may hold a password)."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


def needs_format(data_dir: Path, node: Node, cluster_id: str) -> bool:
    """True for an empty or missing data dir; False for one formatted for this node and cluster.

    Raises ``LocalKafkaError`` naming the dir when it holds anything else (a corrupt or foreign
    ``meta.properties``, or files without one).
    """
    meta_file = data_dir / "meta.properties"
    purge = "run `orderflow kafka down --purge` to delete the local cluster's data and start over"
    if not meta_file.exists():
        if data_dir.is_dir() and any(data_dir.iterdir()):
            raise LocalKafkaError(f"corrupt data directory {data_dir}: no meta.properties; {purge}")
        return True
    try:
        meta = parse_meta_properties(meta_file.read_text(errors="replace"))
    except OSError as exc:
        raise LocalKafkaError(f"cannot read {meta_file}: {exc}; {purge}") from None
    problem = meta_problem(meta, node, cluster_id)
    if problem:
        raise LocalKafkaError(
            f"corrupt data directory {data_dir}: meta.properties {problem}; {purge}"
        )
    return False
