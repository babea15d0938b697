"""The Dockerfile, its build context and the PostgreSQL init script keep secrets out (S4) and
privileges low; checked on the files, since building the image needs a Docker engine."""

from __future__ import annotations

import re
import tomllib

from tests.cluster.compose import REPO_ROOT, TEST_SECRETS

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
POSTGRES_INIT = REPO_ROOT / "deploy" / "postgres" / "initdb" / "10-trainq-app-role.sql"
#: What the build context may contain: what `pip install .` needs, nothing else.
BUILD_INPUTS = {"pyproject.toml", "README.md", "LICENSE"}
#: What deploy/offline-images.sh adds: host-made wheels and the requirements lister.
OFFLINE_BUILD_INPUTS = {"wheelhouse", "deploy/images/requirements.py"}


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (keyword.upper(), arguments.strip())
        for keyword, _, arguments in (line.partition(" ") for line in lines)
        if keyword and not keyword.startswith("#")
    ]


def dockerignore_patterns() -> list[str]:
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def installed_packages() -> set[str]:
    """Top-level folders whose code pyproject.toml installs (its setuptools ``packages``, each
    mapped through ``package-dir``: ``trainq`` is built from ``api_cli/sdk``)."""
    setuptools = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir: dict[str, str] = setuptools.get("package-dir", {})
    folders = set()
    for package in setuptools["packages"]:
        top = package.split(".")[0]
        folders.add(package_dir.get(top, top).split("/")[0])
    return folders


def test_the_image_bakes_in_no_secret() -> None:
    text = DOCKERFILE.read_text()
    for secret in TEST_SECRETS.values():
        assert secret not in text
    for keyword, arguments in instructions():
        if keyword in {"ENV", "ARG"}:
            assert not re.search(r"PASSWORD|SECRET|TOKEN|_AUTH|_URL", arguments, re.IGNORECASE), (
                f"{keyword} {arguments}: credentials come from the environment at run time"
            )
        if keyword in {"COPY", "ADD"}:
            assert ".env" not in arguments


def test_the_image_runs_as_a_non_root_user() -> None:
    users = [arguments for keyword, arguments in instructions() if keyword == "USER"]

    assert users, "the Dockerfile must set USER"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_the_image_installs_fashion_mnist_from_debian_and_points_trainq_at_it() -> None:
    runs = " ".join(arguments for keyword, arguments in instructions() if keyword == "RUN")
    envs = " ".join(arguments for keyword, arguments in instructions() if keyword == "ENV")

    assert "apt-get install" in runs
    assert "dataset-fashion-mnist" in runs
    assert "TRAINQ_DATA_DIR=/usr/share/datasets/fashion-mnist" in envs


def test_the_image_installs_flower_by_default_and_the_gpu_extra_on_request() -> None:
    args = [arguments for keyword, arguments in instructions() if keyword == "ARG"]

    assert "TRAINQ_EXTRAS=flower" in args


def test_the_build_context_admits_only_what_pip_needs() -> None:
    patterns = dockerignore_patterns()
    admitted = {pattern.removeprefix("!").strip("/") for pattern in patterns if pattern[0] == "!"}

    assert patterns[0] == "*", "start from 'exclude everything' so .env, .git, *.db stay out"
    assert admitted <= BUILD_INPUTS | OFFLINE_BUILD_INPUTS | installed_packages()


def test_the_build_context_admits_every_package_pyproject_installs() -> None:
    admitted = {line.removeprefix("!").strip("/") for line in dockerignore_patterns()}

    assert {"pyproject.toml"} | installed_packages() <= admitted


def test_the_postgres_init_script_reads_the_app_password_from_the_environment() -> None:
    sql = POSTGRES_INIT.read_text()

    assert r"\getenv app_password POSTGRES_APP_PASSWORD" in sql
    assert "PASSWORD :'app_password'" in sql
    assert not re.search(r"PASSWORD\s+'", sql, re.IGNORECASE), "no literal password"


def test_the_app_role_gets_data_privileges_only() -> None:
    grants = re.findall(r"GRANT ([A-Z, ]+) ON", POSTGRES_INIT.read_text())
    privileges = {word.strip() for grant in grants for word in grant.split(",")}

    assert privileges == {"CONNECT", "USAGE", "SELECT", "INSERT", "UPDATE", "DELETE"}
