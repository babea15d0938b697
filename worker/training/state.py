"""What training hands back: the resumable state, per-chunk reports and the final result.

NumPy only: these plain objects cross into code that must not import TensorFlow (tasks, storage).
Weights use the notebook's layout: ``W`` is ``(D, C)`` (``(784, 10)`` for Fashion-MNIST), ``b`` is
``(C,)``; with momentum the velocities ``vW`` and ``vb`` have the same shapes. All arrays are
float32 and read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worker.config import Init, TrainConfig
from worker.data import IMAGE_PIXELS, NUM_CLASSES
from worker.errors import IncompatibleWeightsError
from worker.training.batches import INIT_STREAM

FloatArray = npt.NDArray[np.float32]

WEIGHT_NAMES = ("W", "b")
VELOCITY_NAMES = ("vW", "vb")


@dataclass(frozen=True)
class ModelDims:
    """The width of the logistic regression: D input features by C classes."""

    features: int = IMAGE_PIXELS  # D
    classes: int = NUM_CLASSES  # C

    def array_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every array a state of this width may hold."""
        return {
            "W": (self.features, self.classes),
            "b": (self.classes,),
            "vW": (self.features, self.classes),  # momentum velocity of W
            "vb": (self.classes,),  # momentum velocity of b
        }

    def describe(self) -> str:
        """``784 features x 10 classes``, for messages."""
        return f"{self.features:,} features x {self.classes:,} classes"


#: The built-in Fashion-MNIST's width: 784 pixels, 10 classes.
FASHION_MNIST_DIMS = ModelDims()
#: Shape of every array a Fashion-MNIST state may hold.
ARRAY_SHAPES: dict[str, tuple[int, ...]] = FASHION_MNIST_DIMS.array_shapes()


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class TrainingState:
    """Everything needed to continue a run exactly: the steps done and the float32 arrays."""

    step: int  # steps completed (0 before the first step)
    arrays: dict[str, FloatArray]  # "W", "b", plus "vW", "vb" when momentum > 0


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class ChunkReport:
    """The per-step metrics of one chunk of consecutive steps, delivered as soon as it ran.

    ``loss`` and ``accuracy`` of a step are measured on that step's batch with the weights
    *before* the step's update (the forward pass the gradient needs anyway).
    """

    first_step: int  # 1-based number of the chunk's first step ("Número del lote")
    loss: FloatArray  # mean softmax cross-entropy of each step's batch (without the L2 term)
    accuracy: FloatArray  # fraction of each step's batch whose argmax is the label
    state: TrainingState | None  # set when a checkpoint is due at the chunk's end, and at the end
    device: str | None = None  # where it ran, as people read it: "CPU:0", "GPU:0 (model)"

    @property
    def last_step(self) -> int:
        """1-based number of the chunk's last step (equal to the steps completed after it)."""
        return self.first_step + len(self.loss) - 1


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class TrainResult:
    """How a call to ``train`` ended."""

    state: TrainingState  # at the last finished chunk
    completed: bool  # False when should_stop ended the call early
    steps_run: int  # steps run by this call (not counting those before resume_from)
    device: str  # e.g. "CPU:0" or "GPU:0 (NVIDIA H100 80GB HBM3)"
    duration_s: float  # wall time of this call, compilation included
    steps_per_s: float  # steps_run / duration_s
    final_loss: float | None  # mean loss over the last chunk run; None when no step ran
    final_accuracy: float | None  # mean accuracy over the last chunk run; None when no step ran
    # Compiled steps alone: the steps after the first chunk (whose call includes compilation)
    # over their time; all steps when there was one chunk. None when no step ran.
    training_steps_per_s: float | None = None
    #: The runs trained beside this one in its pack (``worker.training.pack``), by id.
    packed_with: tuple[int, ...] = ()
    #: The TensorFlow release that trained it (the process that trained may not be the job's:
    #: ``worker.training.trainer_process``).
    tensorflow_version: str = ""


def frozen_array(array: npt.ArrayLike) -> FloatArray:
    """A read-only float32 copy of ``array``."""
    copy = np.array(array, dtype=np.float32, copy=True)
    copy.flags.writeable = False
    return copy


def initial_state(config: TrainConfig, dims: ModelDims = FASHION_MNIST_DIMS) -> TrainingState:
    """The state before step 1: weights drawn from the seed (or zeros), zero velocities.

    ``W`` is drawn first, with shape ``(D, C)``, then ``b``: for 784 x 10 the very numbers every
    run drew before datasets, so old runs resume and repeat bit-identical.
    """
    shapes = dims.array_shapes()
    if config.init is Init.ZEROS:
        weights = {name: np.zeros(shapes[name], np.float32) for name in WEIGHT_NAMES}
    else:
        # The notebook draws both W and b from a standard normal.
        rng = np.random.default_rng((config.seed_value, INIT_STREAM))
        weights = {
            name: rng.standard_normal(shapes[name], dtype=np.float32) for name in WEIGHT_NAMES
        }
    if config.momentum > 0:
        weights |= {name: np.zeros(shapes[name], np.float32) for name in VELOCITY_NAMES}
    return TrainingState(step=0, arrays={k: frozen_array(v) for k, v in weights.items()})


def check_weights(
    arrays: Mapping[str, npt.ArrayLike],
    names: tuple[str, ...],
    dims: ModelDims = FASHION_MNIST_DIMS,
    *,
    dataset: str | None = None,
) -> None:
    """Check that ``arrays`` holds ``names`` with the shapes of a model of width ``dims``.

    Args:
        arrays: The weights (a checkpoint's, the final ones).
        names: The arrays that must be there.
        dims: The width the data calls for.
        dataset: How messages name the data (``"iris@2 (3f2a…)"``); None says nothing of it.

    Raises:
        IncompatibleWeightsError: naming the missing array or the wrong shape.
    """
    shapes = dims.array_shapes()
    for name in names:
        if name not in arrays:
            raise IncompatibleWeightsError(
                f"weights lack the array {name!r} (have: {', '.join(sorted(arrays)) or 'none'})"
            )
        shape = np.shape(arrays[name])
        if shape != shapes[name]:
            problem = f"array {name!r} has shape {shape}, expected {shapes[name]}"
            if dataset is not None and len(shape) == len(shapes[name]):
                problem += (
                    f": the weights were trained on other data than the run's dataset "
                    f"{dataset} ({dims.describe()}); evaluate or resume them with their own "
                    "dataset, or train a new run on this one"
                )
            raise IncompatibleWeightsError(problem)


def check_resume_state(
    state: TrainingState,
    config: TrainConfig,
    dims: ModelDims = FASHION_MNIST_DIMS,
    *,
    dataset: str | None = None,
) -> None:
    """Check that ``state`` can continue a run of ``config`` on data of width ``dims``.

    Raises:
        IncompatibleWeightsError: when the step is out of range or an array is missing or has
            the wrong shape (e.g. no velocities for a momentum run).
    """
    if not 0 <= state.step <= config.steps:
        raise IncompatibleWeightsError(
            f"cannot resume at step {state.step}: the run has {config.steps} steps"
        )
    names = WEIGHT_NAMES + (VELOCITY_NAMES if config.momentum > 0 else ())
    check_weights(state.arrays, names, dims, dataset=dataset)
