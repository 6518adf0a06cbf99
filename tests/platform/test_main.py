"""platform/__main__.py as the Pulumi runtime runs it: config in, exports out, clean errors."""

from __future__ import annotations

import runpy
from typing import Any

import pulumi
import pytest
from orderflow_infra.outputs import CONTRACT_KEYS
from pulumi.runtime.settings import get_root_resource

from tests.platform.conftest import MOCKS, PLATFORM_DIR, quiet_pulumi_aws

MAIN = PLATFORM_DIR / "__main__.py"


def run_main(config: dict[str, str]) -> dict[str, Any]:
    """Run __main__.py with ``orderflow:*`` config; return the resolved stack exports."""
    MOCKS.reset()
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
            {"region": "eu-west-1", "publicConsole": "true"},
            "allowedCidrs is required when publicConsole is on",
        ),
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
