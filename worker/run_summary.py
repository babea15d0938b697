"""The summary a finished training attempt stores: built here, read through ``TrainSummary``."""

from __future__ import annotations

from storage import Repository
from storage.records import TrainSummary, final_window, window_mean
from worker.training.state import TrainResult


def summarize(
    repository: Repository, run_id: int, result: TrainResult, *, wall_s: float
) -> TrainSummary:
    """The summary of ``result``, its final loss and accuracy read back from the stored metrics.

    The means are taken over the stored steps of ``final_window``, the same steps the progress bar
    averages, so that both show one number, also after a resume.
    """
    first, last = final_window(result.state.step)
    _, loss, accuracy = repository.read_metric_arrays(run_id, first_step=first, last_step=last)
    return TrainSummary(
        steps_done=result.state.step,
        steps_run=result.steps_run,
        completed=result.completed,
        device=result.device,
        wall_s=round(wall_s, 6),
        wall_steps_per_s=round(result.steps_run / wall_s, 3) if wall_s > 0 else 0.0,
        training_steps_per_s=_rounded(result.training_steps_per_s, 3),
        final_loss=window_mean(loss),
        final_accuracy=window_mean(accuracy),
        final_window_steps=int(loss.shape[0]),
        packed_with=result.packed_with,
        versions=software_versions(result.tensorflow_version),
    )


def software_versions(tensorflow_version: str = "") -> dict[str, str]:
    """The versions that trained a run: trainq, TensorFlow (``tensorflow_version``, where the
    steps ran; else this process's), NumPy and Python."""
    import platform
    import sys
    from importlib.metadata import PackageNotFoundError, version

    import numpy

    here = str(getattr(sys.modules.get("tensorflow"), "__version__", "not loaded"))
    try:
        trainq = version("trainq")
    except PackageNotFoundError:  # run from a source tree that was never installed
        trainq = "unknown"
    return {
        "trainq": trainq,
        "tensorflow": tensorflow_version or here,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def summarize_stopped(
    repository: Repository, run_id: int, step: int, *, wall_s: float
) -> TrainSummary:
    """The summary of an attempt that ended at ``step`` without training (a trial resumed right
    after the rung that prunes it): its final means come from the steps already stored."""
    first, last = final_window(step)
    _, loss, accuracy = repository.read_metric_arrays(run_id, first_step=first, last_step=last)
    return TrainSummary(
        steps_done=step,
        steps_run=0,
        completed=False,
        device="",
        wall_s=round(wall_s, 6),
        wall_steps_per_s=0.0,
        training_steps_per_s=None,
        final_loss=window_mean(loss),
        final_accuracy=window_mean(accuracy),
        final_window_steps=int(loss.shape[0]),
        versions=software_versions(),
    )


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
