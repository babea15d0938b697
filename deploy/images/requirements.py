"""Print the requirements of trainq's image, one per line, from pyproject.toml alone.

    python3 deploy/images/requirements.py pyproject.toml flower > requirements.txt

Dependencies plus the named extras (comma-separated). Without the ``gpu`` extra, ``tensorflow`` is
replaced by ``tensorflow-cpu`` with the same version range: the same Python API without the CUDA
libraries, which makes the image about half the size. The Dockerfile and deploy/offline-images.sh
both use this, so the wheelhouse and the image agree.
"""

from __future__ import annotations

import re
import sys
import tomllib


def requirements(pyproject_path: str, extras_csv: str) -> list[str]:
    """The requirement strings for the dependencies plus ``extras_csv``."""
    with open(pyproject_path, "rb") as file:
        project = tomllib.load(file)["project"]
    extras = [name for name in extras_csv.split(",") if name]
    optional = project.get("optional-dependencies", {})
    lines = list(project["dependencies"]) + [req for name in extras for req in optional[name]]
    if "gpu" not in extras:
        lines = [re.sub(r"^tensorflow(?=[<>=!~ ]|$)", "tensorflow-cpu", line) for line in lines]
    return lines


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")))
