"""Training speed: the seed notebook's loop, Keras ``fit``, trainq's ``train`` and a NumPy bound.

One run on one machine, the seed's job (batch 128, learning rate 0.01, 10,000 steps by default):

(a) the notebook's loop as written: eager, float64, ``tf.data`` ``repeat().shuffle(60000)
    .batch(128)``, GradientTape, ``optimizer.apply_gradients``, a second prediction after each
    update, loss and accuracy of every step formatted (the notebook prints them; here the line is
    built but not printed, so terminal speed does not count);
(b) Keras ``model.fit``: one ``Dense(10, softmax)``, SGD(0.01), batch 128, per-batch loss and
    accuracy as Keras computes them, epochs chosen so the steps come closest to the target;
(c) trainq's ``train`` with every step's metrics collected through ``on_chunk``: cold (first job
    in the process: tracing and XLA compilation included) and warm (a second job of the same
    shape); also the same loop compiled without XLA, to show why XLA is on;
(d) a NumPy lower bound: only each step's two matmuls (``x @ W`` and ``x.T @ d``) on one
    pre-sliced, cache-resident float32 batch.

(c) warm and (d) are the median of three runs; the machine may be shared, and the 1-minute load
average before and after is printed with the figures. Then the full-test accuracy of (a), (b) and
(c) after equal steps (trainq's ``evaluate``), and a recommended recipe with its time. Run::

    python -m bench.training_bench [--steps 10000] [--seed-steps N] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from worker.config import Init, Schedule, TrainConfig
from worker.data import FashionMnist, load_fashion_mnist

BATCH = 128
LEARNING_RATE = 0.01
SEED = 1
RECIPE = {
    "init": Init.ZEROS,
    "learning_rate": 0.05,
    "momentum": 0.9,
    "schedule": Schedule.COSINE,
}


@dataclass(frozen=True)
class Timing:
    """Steps run, their wall time, and the weights they produced."""

    steps: int
    seconds: float
    arrays: dict[str, npt.NDArray[np.float32]] | None = None

    @property
    def steps_per_s(self) -> float:
        """Throughput."""
        return self.steps / self.seconds


def seed_loop(data: FashionMnist, steps: int) -> Timing:
    """(a) The notebook's training cell, cell by cell (its names translated)."""
    from worker.tensorflow_import import tf

    tf.random.set_seed(SEED)  # the notebook is unseeded; a seed changes nothing of the speed
    x_train = tf.reshape(data.train_images.reshape(-1, 28, 28) / 255.0, shape=(-1, 784))
    weights = tf.Variable(tf.random.normal(shape=(784, 10), dtype=tf.float64))
    bias = tf.Variable(tf.random.normal(shape=(10,), dtype=tf.float64))

    def logistic_regression(x: Any) -> Any:
        return tf.add(tf.matmul(x, weights), bias)

    def cross_entropy(y_true: Any, y_pred: Any) -> Any:
        y_true = tf.one_hot(y_true, 10)
        losses = tf.nn.softmax_cross_entropy_with_logits(labels=y_true, logits=y_pred)
        return tf.reduce_mean(losses)

    def gradient(x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            loss_value = cross_entropy(y, logistic_regression(x))
        return tape.gradient(loss_value, [weights, bias])

    def hits(y_true: Any, y_pred: Any) -> Any:
        y_true = tf.cast(y_true, dtype=tf.int32)
        predictions = tf.cast(tf.argmax(y_pred, axis=1), dtype=tf.int32)
        return tf.reduce_mean(tf.cast(tf.equal(y_true, predictions), dtype=tf.float32))

    optimizer = tf.optimizers.SGD(LEARNING_RATE)
    dataset = tf.data.Dataset.from_tensor_slices((x_train, data.train_labels))
    dataset = dataset.repeat().shuffle(60_000).batch(BATCH)
    started = time.perf_counter()
    for index, (batch_x, batch_y) in enumerate(dataset.take(steps), 1):
        optimizer.apply_gradients(zip(gradient(batch_x, batch_y), [weights, bias], strict=True))
        y_pred = logistic_regression(batch_x)
        error = cross_entropy(batch_y, y_pred)
        hit = hits(batch_y, y_pred)
        _line = f"Número del lote: {index}, Error del Modelo: {error}, Aciertos: {hit}"
    seconds = time.perf_counter() - started
    arrays = {"W": weights.numpy().astype(np.float32), "b": bias.numpy().astype(np.float32)}
    return Timing(steps, seconds, arrays)


def keras_fit(data: FashionMnist, steps: int) -> Timing:
    """(b) Keras ``fit`` on the same data; returns the steps actually run."""
    import keras

    batches_per_epoch = math.ceil(len(data.train_labels) / BATCH)
    epochs = max(1, round(steps / batches_per_epoch))
    x_train = data.train_images.astype(np.float32) / 255.0
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(
        optimizer=keras.optimizers.SGD(LEARNING_RATE),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    started = time.perf_counter()
    model.fit(x_train, data.train_labels, batch_size=BATCH, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - started
    kernel, bias = (np.asarray(v, dtype=np.float32) for v in model.layers[0].get_weights())
    return Timing(epochs * batches_per_epoch, seconds, {"W": kernel, "b": bias})


def trainq_train(data: FashionMnist, config: TrainConfig) -> tuple[Timing, float]:
    """(c) ``train`` collecting every chunk; returns the timing and the seconds to the 1st chunk."""
    from worker.training import ChunkReport, train

    chunks: list[ChunkReport] = []
    first_chunk_at: list[float] = []

    def collect(report: ChunkReport) -> None:
        if not chunks:
            first_chunk_at.append(time.perf_counter())
        chunks.append(report)

    started = time.perf_counter()
    result = train(config, data, on_chunk=collect)
    seconds = time.perf_counter() - started
    assert sum(len(c.loss) for c in chunks) == config.steps  # every step's metrics arrived
    return Timing(config.steps, seconds, dict(result.state.arrays)), first_chunk_at[0] - started


def numpy_bound(data: FashionMnist, steps: int) -> Timing:
    """(d) The two matmuls of each step, nothing else, on one cache-resident batch."""
    x = data.train_images[:BATCH].astype(np.float32) / 255.0
    weights = np.zeros((784, 10), np.float32)
    delta = np.random.default_rng(SEED).standard_normal((BATCH, 10), dtype=np.float32)
    for _ in range(100):  # warm the caches and the BLAS threads
        _ = x @ weights, x.T @ delta
    started = time.perf_counter()
    for _ in range(steps):
        _ = x @ weights, x.T @ delta
    return Timing(steps, time.perf_counter() - started)


def test_accuracy(data: FashionMnist, timing: Timing) -> float:
    """Full-test-split accuracy of a timing's weights, through trainq's ``evaluate``."""
    from worker.evaluation import evaluate

    assert timing.arrays is not None
    return evaluate(timing.arrays, *data.split("test")).accuracy


def without_xla(function: Callable[[], Timing]) -> Timing:
    """Run ``function`` twice with trainq's chunks compiled as a plain graph instead of with XLA;
    return the second (warm) timing."""
    from worker.training import xla_choice

    saved, xla_choice.USE_XLA = xla_choice.USE_XLA, False
    try:
        function()
        return function()
    finally:
        xla_choice.USE_XLA = saved


def median(timings: list[Timing]) -> Timing:
    """The run of median duration (this machine may be shared: the median resists outliers)."""
    return sorted(timings, key=lambda timing: timing.seconds)[len(timings) // 2]


def measure(data: FashionMnist, steps: int, seed_steps: int) -> dict[str, Any]:
    """Run every variant; return the timings (and trainq's seconds to its first chunk)."""
    config = TrainConfig(steps=steps, batch_size=BATCH, learning_rate=LEARNING_RATE, seed=SEED)
    cold, cold_first_s = trainq_train(data, config)
    # Warm: further jobs of the same shape in this process, each with its own seed (new data order).
    warm_runs = [
        trainq_train(data, config.model_copy(update={"seed": SEED + i})) for i in (1, 2, 3)
    ]
    equal = config.model_copy(update={"steps": seed_steps})
    return {
        "cold": cold,
        "cold_first_s": cold_first_s,
        "warm": median([timing for timing, _ in warm_runs]),
        "warm_first_s": warm_runs[0][1],
        "no_xla": without_xla(lambda: trainq_train(data, config)[0]),
        "recipe": trainq_train(data, config.model_copy(update=RECIPE))[0],
        "bound": median([numpy_bound(data, steps) for _ in range(3)]),
        "seed": seed_loop(data, seed_steps),
        "keras": keras_fit(data, steps),
        "trainq_at_seed_steps": cold if seed_steps == steps else trainq_train(data, equal)[0],
    }


def run(steps: int, seed_steps: int) -> dict[str, Any]:
    """Run every variant once (trainq warm and NumPy: median of 3); return the figures."""
    from worker.tensorflow_import import tf
    from worker.training import configure_tensorflow

    configure_tensorflow()  # the same threads and op determinism for every variant
    data = load_fashion_mnist()
    load_before = os.getloadavg()[0]
    t = measure(data, steps, seed_steps)
    seed, keras, warm, bound = t["seed"], t["keras"], t["warm"], t["bound"]
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "tensorflow": tf.__version__,
            "numpy": np.__version__,
            "load_average_1min": [load_before, os.getloadavg()[0]],
        },
        "steps": steps,
        "steps_per_s": {
            "a_seed_loop": seed.steps_per_s,
            "b_keras_fit": keras.steps_per_s,
            "c_trainq_warm": warm.steps_per_s,
            "c_trainq_cold": t["cold"].steps_per_s,
            "c_trainq_no_xla": t["no_xla"].steps_per_s,
            "d_numpy_matmuls": bound.steps_per_s,
        },
        "ratios": {
            "c_over_a": warm.steps_per_s / seed.steps_per_s,
            "c_over_b": warm.steps_per_s / keras.steps_per_s,
            "c_over_d": warm.steps_per_s / bound.steps_per_s,
        },
        "seconds_to_first_chunk": {"cold": t["cold_first_s"], "warm": t["warm_first_s"]},
        "runs": {"a_steps": seed_steps, "a_seconds": seed.seconds, "b_steps": keras.steps},
        "test_accuracy": {
            "steps": seed_steps,
            "a_seed_loop": test_accuracy(data, seed),
            "c_trainq": test_accuracy(data, t["trainq_at_seed_steps"]),
            "b_keras_fit": test_accuracy(data, keras),
            "b_steps": keras.steps,
        },
        "recipe": {
            "config": {**{k: str(v) for k, v in RECIPE.items()}, "steps": steps, "batch": BATCH},
            "test_accuracy": test_accuracy(data, t["recipe"]),
            "train_seconds": t["recipe"].seconds,
        },
    }


def render(figures: dict[str, Any]) -> str:
    """The figures as a small text report."""
    rates, ratios = figures["steps_per_s"], figures["ratios"]
    accuracy, recipe = figures["test_accuracy"], figures["recipe"]
    machine = figures["machine"]
    lines = [
        f"{machine['cpus']} CPUs, TensorFlow {machine['tensorflow']}, NumPy {machine['numpy']}, "
        f"1-min load average before/after: {machine['load_average_1min']}",
        f"training speed, {figures['steps']} steps of batch {BATCH} (steps/s):",
    ]
    lines += [f"  {name:<18} {value:>10,.0f}" for name, value in rates.items()]
    lines += [f"  {name:<18} {value:>10.1f}x" for name, value in ratios.items()]
    first = figures["seconds_to_first_chunk"]
    lines.append(f"  first chunk after  cold {first['cold']:.3f} s, warm {first['warm']:.3f} s")
    if figures["runs"]["a_steps"] != figures["steps"]:
        lines.append(f"  (a) ran {figures['runs']['a_steps']} steps; its rate is extrapolated")
    lines.append(f"  (b) ran {figures['runs']['b_steps']} steps (whole epochs)")
    lines.append(
        f"full-test accuracy after {accuracy['steps']} steps: (a) {accuracy['a_seed_loop']:.4f}, "
        f"(c) {accuracy['c_trainq']:.4f}; (b) after {accuracy['b_steps']}: "
        f"{accuracy['b_keras_fit']:.4f}"
    )
    lines.append(
        f"recipe {recipe['config']}: test accuracy {recipe['test_accuracy']:.4f}, "
        f"trained in {recipe['train_seconds']:.2f} s"
    )
    return "\n".join(lines)


def main() -> None:
    """Parse the options, run, print."""
    parser = argparse.ArgumentParser(prog="python -m bench.training_bench", description=__doc__)
    parser.add_argument("--steps", type=int, default=10_000, help="steps per variant")
    parser.add_argument(
        "--seed-steps", type=int, default=None, help="steps of (a), default --steps; fewer are "
        "extrapolated and the accuracies compared at that count"
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    options = parser.parse_args()
    figures = run(options.steps, options.seed_steps or options.steps)
    print(json.dumps(figures, indent=2) if options.json else render(figures))


if __name__ == "__main__":
    main()
