"""Honest docs: every setting is documented, and the documented ones exist."""

from __future__ import annotations

import re
from pathlib import Path

from processors.settings import Settings

DOC = Path(__file__).parents[1] / "docs" / "configuration.md"


def test_every_setting_is_documented_and_no_other():
    documented = set(re.findall(r"`ORDERFLOW_([A-Z0-9_]+)`", DOC.read_text()))
    documented -= {"CONFIG", "NAME"}  # the config-file variable and the placeholder
    fields = {name.upper() for name in Settings.model_fields}
    assert fields - documented == set(), "settings missing from docs/configuration.md"
    assert documented - fields == set(), "docs/configuration.md names settings that do not exist"
