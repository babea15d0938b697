"""TensorFlow process set-up, device choice and the device-resident training set.

Importing this module imports TensorFlow: only the process that trains (a forked worker child, the
embedded CLI running a job, a benchmark) ever does.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from worker.config import Device
from worker.errors import DeviceUnavailableError
from worker.tensorflow_import import tf
from worker.training_data import TrainingData

logger = logging.getLogger(__name__)

#: Threads inside one op. One: a training step's products are small (batch 128 against 784x10 for
#: the seed's job) and every step depends on the one before, so splitting each product across cores
#: costs more in synchronisation than it gains. Measured on the 2-core Xeon of CI (TF 2.21, XLA,
#: the same process alternating): the seed's chunk trains at ~7,000 steps/s with one thread against
#: ~5,000 with two, and a 10,000x100 model at ~190 against ~140. The weights are bit-identical
#: either way (checked at 784x10, with and without XLA), so the count is not part of a run's record.
INTRA_OP_THREADS = 1

_CONFIGURED = threading.Event()
_CONFIGURE_LOCK = threading.Lock()


def configure_tensorflow(
    *, intra_op_threads: int | None = None, inter_op_threads: int = 1, deterministic: bool = True
) -> None:
    """Set TensorFlow's thread pools and op determinism, once per process.

    Call it before any TensorFlow op runs; ``train`` and ``evaluate`` call it with the defaults, so
    a later call (or one after TensorFlow started) changes nothing and only logs a warning.

    Args:
        intra_op_threads: Threads inside one op (a matmul); None means
            :data:`INTRA_OP_THREADS`.
        inter_op_threads: Ops run concurrently. The training step is a chain of dependent ops,
            so 1 avoids scheduling overhead (measured: 2 was ~25% slower on 2 cores).
        deterministic: Turn on ``tf.config.experimental.enable_op_determinism`` so that a run
            and its resumption produce bit-identical weights.
    """
    with _CONFIGURE_LOCK:
        if _CONFIGURED.is_set():
            return
        _CONFIGURED.set()
        intra = intra_op_threads or INTRA_OP_THREADS
        try:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
            tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
        except RuntimeError:  # TensorFlow already ran an op in this process
            logger.warning("TensorFlow already started; its thread pools were left as they are")
        if deterministic:
            tf.config.experimental.enable_op_determinism()


def start_thread_pools() -> None:
    """Configure TensorFlow (:func:`configure_tensorflow`) and make it create its thread pools now,
    in the calling thread, by running one tiny op and one tiny XLA computation.

    A thread inherits its creator's scheduling policy, and TensorFlow creates its pools (the op
    pools, XLA's Eigen pool) in whichever thread first needs them. A spare job process compiles
    its chunk on idle CPU (``worker.cluster.idle_cpu``); the pools its jobs will train on must not
    be born there, so the warm-up calls this from a thread of normal priority first.
    """
    configure_tensorflow()
    with tf.device("/CPU:0"):  # spares run on CPU workers only (worker.cluster.standby)
        one = tf.ones((1, 1))
        tf.function(lambda x: tf.matmul(x, x), jit_compile=True, autograph=False)(one)


@dataclass(frozen=True)
class ResolvedDevice:
    """The device a job actually runs on."""

    name: str  # for tf.device(), e.g. "/CPU:0"
    label: str  # for people and the run's summary, e.g. "GPU:0 (NVIDIA H100 80GB HBM3)"
    is_gpu: bool


def resolve_device(device: Device) -> ResolvedDevice:
    """Turn the config's ``auto``/``cpu``/``gpu`` into the device to use.

    Raises:
        DeviceUnavailableError: when ``gpu`` is asked for and TensorFlow sees no GPU.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if device is Device.GPU and not gpus:
        raise DeviceUnavailableError(
            "--device gpu was asked for but TensorFlow sees no GPU on this worker; use "
            "--device auto or cpu, or route the job to a GPU worker's queue"
        )
    if device is Device.CPU or not gpus:
        return ResolvedDevice(name="/CPU:0", label="CPU:0", is_gpu=False)
    model = tf.config.experimental.get_device_details(gpus[0]).get("device_name")
    label = f"GPU:0 ({model})" if model else "GPU:0"
    return ResolvedDevice(name="/GPU:0", label=label, is_gpu=True)


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class DeviceDataset:
    """The training split as tensors on one device: features as the step takes them, labels."""

    source: TrainingData  # keeps the arrays (and so the cache key's id) alive
    images: tf.Tensor  # (n, D) uint8 pixels or float32 standardised features
    labels: tf.Tensor  # (n,) int32


_RESIDENT: dict[tuple[int, str], DeviceDataset] = {}
_RESIDENT_LIMIT = 2
_RESIDENT_LOCK = threading.Lock()


def resident_training_set(data: TrainingData, device: ResolvedDevice) -> DeviceDataset:
    """The training split copied once to ``device`` and kept there for the next jobs."""
    key = (id(data), device.name)
    with _RESIDENT_LOCK:
        cached = _RESIDENT.get(key)
        if cached is not None and cached.source is data:
            return cached
        with tf.device(device.name):
            resident = DeviceDataset(
                source=data,
                images=tf.constant(data.x_train),
                labels=tf.constant(data.y_train),
            )
        while len(_RESIDENT) >= _RESIDENT_LIMIT:
            _RESIDENT.pop(next(iter(_RESIDENT)))
        _RESIDENT[key] = resident
        return resident
