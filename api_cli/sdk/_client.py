"""The Python API: a :class:`Client` does what the CLI does, without a process per call.

The client is built from :class:`storage.Settings` and holds one repository and one dispatcher,
chosen once from the settings (``worker.cluster.publisher.dispatcher_for``): embedded, jobs run in a
thread of this process through the worker's own job code; with a broker, they are published for
``trainq worker`` processes over one reused broker connection. Nothing here imports Typer, Rich,
Celery (until the first publish) or TensorFlow (until an embedded job trains).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, overload

from api_cli.sdk import _arguments as check
from api_cli.sdk._datasets import DatasetMethods
from api_cli.sdk._maintenance import MaintenanceMethods
from api_cli.sdk._records import Metrics
from api_cli.sdk._run_management import RunManagementMethods
from api_cli.sdk._sweeps import SweepMethods
from storage import Settings
from storage.errors import RunNotFoundError
from storage.records import (
    EvaluationJobRecord,
    EvaluationRecord,
    JobKind,
    JobRecord,
    RunRecord,
    RunStatus,
)
from storage.validation import MAX_STEPS
from worker.cluster.publisher import PublishedJob, dispatcher_for
from worker.config import Split, TrainConfig, parse_train_config
from worker.dispatch import JobDispatcher, JobHandle
from worker.errors import InvalidConfigError
from worker.queues import EVAL_QUEUE, queue_for

if TYPE_CHECKING:
    from storage import Repository

#: How often :meth:`Client.wait` reads a run's status from the database.
DEFAULT_POLL_INTERVAL_S = 0.1


class Client(SweepMethods, DatasetMethods, MaintenanceMethods, RunManagementMethods):
    """Submit training and evaluation jobs, wait for them, and read their results.

    Example:
        >>> import trainq
        >>> with trainq.Client() as client:  # settings from TRAINQ_* (embedded by default)
        ...     run = client.submit(steps=500, seed=1)
        ...     run = client.wait(run.id)
        ...     metrics = client.metrics(run.id)
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        repository: Repository | None = None,
        dispatcher: JobDispatcher | None = None,
    ) -> None:
        """Build a client; every argument defaults to what the ``TRAINQ_*`` settings call for.

        Args:
            settings: trainq's settings (default: :meth:`Settings.from_env`).
            repository: an open repository (default: one on ``settings.database_url``).
            dispatcher: where jobs run (default: ``dispatcher_for(settings)``).

        Raises:
            InvalidConfigError: ``settings`` is not a :class:`Settings`.
        """
        if settings is not None and not isinstance(settings, Settings):
            raise check.refuse("settings", "a trainq.Settings (or None)", settings)
        self.settings = settings if settings is not None else Settings.from_env()
        if repository is not None:
            self.__dict__["repository"] = repository
        self._dispatcher = dispatcher
        self._handles: dict[tuple[JobKind, int], JobHandle] = {}

    @cached_property
    def repository(self) -> Repository:
        """The repository, with the schema checked (created or upgraded for the embedded SQLite)."""
        from storage import Database, Repository

        database = Database(self.settings.database_url)
        # The embedded default must work on a fresh machine; a shared cluster database is
        # migrated on purpose, by `trainq db upgrade`.
        database.ensure_schema(auto_upgrade=self.settings.embedded)
        return Repository(database)

    @property
    def dispatcher(self) -> JobDispatcher:
        """The one object that decides where jobs run (in this process or on the broker)."""
        if self._dispatcher is None:
            self._dispatcher = dispatcher_for(self.settings)
        return self._dispatcher

    # -- submitting ------------------------------------------------------------------------

    def submit(
        self,
        config: TrainConfig | Mapping[str, Any] | None = None,
        /,
        *,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        max_attempts: int | None = None,
        data: str | None = None,
        **hyperparameters: Any,
    ) -> RunRecord:
        """Store a training run and start it; returns the run as stored (QUEUED).

        Args:
            config: a :class:`TrainConfig` or a mapping of its fields (``learning_rate``,
                ``steps``...); keyword hyperparameters are merged over it.
            name: a name to find the run by.
            tags: ``KEY=VALUE`` labels.
            max_attempts: worker losses tolerated before FAILED (default from the settings).
            data: the stored dataset version to train on: ``NAME`` (its newest), ``NAME@N`` or
                a hash (``trainq data list``); recorded with the run by content hash. None: the
                config's own (``data_sha256``), else the built-in Fashion-MNIST.
            **hyperparameters: fields of :class:`TrainConfig`.

        Example:
            >>> client.submit(data="digits@1", init="zeros", batch_size=1078, steps=3000)

        Raises:
            InvalidConfigError: a hyperparameter, tag, ``data`` or ``max_attempts`` is invalid,
                or ``batch_size``/``val_size`` does not fit the dataset's training examples;
                nothing was stored.
            DatasetNotFoundError: ``data`` (or the config's ``data_sha256``) names no stored
                version; the message says what is stored. Nothing was stored.
            BrokerUnavailableError: the broker does not answer; nothing was stored.
        """
        check.config_source(config)
        return self.submit_many(
            [_config_fields(config, hyperparameters)],
            name=name,
            tags=tags,
            max_attempts=max_attempts,
            data=data,
        )[0]

    def train_config(
        self,
        config: TrainConfig | Mapping[str, Any] | None = None,
        /,
        *,
        data: str | None = None,
        **hyperparameters: Any,
    ) -> TrainConfig:
        """The config :meth:`submit` would store, without storing it: validated, on its dataset
        version, and checked against that version. Its seed and XLA choice are left as given
        (``TrainConfig.resolved``, :meth:`ready_for_one_run`).

        ``data`` is resolved now to the version's content hash and ``NAME@N`` (both recorded in
        the config); ``batch_size`` and ``val_size`` are checked against its training examples.

        Raises:
            InvalidConfigError: a field or ``data`` is invalid, or ``batch_size``/``val_size``
                does not fit the dataset (named).
            DatasetNotFoundError: no stored version matches; the message says what is stored.
        """
        check.config_source(config)
        fields = self._with_data([_config_fields(config, hyperparameters)], data)
        return self._checked_on_data([parse_train_config(fields[0])])[0]

    def ready_for_one_run(self, config: TrainConfig) -> TrainConfig:
        """``config`` as a caller that submits this one run and then exits should submit it.

        For ``trainq train``. Where jobs run in this process, that process is fresh and trains
        only this run: its path (XLA or a plain graph) is the one this machine's figures say ends
        sooner, counting XLA's compile unless an earlier run here left it in the home's cache
        (``worker.training.xla_choice``); and TensorFlow starts importing now, while the run is
        stored and the data loaded, in a thread here (its stderr is captured meanwhile: call
        ``worker.training.wait_for_import`` before printing an error), unless the ``trainq``
        command forked a trainer process that imports it and trains the run's steps
        (``worker.training.trainer_process``). With a broker, the
        workers' warm processes take the run: XLA, as usual.

        Raises:
            InvalidConfigError: ``config`` is not a :class:`TrainConfig`.
        """
        if not isinstance(config, TrainConfig):
            raise check.refuse("config", "a TrainConfig", config)
        from worker.training import trainer_process

        if not self.dispatcher.in_this_process:
            trainer_process.discard()  # it has exited already: reap it
            return config.resolved()
        from api_cli.sdk._run_data import data_shape, stored_version
        from worker.training import start_importing
        from worker.training.xla_choice import choose_xla, use_compile_cache

        home = self.settings.home_dir
        use_compile_cache(home)  # before TensorFlow's import, which reads its XLA flags
        if trainer_process.for_this_run(home) is None:  # none forked early: import in a thread
            start_importing()
        if config.xla is not None:
            return config.resolved()
        # The version's D, C and kind: one query, only for a run that names data (the seed's
        # job opens nothing here, so TensorFlow's import starts no later than before).
        version = stored_version(self.repository, config) if config.data_sha256 else None
        return config.resolved(xla=choose_xla(config, home, data_shape(version)))

    def submit_many(
        self,
        configs: Iterable[TrainConfig | Mapping[str, Any]],
        *,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        max_attempts: int | None = None,
        data: str | None = None,
    ) -> list[RunRecord]:
        """Store several training runs, then start them all (one broker connection).

        Every config is validated before the first run is stored; ``data`` (as in
        :meth:`submit`) applies to every one of them.

        Raises:
            InvalidConfigError: one of the configs, ``name``, ``tags``, ``data`` or
                ``max_attempts`` is invalid, or a batch does not fit the dataset; nothing was
                stored.
            DatasetNotFoundError: ``data`` or a config's ``data_sha256`` names no stored
                version; nothing was stored.
            BrokerUnavailableError: the broker does not answer; nothing was stored.
        """
        fields = [_config_fields(config, {}) for config in check.config_sources(configs)]
        checked = self._checked_on_data([_validated(f) for f in self._with_data(fields, data)])
        name = check.optional_name(name)
        checked_tags = check.optional_tags(tags) or {}
        attempts = check.optional_max_attempts(max_attempts) or self.settings.max_attempts
        self.dispatcher.check()
        runs = [
            self.repository.create_run(
                kind=JobKind.TRAIN,
                config=config.model_dump(mode="json"),
                seed=config.seed_value,
                queue=queue_for(config),
                max_attempts=attempts,
                name=name,
                tags=checked_tags,
            )
            for config in checked
        ]
        self.dispatch_many(runs)
        return runs

    def _with_data(self, configs: list[dict[str, Any]], data: str | None) -> list[dict[str, Any]]:
        """The config fields on the version ``data`` names (None: as they are)."""
        from api_cli.sdk._run_data import data_fields, find_version

        if data is None:
            return configs
        recorded = data_fields(find_version(self.repository, data))
        return [config | recorded for config in configs]

    def _checked_on_data(self, configs: list[TrainConfig]) -> list[TrainConfig]:
        """Each config that names a version by hash checked against it (each read once)."""
        from api_cli.sdk._run_data import on_version

        named = {config.data_sha256 for config in configs if config.data_sha256 is not None}
        versions = {sha256: self.repository.get_dataset_version(sha256) for sha256 in named}
        return [
            on_version(config, versions[config.data_sha256]) if config.data_sha256 else config
            for config in configs
        ]

    def submit_evaluation(
        self,
        run_id: int,
        checkpoint_step: int | None = None,
        split: Split | str = Split.TEST,
        *,
        force: bool = False,
    ) -> EvaluationJobRecord:
        """Evaluate one checkpoint (default: the newest) over a whole split, unless it was.

        The same weights on the same images give the same numbers: when this checkpoint and
        split already have a stored result, nothing is queued and the (SUCCEEDED) job that
        computed it is returned, unless ``force``.

        Returns:
            The evaluation job (``eval N``: its own id sequence; ``client.wait(job)`` waits for
            it, and its result is in :meth:`evaluations` once it SUCCEEDED).

        Raises:
            InvalidConfigError: an argument has the wrong type or value (named).
            RunNotFoundError: no run ``run_id``.
            CheckpointNotFoundError: the run has no checkpoint (at ``checkpoint_step``).
            BrokerUnavailableError: the broker does not answer; nothing was stored.
        """
        split = check.choice(Split, split, "split")
        force = check.flag(force, "force")
        step = self.checkpoint_step(run_id, checkpoint_step)
        stored = None if force else self.repository.find_evaluation(run_id, step, split.value)
        if stored is not None and stored.job_id is not None:
            return self.repository.get_evaluation_job(stored.job_id)
        self.dispatcher.check()  # fail fast, before anything is stored
        job = self.create_evaluation_job(run_id, step, split)
        self.dispatch_many([job])
        return job

    def checkpoint_step(self, run_id: int, step: int | None) -> int:
        """The stored checkpoint step ``step`` of training run ``run_id`` (None: its newest).

        Raises:
            RunNotFoundError: no run ``run_id``.
            CheckpointNotFoundError: the run has no checkpoint (at ``step``), naming those it has.
            InvalidConfigError: ``run_id`` or ``step`` is not a valid id or step.
        """
        from storage.errors import CheckpointNotFoundError

        run_id = check.job_id(run_id)
        step = check.optional_step(step, "checkpoint_step")
        run = self.repository.get_run(run_id)
        steps = [info.step for info in self.repository.list_checkpoints(run_id)]
        if not steps:
            raise CheckpointNotFoundError(
                f"run {run_id} has no checkpoint yet (status {run.status}); "
                "wait for its first checkpoint"
            )
        if step is None:
            return max(steps)
        if step not in steps:
            raise CheckpointNotFoundError(
                f"run {run_id} has no checkpoint at step {step}; it has: "
                + ", ".join(map(str, steps))
            )
        return step

    def stored_evaluation(
        self, run_id: int, checkpoint_step: int, split: Split | str = Split.TEST
    ) -> EvaluationRecord | None:
        """The newest stored evaluation of this checkpoint on this split, if there is one.

        Raises:
            InvalidConfigError: an argument has the wrong type or value (named).
        """
        return self.repository.find_evaluation(
            check.job_id(run_id),
            check.whole_number(checkpoint_step, "checkpoint_step", 1, MAX_STEPS),
            check.choice(Split, split, "split").value,
        )

    def create_evaluation_job(
        self, run_id: int, step: int | None, split: Split
    ) -> EvaluationJobRecord:
        """Store (without starting) one QUEUED evaluation job; see :meth:`dispatch_many`.

        ``step`` None is the newest checkpoint, resolved now (the job evaluates that step).

        Raises:
            InvalidConfigError: an argument has the wrong type or value (named).
        """
        split = check.choice(Split, split, "split")
        return self.repository.create_evaluation_job(
            run_id=run_id,
            checkpoint_step=self.checkpoint_step(run_id, step),
            split=split.value,
            queue=EVAL_QUEUE,
            max_attempts=self.settings.max_attempts,
        )

    def dispatch_many(self, runs: Sequence[JobRecord]) -> list[JobHandle]:
        """Start stored QUEUED jobs (e.g. one that ``trainq resume`` requeued) and track them.

        Raises:
            InvalidConfigError: ``runs`` is not a list of job records.
        """
        if isinstance(runs, str | bytes) or not isinstance(runs, Sequence):
            raise check.refuse("runs", "a list of job records", runs)
        for run in runs:
            if not isinstance(run, RunRecord | EvaluationJobRecord):
                raise check.refuse("runs", "a list of job records", run)
        handles = self.dispatcher.dispatch_many(self.repository, runs)
        for handle in handles:
            self._handles[handle.kind, handle.run_id] = handle
        return handles

    def handle(self, run_id: int, kind: JobKind = JobKind.TRAIN) -> JobHandle:
        """The handle of a job this client started, else one that follows it in the database.

        Raises:
            InvalidConfigError: ``run_id`` or ``kind`` is not a valid id or job kind.
        """
        run_id, kind = check.job_id(run_id), check.choice(JobKind, kind, "kind")
        return self._handles.get((kind, run_id)) or PublishedJob(run_id, kind)

    # -- waiting and reading ---------------------------------------------------------------

    @overload
    def wait(
        self,
        job: int | RunRecord,
        *,
        timeout_s: float | None = None,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    ) -> RunRecord: ...

    @overload
    def wait(
        self,
        job: EvaluationJobRecord,
        *,
        timeout_s: float | None = None,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    ) -> EvaluationJobRecord: ...

    def wait(
        self,
        job: int | JobRecord,
        *,
        timeout_s: float | None = None,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    ) -> JobRecord:
        """Block until a job is SUCCEEDED, FAILED or CANCELLED; return its record.

        ``job`` is a training run's id, or a job's record (a training run, or an evaluation job
        from :meth:`submit_evaluation`: evaluation jobs have ids of their own, so wait for the
        record, not its id). A job this client runs in-process also ends the wait when its
        thread stops without finishing it (another process owns it); the record then says where
        it is.

        Raises:
            TimeoutError: ``timeout_s`` passed first (the job goes on).
            RunNotFoundError: no such run (EvaluationJobNotFoundError: no such evaluation job).
            InvalidConfigError: an argument has the wrong type or value (named).
        """
        if not isinstance(job, RunRecord | EvaluationJobRecord):
            job = check.job_id(job, "job")
        timeout_s = check.optional_seconds(timeout_s, "timeout_s")
        poll_interval_s = check.seconds(poll_interval_s, "poll_interval_s", positive=True)
        kind = JobKind.TRAIN if isinstance(job, int) else job.kind
        job_id = job if isinstance(job, int) else job.id
        handle = self.handle(job_id, kind)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            record = self.repository.get_job(job_id, kind)
            if record.status.terminal or handle.finished():
                handle.raise_failure()  # an in-process job that crashed outside the job code
                return record if record.status.terminal else self.repository.get_job(job_id, kind)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"{record.label} is still {record.status} after {timeout_s} s")
            time.sleep(poll_interval_s)

    def wait_all(
        self, run_ids: Iterable[int], *, timeout_s: float | None = None
    ) -> list[RunRecord]:
        """:meth:`wait` for each job in turn; ``timeout_s`` bounds the whole wait.

        Raises:
            InvalidConfigError: ``run_ids`` or ``timeout_s`` has the wrong type or value.
        """
        run_ids = check.job_ids(run_ids)
        timeout_s = check.optional_seconds(timeout_s, "timeout_s")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        return [
            self.wait(
                run_id,
                timeout_s=None if deadline is None else max(0.0, deadline - time.monotonic()),
            )
            for run_id in run_ids
        ]

    def run(self, run_id: int) -> RunRecord:
        """One training run as stored (an evaluation job: ``repository.get_evaluation_job``).

        Raises:
            RunNotFoundError: no run has this id.
            InvalidConfigError: ``run_id`` is not an id.
        """
        return self.repository.get_run(check.job_id(run_id))

    def training_runs(self, run_ids: Iterable[int]) -> list[RunRecord]:
        """The training runs with these ids, in this order (repeats dropped).

        Raises:
            RunNotFoundError: naming every id that matches no run; nothing else is read.
            InvalidConfigError: an id is an evaluation job, not a training run, or not an id.
        """
        run_ids = check.job_ids(run_ids)
        runs: list[RunRecord] = []
        missing: list[int] = []
        for run_id in dict.fromkeys(run_ids):
            try:
                runs.append(self.repository.get_run(run_id))
            except RunNotFoundError:
                missing.append(run_id)
        if missing:
            plural = "s" if len(missing) > 1 else ""
            raise RunNotFoundError(
                f"no run{plural} with id{plural} {', '.join(map(str, missing))}; "
                "see `trainq runs list`"
            )
        jobs = [str(run.id) for run in runs if run.kind is not JobKind.TRAIN]
        if jobs:
            raise InvalidConfigError(
                f"{', '.join(jobs)}: evaluation job(s), not training runs; give training run ids "
                "(see `trainq runs list`)"
            )
        return runs

    def runs(
        self,
        *,
        statuses: Sequence[RunStatus | str] | None = None,
        tags: Mapping[str, str] | None = None,
        name: str | None = None,
        limit: int | None = None,
        archived: bool | None = False,
    ) -> list[RunRecord]:
        """Training runs, newest first, filtered by status, tags and name; archived runs
        (:meth:`archive_runs`) only with ``archived=True``, with the others with ``None``.

        Raises:
            InvalidConfigError: a filter has the wrong type or value (named).
        """
        if archived is not None:
            archived = check.flag(archived, "archived")
        return self.repository.list_runs(
            statuses=check.choices(RunStatus, statuses, "statuses") or None,
            tags=check.optional_tags(tags) or None,
            name=check.optional_name(name),
            limit=check.optional_limit(limit),
            archived=archived,
        )

    def metrics(
        self,
        run_id: int,
        *,
        every: int = 1,
        first_step: int | None = None,
        last_step: int | None = None,
    ) -> Metrics:
        """A run's per-step loss and accuracy as NumPy arrays (steps 1-based; see ``every``).

        Raises:
            RunNotFoundError: no run has this id.
            InvalidConfigError: an argument has the wrong type or value (``every < 1``...).
        """
        steps, loss, accuracy = self.repository.read_metric_arrays(
            check.job_id(run_id),
            first_step=check.optional_step(first_step, "first_step"),
            last_step=check.optional_step(last_step, "last_step"),
            every=check.whole_number(every, "every", 1, MAX_STEPS),
        )
        return Metrics(run_id=run_id, steps=steps, loss=loss, accuracy=accuracy)

    def evaluations(self, run_id: int) -> list[EvaluationRecord]:
        """Every stored evaluation of a training run, by checkpoint step.

        Raises:
            RunNotFoundError: no run has this id.
            InvalidConfigError: ``run_id`` is not an id.
        """
        return self.repository.list_evaluations(check.job_id(run_id))

    def latest_evaluations(self, run_id: int) -> dict[str, EvaluationRecord]:
        """The newest evaluation of each split (``{"test": ..., "train": ...}``).

        Raises:
            RunNotFoundError: no run has this id.
            InvalidConfigError: ``run_id`` is not an id.
        """
        newest: dict[str, EvaluationRecord] = {}
        for evaluation in self.evaluations(run_id):
            kept = newest.get(evaluation.split)
            if kept is None or (evaluation.checkpoint_step, evaluation.created_at) >= (
                kept.checkpoint_step,
                kept.created_at,
            ):
                newest[evaluation.split] = evaluation
        return newest

    def cancel(self, run_id: int) -> RunRecord:
        """Cancel a job: a queued one never starts, a running one stops at its next chunk.

        Raises:
            InvalidStateError: the job already finished.
            RunNotFoundError: no such job.
            InvalidConfigError: ``run_id`` is not an id.
        """
        return self.repository.request_cancel(check.job_id(run_id))

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Let jobs running in this process finish, then release connections."""
        if self._dispatcher is not None:
            self._dispatcher.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _config_fields(
    config: TrainConfig | Mapping[str, Any] | None, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The fields of ``config`` with ``overrides`` over them; ``lr`` and ``learning_rate`` (and
    the other option names, ``worker.parameter_names``) name one field on either side."""
    from worker.parameter_names import canonical_fields

    if isinstance(config, TrainConfig):
        fields = config.model_dump(mode="json")
    else:
        fields = canonical_fields(config) if isinstance(config, Mapping) else dict(config or {})
    return {**fields, **canonical_fields(overrides)}


def _validated(fields: Mapping[str, Any]) -> TrainConfig:
    return parse_train_config(dict(fields)).resolved()
