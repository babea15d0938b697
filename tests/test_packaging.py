"""The wheel holds every package, and the Python API is installed under the name `trainq`."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setuptools_config() -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    tool: dict[str, object] = config["tool"]["setuptools"]
    return tool


def test_every_package_of_the_source_tree_is_listed_for_the_wheel() -> None:
    # The package list is explicit (a find directive cannot map api_cli/sdk to `trainq`), so a new
    # package would silently be left out of the wheel: this test says which one.
    listed = set(setuptools_config()["packages"])  # type: ignore[call-overload]
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("api_cli", "worker", "storage")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


def test_the_python_api_package_is_installed_as_trainq() -> None:
    config = setuptools_config()
    assert config["package-dir"] == {"trainq": "api_cli/sdk"}
    assert "trainq" in config["packages"]  # type: ignore[operator]
    assert (ROOT / "api_cli" / "sdk" / "py.typed").exists()
