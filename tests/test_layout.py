"""The repository's shape: platform/ is Pulumi's program folder and never Python's `platform`."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import setuptools

ROOT = Path(__file__).resolve().parents[1]
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def stdlib_platform_file(cwd: Path, *extra_path: str) -> Path:
    code = "import platform, sys; platform.python_implementation(); print(platform.__file__)"
    argv = [sys.executable, "-c", code]
    env = {"PYTHONPATH": ":".join(extra_path)} if extra_path else {}
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return Path(out.stdout.strip()).resolve()


def test_platform_folder_is_not_a_package():
    assert not (ROOT / "platform" / "__init__.py").exists()
    assert (ROOT / "platform" / "__main__.py").is_file()
    assert (ROOT / "Pulumi.yaml").is_file()


def test_standard_platform_module_wins_under_pytest():
    import platform

    assert Path(platform.__file__).resolve().parent == STDLIB


def test_standard_platform_module_wins_from_the_repo_root_and_on_the_path():
    assert stdlib_platform_file(ROOT).parent == STDLIB
    assert stdlib_platform_file(ROOT, str(ROOT)).parent == STDLIB


def test_distribution_ships_only_the_import_roots():
    packages = setuptools.find_packages(
        where=str(ROOT), include=["processors*", "dashboard*", "deploy*"]
    )
    roots = {name.split(".")[0] for name in packages}
    assert roots == {"processors", "dashboard", "deploy"}
    assert not any(name.startswith("platform") for name in packages)


def test_wheel_contains_everything_the_commands_need(tmp_path):
    """The VM deploy installs this wheel: the dashboard and the compose file must be in it."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    [wheel] = tmp_path.glob("orderflow-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for needed in (
        "processors/cli/__init__.py",
        "processors/core/routing.py",
        "dashboard/app.py",
        "dashboard/views/dlq.py",
        "dashboard/.streamlit/config.toml",
        "deploy/localkafka/pom.xml",
        "deploy/files/kafka-compose.yaml",
    ):
        assert needed in names, needed
    assert not any(name.startswith(("platform/", "tests/")) for name in names)
