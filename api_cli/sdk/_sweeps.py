"""The Python API's sweep methods (a mixin of :class:`trainq.Client`): start, run, resume, read.

The CLI's ``trainq sweep start`` and ``trainq sweep resume`` call these too; they add only output,
``--wait`` and Ctrl-C.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api_cli.sdk import _arguments as check

if TYPE_CHECKING:
    from storage import Repository, Settings
    from storage.records import RunRecord
    from storage.sweep_records import SweepRecord
    from worker.cluster.publisher import Dispatcher
    from worker.dispatch import JobDispatcher
    from worker.sweep_report import SweepReport
    from worker.sweep_spec import SweepSpec


class SweepMethods:
    """Sweeps through the client's repository and dispatcher."""

    settings: Settings

    if TYPE_CHECKING:  # provided by the client

        @property
        def repository(self) -> Repository: ...

        @property
        def dispatcher(self) -> JobDispatcher: ...

    def submit_sweep(
        self, sweep: str | os.PathLike[str] | Mapping[str, Any], *, run_here: bool = True
    ) -> SweepRecord:
        """Start a sweep from a sweep file (YAML or JSON) or its loaded mapping.

        Every trial's values are checked by ``trainq train``'s validator before anything is
        stored. On a cluster the first ``max_concurrent`` trials are published and this returns
        at once (each trial that ends starts the next); embedded, the trials run here, one after
        another, and this returns when the sweep has ended (with ``run_here=False`` it returns
        the stored sweep at once: :meth:`run_sweep` runs it).

        The file's ``data`` key (``NAME``, ``NAME@N`` or a hash) names the stored dataset every
        trial trains on; it is found now and recorded by content hash.

        Raises:
            InvalidConfigError: the file is bad (the message names the key), an argument has
                the wrong type, or ``val_size``/a batch does not fit the dataset; nothing was
                stored.
            DatasetNotFoundError: ``data`` names no stored version; nothing was stored.
            BrokerUnavailableError: the broker does not answer; nothing was stored.
        """
        from worker.sweep_file import check_sweep_document, read_sweep_file
        from worker.sweeps import parse_spec, submit_sweep

        check.sweep_source(sweep)
        run_here = check.flag(run_here, "run_here")
        if isinstance(sweep, str | os.PathLike):
            data = read_sweep_file(Path(sweep))
        else:  # checked as a file's contents are: nesting, size, NaN, string keys
            data = check_sweep_document(dict(sweep), source="sweep")
        spec = parse_spec(data)
        if spec.data is not None:
            from api_cli.sdk._run_data import find_version

            version = find_version(self.repository, spec.data)
            spec = spec.on_dataset(
                version.sha256,
                version.label,
                version.train_examples,
                features=version.features,
                classes=version.classes,
            )
        publisher = self._sweep_publisher()
        self.dispatcher.check()  # fail fast, before anything is stored
        record = submit_sweep(
            self.repository,
            spec,
            max_attempts=self.settings.max_attempts,
            dispatcher=publisher,
            workers=self._workers_for(spec) if publisher is not None else 1,
            pack_memory_bytes=self.settings.pack_memory_bytes,
        )
        if publisher is not None or not run_here:
            return record
        return self.run_sweep(record.id)

    def run_sweep(
        self,
        sweep_id: int,
        *,
        on_trial_end: Callable[[RunRecord], None] | None = None,
        stop_requested: Callable[[], bool] | None = None,
    ) -> SweepRecord:
        """Embedded: run the sweep's remaining trials here, in trial order, until it ends.

        Args:
            sweep_id: the sweep.
            on_trial_end: called with each trial's record once it ended.
            stop_requested: asked at every chunk; once True, the trial in progress stops there
                with a checkpoint, goes back to QUEUED, and no further trial starts (the sweep
                stays resumable: :meth:`resume_sweep`).

        Returns:
            The sweep as it stands at the end (RUNNING if stopped or if a trial runs elsewhere).

        Raises:
            InvalidStateError: on a cluster, where workers run the trials.
            InvalidConfigError: an argument has the wrong type (named).
        """
        from storage.errors import InvalidStateError
        from worker.jobs import JobContext
        from worker.sweep_runner import run_sweep_here

        sweep_id = check.job_id(sweep_id, "sweep_id")
        on_trial_end = check.optional_callable(on_trial_end, "on_trial_end")
        stop_requested = check.optional_callable(stop_requested, "stop_requested")

        if not self.dispatcher.in_this_process:
            raise InvalidStateError(
                f"sweep {sweep_id}: on a cluster the workers run the trials; "
                "resume_sweep publishes the next ones"
            )
        context = JobContext.for_this_process(
            self.repository,
            self.settings,
            "embedded",
            hand_back_requested=stop_requested or (lambda: False),
        )
        return run_sweep_here(context, sweep_id, on_trial_end=on_trial_end)

    def resume_sweep(self, sweep_id: int, *, run_here: bool = True) -> SweepRecord:
        """Continue a sweep whose process died or was interrupted.

        Embedded: a trial whose process on this machine is gone is taken over (its lease ended,
        the trial QUEUED again: it resumes from its newest checkpoint, ASHA decisions already
        taken are kept), then the remaining trials run here (unless ``run_here=False``). On a
        cluster the workers carry the sweep on; this fills free slots and publishes every trial
        not yet published, and returns.

        Raises:
            SweepNotFoundError: no such sweep.
            InvalidStateError: the sweep already ended, or one of its trials runs in a live
                process (embedded).
            BrokerUnavailableError: the broker does not answer.
            InvalidConfigError: an argument has the wrong type (named).
        """
        from storage.errors import InvalidStateError
        from worker.sweep_runner import take_over_trials
        from worker.sweeps import advance_sweep

        sweep_id = check.job_id(sweep_id, "sweep_id")
        run_here = check.flag(run_here, "run_here")

        sweep = self.repository.get_sweep(sweep_id)
        if sweep.status.terminal:
            raise InvalidStateError(
                f"sweep {sweep_id} already ended ({sweep.status.value}); nothing to resume"
            )
        publisher = self._sweep_publisher()
        if publisher is None:
            take_over_trials(self.repository, sweep_id)
            return self.run_sweep(sweep_id) if run_here else sweep
        self.dispatcher.check()
        advance_sweep(self.repository, sweep_id, publisher)
        return self.repository.get_sweep(sweep_id)

    def _workers_for(self, spec: SweepSpec) -> int:
        """Workers online for the sweep's trials' queue, for ``pack: auto`` (1 when unknown)."""
        if spec.pack is not None:
            return 1  # an explicit pack does not depend on them
        from dataclasses import replace

        from worker.cluster.census import consumers_by_queue
        from worker.errors import BrokerUnavailableError
        from worker.queues import queue_for
        from worker.sweep_plan import plan_trials

        queue = queue_for(plan_trials(replace(spec, run_cap=1))[0][1])  # one trial says it
        try:
            return max(1, len(consumers_by_queue(self.settings).get(queue, ())))
        except BrokerUnavailableError:
            return 1

    def _sweep_publisher(self) -> Dispatcher | None:
        """The broker dispatcher that publishes trials, or None when they run in this process."""
        from worker.cluster.publisher import Dispatcher

        dispatcher = self.dispatcher
        return dispatcher if isinstance(dispatcher, Dispatcher) else None

    def sweep(self, sweep_id: int) -> SweepReport:
        """A sweep's state: its trials (parameters, objective, pruned or not), rungs, best trial.

        Raises:
            SweepNotFoundError: no sweep has this id.
            InvalidConfigError: ``sweep_id`` is not an id.
        """
        from worker.sweep_report import sweep_report

        return sweep_report(self.repository, check.job_id(sweep_id, "sweep_id"))
