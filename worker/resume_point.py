"""Where a run resumes: its newest *intact* checkpoint.

A damaged newest checkpoint (a bad disk sector, a bit flip, a blob overwritten) must not end a
run whose older checkpoints are fine: training is deterministic, so resuming from an older one
recomputes the same steps, and the damaged checkpoint is replaced when its step is reached again
(``storage.checkpoint_store.store_checkpoint``).
"""

from __future__ import annotations

import logging

from storage import Repository
from storage.errors import CheckpointNotFoundError, WeightsChecksumError, WeightsCorruptError
from storage.records import Checkpoint, RunRecord

logger = logging.getLogger(__name__)


def resume_step(repository: Repository, run: RunRecord) -> int:
    """The step ``run`` trains from next: its newest checkpoint's (0 when it never trained),
    read without loading any weights (a damaged one found later only moves it back).

    A packed trial's mates must resume from the same step (``worker.pack_job``): so a trial taken
    over at a checkpoint packs with trials at that step, not with fresh ones, and the packs after
    a takeover are those of a sweep never interrupted.
    """
    if run.steps_done == 0:
        return 0
    checkpoints = repository.list_checkpoints(run.id)
    return checkpoints[-1].step if checkpoints else 0


def newest_intact_checkpoint(repository: Repository, run_id: int) -> Checkpoint | None:
    """The newest checkpoint of ``run_id`` that passes verification; ``None`` if it has none.

    Each damaged checkpoint skipped is logged as a warning that says where the run resumes.

    Raises:
        WeightsCorruptError: the run has checkpoints and every one of them is damaged.
    """
    steps = [info.step for info in reversed(repository.list_checkpoints(run_id))]
    damaged: list[str] = []
    for index, step in enumerate(steps):
        try:
            checkpoint = repository.get_checkpoint(run_id, step)
        except CheckpointNotFoundError:
            continue  # deleted since the listing
        except WeightsCorruptError as error:
            reason = _reason(error)
            damaged.append(f"step {step} ({reason})")
            older = steps[index + 1] if index + 1 < len(steps) else None
            fallback = f"resuming from step {older}" if older is not None else "no older one"
            logger.warning(
                "run %s: checkpoint at step %s is corrupt (%s); %s", run_id, step, reason, fallback
            )
            continue
        return checkpoint
    if damaged:
        raise WeightsCorruptError(
            f"run {run_id} cannot resume: every checkpoint is corrupt ({', '.join(damaged)}). "
            "Start a new run with the same config (`trainq runs show` lists it); "
            "`trainq db check` lists what else is damaged."
        )
    return None


def _reason(error: WeightsCorruptError) -> str:
    if isinstance(error, WeightsChecksumError):
        return "checksum mismatch"
    return str(error).partition(": ")[2] or str(error)
