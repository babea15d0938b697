"""What a training attempt spent before its first chunk, said in one log line.

A job process that is not warm (``worker.cluster.warm_up``) imports TensorFlow, loads the data and
traces and compiles the chunk inside its first job. The line says how long each took and how many
chunk traces (compilations) the job itself caused, so that a log, the chaos bench's fault costs
(``tests/integration/chaos_costs.py``) and a test can tell a warm process from a cold one without
guessing from timings.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass
class StartUp:
    """Clock readings (``time.perf_counter``) of one attempt's start-up."""

    run_id: int
    started: float  # at the claim, before the checkpoint, the data and TensorFlow
    loaded_at: float  # the checkpoint and the data loaded (they need no TensorFlow)
    imported_at: float  # TensorFlow imported (or found imported), after the data
    traces_before: int  # worker.training.step.traces_so_far() after the import
    reported: bool = False

    def first_chunk_done(self, step: int, traces_now: int) -> None:
        """Log the start-up once, when the attempt's first chunk (ending at ``step``) is done."""
        if self.reported:
            return
        self.reported = True
        now = time.perf_counter()
        compilations = traces_now - self.traces_before
        logger.info(
            "run %s: first chunk done at step %s, %.2f s after the claim "
            "(TensorFlow import %.2f s, checkpoint and data %.2f s, %s new compilation%s)",
            self.run_id,
            step,
            now - self.started,
            self.imported_at - self.loaded_at,  # what was left of it once the data was in
            self.loaded_at - self.started,
            compilations,
            "" if compilations == 1 else "s",
        )
