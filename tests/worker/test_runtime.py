"""TensorFlow's thread pools: one thread per op for training, and no difference in the weights."""

from __future__ import annotations

import subprocess
import sys

TRAIN_AND_REPORT = """
import hashlib, sys
import numpy as np
from worker.training.runtime import configure_tensorflow
threads = int(sys.argv[1])
if threads:
    configure_tensorflow(intra_op_threads=threads)
from worker.config import TrainConfig
from worker.data import load_fashion_mnist
from worker.tensorflow_import import tf
from worker.training import train
result = train(TrainConfig(steps=300, seed=3, momentum=0.9, xla=True), load_fashion_mnist())
arrays = result.state.arrays
digest = hashlib.sha256(b"".join(np.ascontiguousarray(arrays[k]).tobytes() for k in sorted(arrays)))
print(tf.config.threading.get_intra_op_parallelism_threads(), digest.hexdigest())
"""


def trained_with(threads: int) -> tuple[int, str]:
    """(intra-op threads TensorFlow used, SHA-256 of the final weights) of a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", TRAIN_AND_REPORT, str(threads)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    used, digest = result.stdout.split()[-2:]
    return int(used), digest


def test_training_uses_one_thread_per_op_and_two_threads_give_the_same_weights() -> None:
    default_threads, default_weights = trained_with(0)
    two_threads, two_thread_weights = trained_with(2)
    assert (default_threads, two_threads) == (1, 2)
    assert default_weights == two_thread_weights
