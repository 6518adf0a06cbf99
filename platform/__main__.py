"""orderflow on AWS: read the stack config once, validate it, build the stack, export the
output contract (see docs/cloud.md and deploy/stack-outputs.sample.json)."""

import pulumi
from orderflow_infra.config import DEFAULTS, REMOVED, ConfigError, parse_config
from orderflow_infra.program import build


def main() -> None:
    config = pulumi.Config()
    raw = {key: config.get(key) for key in [*DEFAULTS, *REMOVED]}
    raw["region"] = raw["region"] or pulumi.Config("aws").get("region")
    try:
        stack_config = parse_config(raw)
    except ConfigError as exc:
        raise pulumi.RunError(f"invalid stack config: {exc}") from None
    for key, value in build(stack_config, pulumi.get_stack()).items():
        pulumi.export(key, value)


main()
