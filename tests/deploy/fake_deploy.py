"""Run deploy/deploy.py against @fake copies of the inventory's hosts; print what happened as JSON.

Runs in its own process because importing ``pyinfra_cli`` (which ``local.include`` does)
monkey-patches the standard library with gevent for the whole interpreter.

    python tests/deploy/fake_deploy.py SCENARIO.json

SCENARIO: {"responses": {matcher: response}, "host_responses": {host: {matcher: response}},
"data": {key: value}}: ``responses`` are the fake connector's ``fake_responses`` for every host,
``host_responses`` come first for one host (matchers starting with ``re:`` are regular
expressions); ``data`` overrides inventory data like ``pyinfra --data``. The inventory comes
from ORDERFLOW_PULUMI_OUTPUTS like a real run.

Output: {host: {"groups", "ops", "commands", "uploads"}}. ``ops`` lists each operation this host
ran, in order: name, ``position`` in the deploy's global order, ``changed``, its commands and its
``_sudo``/``_run_once`` arguments (the fake connector does not wrap commands in sudo itself).
``commands`` is every command run, facts included; ``uploads`` maps uploaded paths to content.
"""

from __future__ import annotations

import json
import re
import sys
from io import IOBase
from pathlib import Path

import pyinfra
import pyinfra_cli  # noqa: F401  (patches gevent in, as the CLI does, before anything runs)
from pyinfra.api import Config, Inventory, State
from pyinfra.api.connect import connect_all
from pyinfra.api.operations import run_ops
from pyinfra.api.state import StateStage
from pyinfra.connectors.fake import FakeConnector
from pyinfra.context import ctx_config, ctx_inventory, ctx_state
from pyinfra_cli.inventory import make_inventory_from_files
from pyinfra_cli.util import load_deploy_file

REPO = Path(__file__).resolve().parents[2]
UPLOADS: dict[str, dict[str, str]] = {}


def _record_put_file(self, filename_or_io, remote_filename, *args, **kwargs) -> bool:
    if isinstance(filename_or_io, IOBase) or hasattr(filename_or_io, "read"):
        filename_or_io.seek(0)
        content = filename_or_io.read()
        content = content.decode() if isinstance(content, bytes) else content
    else:
        content = Path(filename_or_io).read_text(errors="replace")
    UPLOADS.setdefault(self.host.name, {})[remote_filename] = content
    return True


def _matchers(responses: dict) -> dict:
    return {
        (re.compile(key[3:]) if key.startswith("re:") else key): value
        for key, value in responses.items()
    }


def _answers(own: dict, common: dict) -> dict:
    return {**own, **{key: value for key, value in common.items() if key not in own}}


def _fake_inventory(real: Inventory, scenario: dict) -> Inventory:
    common = scenario.get("responses", {})
    per_host = scenario.get("host_responses", {})
    groups = {}
    for group in ("kafka", "app"):
        # The first matching matcher wins: a host's own answers go first and win over common ones.
        groups[group] = (
            [
                (
                    f"@fake/{host.name}",
                    {
                        **real.get_host_data(host.name),
                        "fake_responses": _matchers(
                            {**per_host.get(host.name, {})}
                            | {
                                k: v
                                for k, v in common.items()
                                if k not in per_host.get(host.name, {})
                            }
                        ),
                        "fake_delay": 0,
                        "fake_delay_jitter": 0,
                    },
                )
                for host in real.get_group(group)
            ],
            real.get_group_data(group),
        )
    names = [name for hosts, _ in groups.values() for name, _ in hosts]
    return Inventory((names, real.get_data()), override_data=scenario.get("data", {}), **groups)


def main(scenario_path: str) -> None:
    scenario = json.loads(Path(scenario_path).read_text())
    FakeConnector.put_file = _record_put_file

    pyinfra.is_cli = True
    state = State(check_for_changes=True)
    state.cwd = str(REPO)
    config = Config()
    ctx_state.set(state)
    ctx_config.set(config)

    real = make_inventory_from_files(str(REPO / "deploy" / "inventory.py"), cwd=str(REPO))
    inventory = _fake_inventory(real, scenario)
    ctx_inventory.set(inventory)
    state.init(inventory, config)
    state.set_stage(StateStage.Connect)
    connect_all(state)
    state.set_stage(StateStage.Prepare)
    load_deploy_file(state, str(REPO / "deploy" / "deploy.py"))
    state.set_stage(StateStage.Execute)
    run_ops(state)
    state.set_stage(StateStage.Disconnect)

    report = {}
    for host in inventory:
        ops = []
        for position, op_hash in enumerate(state.get_op_order()):
            if op_hash not in state.ops[host]:
                continue
            op_data = state.get_op_data_for_host(host, op_hash)
            meta = op_data.operation_meta
            ops.append(
                {
                    "name": sorted(state.op_meta[op_hash].names)[0],
                    "position": position,
                    "changed": meta.did_change() if meta.is_complete() else None,
                    "sudo": op_data.global_arguments["_sudo"],
                    "run_once": state.op_meta[op_hash].global_arguments["_run_once"],
                    "serial": state.op_meta[op_hash].global_arguments["_serial"],
                    "commands": [str(command) for command in (meta._commands or [])],
                }
            )
        report[host.name.removeprefix("@fake/")] = {
            "groups": sorted(set(host.groups)),
            "ops": ops,
            "commands": host.connector.executed_commands,
            "uploads": UPLOADS.get(host.name, {}),
        }
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
