"""How many trials of a sweep train side by side (the sweep file's ``pack``), decided once.

``pack: auto`` (the default) is decided when the sweep is submitted and stored as a number, so
that every trial of the sweep, resumed or taken over anywhere, trains at the same width:

- trials are packed only when they can share batches: ``auto`` is 1 when a parameter that
  decides the batches or the chunks is swept (``seed``, ``batch_size``, ``chunk_steps``,
  ``checkpoint_every``, ``device``), since each trial would sit alone in a wide pack;
- otherwise ``max_concurrent`` trials (or all of them, when fewer) are QUEUED at once, spread
  over the workers that serve the trials' queue (embedded: one), so ``auto`` is
  ``ceil(min(max_concurrent, run_cap) / workers)``, or 1 where that is 2 and the trials may train
  on a CPU (a pack of 2 is slower there than its trials one after the other);
- at most 64 trials on a CPU (beyond that the state outgrows the caches: bench/pack_bench.py),
  1,024 on a GPU;
- and never more than fits the memory budget, ``TRAINQ_PACK_MEMORY_BYTES`` (512 MiB unless set;
  an explicit ``pack`` too: a pack that would not fit is narrowed, never swapped).

No TensorFlow here: the CLI plans sweeps.
"""

from __future__ import annotations

import logging
import math
from typing import Final

from storage.settings import DEFAULT_PACK_MEMORY_BYTES
from worker.choices import Device
from worker.config import TrainConfig

logger = logging.getLogger(__name__)

#: Packs this narrow or narrower train as trials alone instead (where ASHA narrows a pack, and
#: for ``auto`` off a GPU): measured on an AMD EPYC (bench/pack_bench.py), a pack of 2 ran 0.8x
#: the trial-steps/s of its trials one after the other, a pack of 4 1.4x.
NARROWEST_PACK: Final = 2

#: Above this, a pack narrows to a multiple of it rather than to a power of two.
NARROWING_STEP: Final = 8

#: Widest ``auto`` pack on a CPU and on a GPU.
MAX_AUTO_PACK_CPU: Final = 64
MAX_AUTO_PACK_GPU: Final = 1024

#: Device memory a pack's state may take (``pack_memory_bytes``) unless
#: ``TRAINQ_PACK_MEMORY_BYTES`` says otherwise: 512 MiB.
PACK_MEMORY_BUDGET_BYTES: Final = DEFAULT_PACK_MEMORY_BYTES

#: Swept parameters that give trials different batches or chunk ends: such trials cannot share.
UNPACKABLE_PARAMETERS: Final = frozenset(
    {"seed", "batch_size", "chunk_steps", "checkpoint_every", "device"}
)


#: Fields every run of one pack must share: they decide the batches (seed, batch size, the
#: held-out split, the data), where chunks end and checkpoints fall, the device and the width.
PACK_KEY_FIELDS: Final = (
    "seed",
    "batch_size",
    "val_size",
    "val_seed",
    "data_sha256",
    "chunk_steps",
    "checkpoint_every_steps",
    "device",
    "pack",
    "pack_narrows",
)


def pack_key(config: TrainConfig) -> tuple[object, ...]:
    """What runs must have in common to train in one pack."""
    return tuple(getattr(config, name) for name in PACK_KEY_FIELDS)


def narrowing(width: int, rungs: list[int], reduction_factor: int) -> tuple[tuple[int, int], ...]:
    """Where a pack of ``width`` narrows in a sweep with ASHA: a pack's trials are decided
    together (``worker.rung_cohort``), so past rung ``k`` about ``floor(n / reduction_factor)``
    of the ``n`` that reached it go on; the pack narrows there to that many, rounded up
    (:func:`narrowed_width`), or to 1 from 2 on (a pack of 2 trains slower than its two trials
    one after the other on a CPU: ``bench/pack_bench.py``). More survivors than that train as
    several packs of the narrower width; fewer leave seats parked."""
    narrows: list[tuple[int, int]] = []
    current = share = width
    for rung in rungs:
        share = max(1, share // reduction_factor)
        narrower = narrowed_width(share)
        if narrower <= NARROWEST_PACK:
            narrower = 1
        if narrower < current:
            narrows.append((rung, narrower))
            current = narrower
    return tuple(narrows)


def narrowed_width(share: int) -> int:
    """The width a pack narrows to for ``share`` trials: the next power of two up to
    :data:`NARROWING_STEP`, the next multiple of it above (few widths, few compiles). A parked
    seat costs its share of every product: the 21 trials that 64 keep at ASHA's first rung
    (reduction factor 3) train in a pack of 24 instead of 32, 0.76x the rows (on an AMD EPYC
    Zen 4 their 2,000 steps took 2.5 s instead of 3.2 s: ``docs/benchmarks.md``)."""
    if share <= NARROWING_STEP:
        return 1 << (share - 1).bit_length()
    return -(-share // NARROWING_STEP) * NARROWING_STEP


#: The packed weights' rows are padded to a multiple of this, plus as many spare rows after
#: the last seat (``packed_rows``).
PACKED_ROW_ALIGNMENT: Final = 16


def packed_rows(width: int, classes: int) -> int:
    """Rows of a pack's transposed weights: ``width * classes``, rounded up to a multiple of 16,
    plus 16 spare rows that belong to no seat (a pack of 1: ``classes``).

    Why: the CPU's matrix products compute rows that fall in a partial vector register, or the
    matrix's last rows, by other instruction paths, which round differently: unpadded, on an AMD
    EPYC with AVX2 the gradient rows of the second seat of a pack of 2 (rows 10-19 of 20) or of
    the last seat of a pack of 5 differed in the last bit from the same trial in seat 0, so a
    trial taken over in another seat would not repeat its numbers. With every seat in whole
    16-row blocks and never at the end of the matrix, no seat of any width tried (1-256 trials of
    2, 3 or 10 classes) differs from seat 0 (``tests/worker/test_packed_training.py``). It costs
    16-31 rows of arithmetic: 2.5 % of a pack of 64 trials of 10 classes.
    """
    if width == 1:  # one seat: nowhere else it could sit
        return classes
    aligned = -(-width * classes // PACKED_ROW_ALIGNMENT) * PACKED_ROW_ALIGNMENT
    return aligned + PACKED_ROW_ALIGNMENT


def pack_memory_bytes(width: int, features: int, classes: int, call_steps: int) -> int:
    """Memory of a pack's state while it trains: thirteen ``packed_rows x (D+1)`` float32
    arrays (weights and velocities, their new values, the gradient, XLA's temporaries and the
    copies fetched at a chunk's end: measured, a pack of 256 trials of 784 x 10 grew its process
    by 120 MiB on an AMD EPYC with AVX2, 18 MiB of it compiled code, ~0.40 MiB a trial,
    ``bench/pack_bench.py``) and one call's metric buffers. The training split and the compiled
    code come on top, shared by every pack of a process (18 MiB for Fashion-MNIST)."""
    rows = packed_rows(width, classes)
    return 4 * (13 * rows * (features + 1) + 2 * call_steps * width)


def resolve_pack(
    requested: int | None,
    *,
    max_concurrent: int,
    workers: int,
    device: Device,
    trials: int | None = None,
    swept: frozenset[str],
    features: int,
    classes: int,
    call_steps: int,
    budget_bytes: int = PACK_MEMORY_BUDGET_BYTES,
) -> int:
    """The width the sweep's trials train at (see the module).

    Args:
        requested: the file's ``pack``; None is ``auto``.
        max_concurrent: the sweep's trials QUEUED or RUNNING at once.
        workers: workers serving the trials' queue (1 embedded).
        device: the trials' device.
        swept: the names of the swept parameters.
        features: D of the data.
        classes: C of the data.
        call_steps: steps per compiled call (the metric buffers' length).
        budget_bytes: the memory a pack may take.
    """
    if requested is None:
        if swept & UNPACKABLE_PARAMETERS:
            return 1
        cap = MAX_AUTO_PACK_GPU if device is Device.GPU else MAX_AUTO_PACK_CPU
        at_once = min(max_concurrent, trials or max_concurrent)
        width = min(cap, math.ceil(at_once / max(1, workers)))
        if width <= NARROWEST_PACK and device is not Device.GPU:
            width = 1
    else:
        width = requested
    fitting = width
    while fitting > 1 and pack_memory_bytes(fitting, features, classes, call_steps) > budget_bytes:
        fitting -= 1
    if fitting < width:
        logger.warning(
            "pack: %s trials of %s x %s would take %.0f MiB, over the %.0f MiB budget: packs of %s",
            width,
            features,
            classes,
            pack_memory_bytes(width, features, classes, call_steps) / 2**20,
            budget_bytes / 2**20,
            fitting,
        )
    return fitting
