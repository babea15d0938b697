"""Two "hosts" on one Docker engine (tests/cluster/live/two_hosts.py): the server services in one
compose project with docker-compose.tls.yml, the workers of deploy/worker-host/ in another, on a
network of their own that reaches the servers only through their published TLS ports. There the
README's commands work, a killed worker is taken over, and every way in without TLS or without a
password is refused.

The module starts its own two projects (its name sorts it before the package's shared cluster
starts, so the two never run side by side) and always ends with ``down -v`` of both.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from storage.records import RunStatus
from tests.cluster.compose import REPO_ROOT
from tests.cluster.live.live import (
    assert_steps_exactly,
    engine_problem,
    inspect,
    poll,
    report,
    run,
    wait_terminal,
)
from tests.cluster.live.test_readme_commands import (
    CLI_PREFIX,
    bash_block,
    printed_run_id,
    with_run_id,
)
from tests.cluster.live.test_worker_faults import CHUNK_STEPS
from tests.cluster.live.two_hosts import (
    WORKER_SECRETS,
    TlsServer,
    bridge_address,
    mounts_of,
    networks_of,
    probe_from,
    project_containers,
    published_ports,
    server_host,
    worker_host,
)

pytestmark = pytest.mark.compose

#: Killed past its first checkpoint (step 5,000), with most of it still to train elsewhere.
KILLED_RUN_STEPS = 30_000
KILLED_RUN = (
    *("--steps", str(KILLED_RUN_STEPS), "--chunk-steps", str(CHUNK_STEPS)),
    *("--checkpoint-every", "5000", "--lr", "0.05", "--momentum", "0.5", "--seed", "13"),
)

#: The two ways in that must work: the right password over TLS, verified against the CA.
ACCEPTED = ("redis: TLS, right password", "postgres: TLS, right password")
#: What each refused way in must be refused with (the server's answer, seen by the client).
REFUSED_WITH = {
    "redis: plain text, right password": r"ConnectionError|TimeoutError",
    "redis: TLS, no password": r"AuthenticationError|NOAUTH|Authentication required",
    "redis: TLS, wrong password": r"AuthenticationError|WRONGPASS|invalid username-password",
    "postgres: plain text, right password": r"pg_hba\.conf rejects connection .*no encryption",
    "postgres: TLS, no password": r"no password supplied",
    "postgres: TLS, wrong password": r"password authentication failed for user \"trainq_app\"",
    "direct: redis container": r"TimeoutError|timed out|No route|refused",
    "direct: postgres container": r"TimeoutError|timed out|No route|refused",
}


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """The server host, started, with two workers ready on the worker host (``.workers``);
    ``down -v`` of both after the module, whatever happened."""
    problem = engine_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    directory = Path(tmp_path_factory.mktemp("hosts"))
    (directory / "server").mkdir()
    (directory / "workers").mkdir()
    server = server_host(directory / "server", f"trainqserver{os.getpid()}", bridge_address())
    start = time.monotonic()
    try:
        server.start()
        started_s = time.monotonic() - start
        workers = worker_host(directory / "workers", f"trainqworkers{os.getpid()}", server)
        workers.up(workers=2)
        server.dashboard_page()  # it started while the workers did
        report(
            "two hosts: server (redis, postgres, migrate, dashboard; TLS) up, 2 workers ready",
            server_s=round(started_s, 1),
            wall_s=round(time.monotonic() - start, 1),
        )
        yield server
    finally:
        if server.workers is not None:
            server.workers.down(volumes=True)
        server.down(volumes=True)


def test_the_worker_host_shares_nothing_but_the_published_tls_ports(hosts: TlsServer) -> None:
    workers = hosts.workers
    assert workers is not None
    containers = workers.containers("worker")
    assert len(containers) == 2
    for container in containers:
        assert networks_of(container) == {f"{workers.project}_default"}
        assert mounts_of(container) == set(WORKER_SECRETS)  # no volume, no file of the server's
        env = inspect(container, "{{json .Config.Env}}")
        assert "PASSWORD" not in env and "://" not in env  # the URLs come as secret files only
    server_containers = project_containers(hosts.project)
    # tls-certs, which has exited, ran with no network at all
    assert set().union(*map(networks_of, server_containers)) == {
        f"{hosts.project}_default",
        "none",
    }
    published = {binding for c in server_containers for binding in published_ports(c)}
    assert published == {
        f"6379/tcp -> {hosts.address}:{hosts.redis_port}",
        f"5432/tcp -> {hosts.address}:{hosts.postgres_port}",
        f"8050/tcp -> 127.0.0.1:{hosts.variables['DASHBOARD_HOST_PORT']}",  # this host only
    }

    probed = probe_from(containers[0], hosts)
    outcomes = probed["outcomes"]
    report("two hosts over TLS: ways in from the worker host, seconds each", **probed["seconds"])
    assert set(outcomes) == {*ACCEPTED, *REFUSED_WITH}
    for name in ACCEPTED:
        assert outcomes[name] == "accepted", f"{name}: {outcomes[name]}"
    for name, pattern in REFUSED_WITH.items():
        assert re.search(pattern, outcomes[name]), f"{name}: {outcomes[name]}"


def test_the_readme_train_eval_and_sweep_commands_work_with_workers_on_the_other_host(
    hosts: TlsServer, tmp_path: Path
) -> None:
    workers = hosts.workers
    assert workers is not None
    hostnames = {inspect(c, "{{.Config.Hostname}}") for c in workers.containers("worker")}
    lines = bash_block(REPO_ROOT / "README.md", "## The cluster", "cp .env.example")
    commands = [line.split(CLI_PREFIX, 1)[1].split() for line in lines if CLI_PREFIX in line]
    assert [args[0] for args in commands] == ["train", "eval", "runs", "metrics"]

    # The first from the server host's cli service, as written; the rest from "a third host"
    # (this machine, through the published ports with the CA): quicker than a container each.
    start = time.monotonic()
    trained = hosts.cli(*commands[0])
    wall_s = time.monotonic() - start
    assert trained.returncode == 0, trained.stdout + trained.stderr
    run_id = printed_run_id(trained.stdout + trained.stderr)
    record = hosts.repository().get_run(run_id)
    assert record.status is RunStatus.SUCCEEDED and record.steps_done == 10_000
    assert record.worker_host in hostnames  # trained on the worker host
    assert_steps_exactly(hosts, run_id, 10_000)
    walls_s = {"train --wait (cli service)": round(wall_s, 2)}
    for args in commands[1:]:
        start = time.monotonic()
        result = hosts.host_trainq(*with_run_id(args, run_id))
        walls_s[" ".join(args[:2])] = round(time.monotonic() - start, 2)
        assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
        assert str(run_id) in result.stdout or "10000" in result.stdout, result.stdout
    evaluations = hosts.repository().list_evaluations(run_id)
    # The README's train draws its seed, and the seed's recipe lands between about 68 and 72 %
    # depending on it (0.6982 once in CI); chance is 10 %, so 0.6 still says it learned.
    assert evaluations and evaluations[-1].accuracy > 0.6

    # The README's sweep file, made small: three trials of 2,000 steps, ASHA from step 500.
    spec = yaml.safe_load(bash_block_yaml(REPO_ROOT / "README.md", "## Sweeps"))
    spec.update(run_cap=3, max_concurrent=2, val_size=5000)
    spec["parameters"]["steps"] = {"value": 2000}
    spec["early_terminate"]["min_steps"] = 500
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(spec))
    start = time.monotonic()
    swept = hosts.host_trainq("sweep", "start", str(sweep_file), "--wait", "--json")
    walls_s["sweep start --wait (3 trials)"] = round(time.monotonic() - start, 2)
    assert swept.returncode == 0, swept.stdout + swept.stderr
    sweep_id = int(json.loads(swept.stdout)["sweep_id"])
    trials = hosts.repository().list_runs(sweep_id=sweep_id)
    assert [t.status for t in trials] == [RunStatus.SUCCEEDED] * 3, [
        (t.id, t.status, t.error) for t in trials
    ]
    for trial in trials:
        assert trial.worker_host in hostnames
        assert_steps_exactly(hosts, trial.id, trial.steps_done)
    for sweep_args in (("sweep", "show", str(sweep_id)), ("sweep", "best", str(sweep_id))):
        result = hosts.host_trainq(*sweep_args)
        assert result.returncode == 0, f"{sweep_args}\n{result.stdout}\n{result.stderr}"
    report("two hosts over TLS: the README's commands", wall_s=walls_s)


def bash_block_yaml(markdown: Path, after_heading: str) -> str:
    """The first ```yaml block after ``after_heading``."""
    text = markdown.read_text().split(after_heading, 1)[1]
    found = re.search(r"```yaml\n(.*?)```", text, re.DOTALL)
    assert found, f"{markdown.name}: no yaml block after {after_heading!r}"
    return found.group(1)


def test_a_killed_worker_on_the_worker_host_is_taken_over_with_every_step_stored_once(
    hosts: TlsServer,
) -> None:
    run_id = hosts.submit(*KILLED_RUN)
    repository = hosts.repository()
    poll(
        lambda: repository.get_run(run_id).steps_done >= 6_000,
        timeout_s=180,
        what="run reaches step 6,000",
    )
    victim = hosts.worker_of(run_id)
    before = repository.get_run(run_id)
    run(["docker", "kill", victim])
    killed = time.monotonic()
    at_kill = repository.get_run(run_id)
    assert at_kill.attempt == before.attempt and not at_kill.status.terminal, at_kill
    claimed_s = poll(
        lambda: hosts.repository().get_run(run_id).attempt > before.attempt,
        timeout_s=120,
        what="the other worker claims the run",
    )
    final = wait_terminal(hosts, [run_id])[0]
    assert final.status is RunStatus.SUCCEEDED, final.error
    assert hosts.worker_of(run_id) != victim
    assert_steps_exactly(hosts, run_id, KILLED_RUN_STEPS)
    report(
        "two hosts over TLS: docker kill of the worker training a run (lease 6 s)",
        recovery_s=round(claimed_s, 1),
        steps_at_kill=at_kill.steps_done,
        since_kill_s=round(time.monotonic() - killed, 1),
    )
