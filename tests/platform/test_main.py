"""platform/__main__.py as the Pulumi runtime runs it: config in, exports out, clean errors."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from typing import Any

import pulumi
import pytest
from orderflow_infra.outputs import CONTRACT_KEYS
from pulumi.runtime.settings import get_root_resource

from tests.platform.conftest import MOCKS, PLATFORM_DIR, quiet_pulumi_aws

MAIN = PLATFORM_DIR / "__main__.py"
CLUSTER_ID = "ZljhLFr_RvuBvx_LI3XmUg"


def run_main(config: dict[str, str]) -> dict[str, Any]:
    """Run __main__.py with ``orderflow:*`` config; return the resolved stack exports."""
    MOCKS.reset()
    config = {"kafkaClusterId": CLUSTER_ID, **config}
    pulumi.runtime.set_all_config({f"orderflow:{key}": value for key, value in config.items()})
    try:

        @pulumi.runtime.test
        def program() -> None:
            runpy.run_path(str(MAIN), run_name="__main__")

        with quiet_pulumi_aws():
            program()
        outputs = get_root_resource().outputs
        resolved: dict[str, Any] = {}

        @pulumi.runtime.test
        def collect() -> pulumi.Output[Any]:
            return pulumi.Output.all(**outputs).apply(resolved.update)

        collect()
        return resolved
    finally:
        pulumi.runtime.set_all_config({})


def test_mocks_are_the_ones_the_runtime_uses() -> None:
    # Guards the "nothing created" assertion below against a second, unused mocks object.
    run_main({"region": "eu-west-1", "brokerCount": "1"})
    assert MOCKS.resources


def test_main_exports_the_contract_keys() -> None:
    exported = run_main({"region": "eu-west-1", "brokerCount": "1"})
    assert set(exported) == set(CONTRACT_KEYS)
    assert exported["region"] == "eu-west-1"
    assert len([h for h in exported["hosts"] if h["role"] == "kafka"]) == 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"region": "eu-west-1", "brokerCount": "2"}, "brokerCount must be 1 (development) or 3"),
        (
            {"region": "eu-west-1", "allowedCidrs": '["10.0.0.0/33"]'},
            "allowedCidrs entry '10.0.0.0/33' is not a valid CIDR",
        ),
        (
            {"region": "eu-west-1", "publicDashboard": "true"},
            "allowedCidrs is required when publicDashboard is on",
        ),
        ({"region": "eu-west-1", "publicConsole": "true"}, "publicConsole was removed"),
        ({"region": "eu-west-1", "kafkaClusterId": ""}, "kafkaClusterId is required"),
        ({}, "region is required"),
    ],
)
def test_invalid_config_stops_with_a_one_line_run_error(config, message) -> None:
    with pytest.raises(pulumi.RunError) as info:
        run_main(config)
    assert str(info.value).startswith("invalid stack config: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert MOCKS.resources == [], "nothing may be created from an invalid config"


RUN_AS_PULUMI_DOES = """
import runpy, sys
import pulumi

class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        extra = {"privateIp": "10.42.128.11", "publicIp": "", "availabilityZone": "eu-west-1a",
                 "arn": f"arn:aws:mock:::{args.name}"}
        return f"{args.name}-id", {**args.inputs, **extra}

    def call(self, args):
        zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
        return {"id": "ami-1", "names": zones, "partition": "aws", "dnsSuffix": "amazonaws.com",
                "accountId": "123456789012", "insecureValue": "ami-1",
                "instanceTypes": ["m7i.large"] * 3 + ["t3.medium"] * 3, "locations": zones * 2}

pulumi.runtime.set_mocks(Mocks(), project="orderflow", stack="dev", preview=False)

@pulumi.runtime.test
def program():
    runpy.run_path("platform", run_name="__main__")  # what Pulumi does with `main: platform/`

program()
import platform
assert hasattr(platform, "python_version"), "stdlib platform module was shadowed"
print("exported", sorted(pulumi.runtime.settings.get_root_resource().outputs))
"""


def test_program_directory_runs_the_way_pulumi_runs_it() -> None:
    # A fresh interpreter: no conftest sys.path tweak, cwd = repo root (holds platform/).
    config = {"orderflow:region": "eu-west-1", "orderflow:kafkaClusterId": CLUSTER_ID}
    env = {**os.environ, "PULUMI_CONFIG": json.dumps(config)}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", RUN_AS_PULUMI_DOES],
        cwd=PLATFORM_DIR.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"exported {sorted(CONTRACT_KEYS)}" in result.stdout
