"""Packed trials: trial-steps/s of K trials in one compiled call, against today's path and a bound.

For K = 1, 4, 16, 64, 256, side by side in one warm process on the real Fashion-MNIST (batch
128, ``chunk_steps`` 500 as trainq's default, so 500 steps per compiled call; momentum on):

(a) **packed**: ``packed_chunk_function(ChunkShape(..., pack=K))``, the call a pack of K makes
    per chunk (``worker.training.pack``): every call runs 500 steps of all K trials;
(b) **unpacked** (today's path): K trials' own weights, one ``chunk_function`` call of 500 steps
    per trial, the K trials one after another (round-robin while the time lasts: at K = 256 a
    round takes longer than the timing window, so only the first trials of it are timed, which
    is the same per-call work);
(c) **bound**: NumPy, one thread (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and
    ``MKL_NUM_THREADS`` set to 1 before NumPy loads), the packed step's two products alone on
    cache-resident float32: ``x (128 x 784) @ W (784 x 10K)`` and the gradient product
    ``(10K x 128) @ x``, in a loop; trial-steps/s = K / seconds per step.

Both TensorFlow paths run as trainq configures them (``configure_tensorflow``: one intra-op and
one inter-op thread, op determinism, XLA), so every figure is one core's. Indices and rates are
computed before the timing (both paths would compute them per call; packing computes them once
per K trials, which these figures leave out). Each figure is the median over ``--rounds``
rounds, the three ways alternating their order per round; the 1-minute load average before and
after is printed, since the machine may be shared.

Then the memory of a pack of K = ``--memory-pack`` (256): a fresh child process, TensorFlow
started, the data resident and one K = 1 run trained, trains K real runs as seats of one
``Pack`` (two chunks, a checkpoint at each), sampling its RSS every 2 ms: the growth over the
RSS before the pack (which includes compiling the pack's code) against
``worker.pack_plan.pack_memory_bytes``.

Run::

    python -m bench.pack_bench                 # K = 1..256, 3 rounds of ~2 s per way (~3 min)
    python -m bench.pack_bench --quick         # 1 round of ~0.3 s per way, 100-step calls
    python -m bench.pack_bench --json
    python -m bench.pack_bench --intra-op-threads 2 --memory-pack 0   # each product on 2 threads
"""

from __future__ import annotations

import os

# Before NumPy (and its OpenBLAS) loads: the bound is one core's, as the TensorFlow paths are.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

WIDTHS = (1, 4, 16, 64, 256)
BATCH = 128
SEED = 1


def _load() -> float:
    return os.getloadavg()[0]


class Bench:
    """The compiled functions, data and precomputed inputs of one shape, warm."""

    def __init__(self, call_steps: int, intra_op_threads: int = 1) -> None:
        from worker.data import load_fashion_mnist
        from worker.training.batches import batch_indices
        from worker.training.runtime import (
            configure_tensorflow,
            resident_training_set,
            resolve_device,
        )
        from worker.training_data import training_data

        # As trainq: one intra-op thread (unless asked), determinism.
        configure_tensorflow(intra_op_threads=intra_op_threads)
        from worker.config import Device

        self.device = resolve_device(Device.CPU)
        self.data = training_data(load_fashion_mnist())
        self.dataset = resident_training_set(self.data, self.device)
        self.call_steps = call_steps
        self.indices = batch_indices(
            SEED, BATCH, 0, call_steps, n_examples=self.data.train_examples
        ).astype(np.int32)

    def shape(self, pack: int) -> Any:
        from worker.training.step import ChunkShape

        dims = self.data.dims
        return ChunkShape(
            device=self.device.name,
            batch_size=BATCH,
            steps_per_call=self.call_steps,
            momentum=True,
            xla=True,
            features=dims.features,
            classes=dims.classes,
            feature_kind=self.data.feature_kind.value,
            pack=pack,
        )

    def packed(self, k: int) -> Callable[[], int]:
        """One packed call of K trials; returns the trial-steps it ran."""
        from worker.pack_plan import packed_rows
        from worker.tensorflow_import import tf
        from worker.training.packed_step import packed_chunk_function

        function = packed_chunk_function(self.shape(k))
        classes, features = self.data.dims.classes, self.data.dims.features
        rng = np.random.default_rng(k)
        rows = packed_rows(k, classes)
        weights = (rng.standard_normal((rows, features)) * 0.01).astype(np.float32)
        weights[k * classes :] = 0.0
        with tf.device(self.device.name):
            params = [
                tf.constant(weights),
                tf.zeros((k, classes)),
                tf.zeros((rows, features)),
                tf.zeros((k, classes)),
            ]
        rates = np.full((self.call_steps, k), 0.01, np.float32)
        n_steps = tf.constant(self.call_steps, tf.int32)
        l2 = tf.zeros(k)
        momentum = tf.fill([k], 0.9)
        images, labels = self.dataset.images, self.dataset.labels

        def call() -> int:
            nonlocal params
            with tf.device(self.device.name):
                out, loss, _, _ = function(
                    images, labels, tuple(params), self.indices, rates, n_steps, l2, momentum
                )
            loss.numpy()  # the real path fetches every call's metrics
            params = list(out)
            return k * self.call_steps

        call()  # trace and compile outside the timing
        return call

    def unpacked(self, k: int) -> Callable[[], int]:
        """One trial's call of today's path, the next trial at each call (round-robin)."""
        from worker.tensorflow_import import tf
        from worker.training.step import chunk_function

        function = chunk_function(self.shape(1))
        classes, features = self.data.dims.classes, self.data.dims.features
        rng = np.random.default_rng(k)
        with tf.device(self.device.name):
            trials = [
                [
                    tf.constant(
                        (rng.standard_normal((classes, features)) * 0.01).astype(np.float32)
                    ),
                    tf.zeros(classes),
                    tf.zeros((classes, features)),
                    tf.zeros(classes),
                ]
                for _ in range(k)
            ]
        rates = np.full(self.call_steps, 0.01, np.float32)
        n_steps = tf.constant(self.call_steps, tf.int32)
        l2, momentum = tf.constant(0.0), tf.constant(0.9)
        images, labels = self.dataset.images, self.dataset.labels
        turn = [0]

        def call() -> int:
            trial = trials[turn[0] % k]
            turn[0] += 1
            with tf.device(self.device.name):
                out, loss, _, _ = function(
                    images, labels, tuple(trial), self.indices, rates, n_steps, l2, momentum
                )
            loss.numpy()
            trial[:] = list(out)
            return self.call_steps

        call()
        turn[0] = 0
        return call

    def bound(self, k: int) -> Callable[[], int]:
        """The packed step's two products in NumPy, 50 steps per call."""
        classes, features = self.data.dims.classes, self.data.dims.features
        rng = np.random.default_rng(k)
        x = (rng.random((BATCH, features)) + 0.0).astype(np.float32)
        weights = (rng.standard_normal((features, k * classes)) * 0.01).astype(np.float32)
        grad_in = rng.standard_normal((k * classes, BATCH)).astype(np.float32)
        logits = np.empty((BATCH, k * classes), np.float32)
        grad = np.empty((k * classes, features), np.float32)

        def call() -> int:
            for _ in range(50):
                np.matmul(x, weights, out=logits)
                np.matmul(grad_in, x, out=grad)
            return 50 * k

        call()
        return call


def _timed(call: Callable[[], int], seconds: float) -> float:
    """Trial-steps/s of ``call`` repeated for at least ``seconds`` (at least once)."""
    done, started = 0, time.perf_counter()
    while True:
        done += call()
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done / elapsed


def measure(
    widths: tuple[int, ...], call_steps: int, seconds: float, rounds: int, intra_op_threads: int = 1
) -> Any:
    """Every way at every width, ``rounds`` times, alternating the order per round."""
    bench = Bench(call_steps, intra_op_threads)
    rows = []
    for k in widths:
        ways = {"packed": bench.packed(k), "unpacked": bench.unpacked(k), "bound": bench.bound(k)}
        figures: dict[str, list[float]] = {name: [] for name in ways}
        load_before = _load()
        for round_index in range(rounds):
            order = list(ways) if round_index % 2 == 0 else list(reversed(ways))
            for name in order:
                figures[name].append(_timed(ways[name], seconds))
        medians = {name: statistics.median(values) for name, values in figures.items()}
        rows.append(
            {
                "k": k,
                "packed_trial_steps_per_s": medians["packed"],
                "unpacked_trial_steps_per_s": medians["unpacked"],
                "bound_trial_steps_per_s": medians["bound"],
                "packed_over_unpacked": medians["packed"] / medians["unpacked"],
                "packed_over_bound": medians["packed"] / medians["bound"],
                "load_1min": [load_before, _load()],
            }
        )
        print(_row_line(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _row_line(row: dict[str, Any]) -> str:
    return (
        f"K={row['k']:>4}  packed {row['packed_trial_steps_per_s']:>10,.0f}  unpacked "
        f"{row['unpacked_trial_steps_per_s']:>8,.0f}  bound "
        f"{row['bound_trial_steps_per_s']:>10,.0f}"
        f"  packed/unpacked {row['packed_over_unpacked']:>6.1f}x  packed/bound "
        f"{row['packed_over_bound']:>5.2f}  load {row['load_1min'][0]:.1f}->"
        f"{row['load_1min'][1]:.1f}"
    )


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_child(width: int, chunk_steps: int) -> dict[str, Any]:
    """In this (fresh) process: RSS growth while ``width`` real runs train as one pack."""
    from worker.config import TrainConfig
    from worker.data import load_fashion_mnist
    from worker.pack_plan import pack_memory_bytes
    from worker.training import train
    from worker.training.pack import Pack
    from worker.training.xla_choice import steps_per_call
    from worker.training_data import training_data

    data = training_data(load_fashion_mnist())
    train(TrainConfig(steps=chunk_steps, chunk_steps=chunk_steps, seed=SEED), data)
    baseline = _rss_bytes()
    peak = [baseline]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    pack = Pack(width)
    seats = [pack.seat() for _ in range(width)]
    results: list[Any] = []

    def sit(seat: Any, index: int) -> None:
        config = TrainConfig(
            steps=2 * chunk_steps,
            chunk_steps=chunk_steps,
            checkpoint_every_steps=chunk_steps,
            learning_rate=0.003 * (1 + index % 10),
            momentum=0.9,
            seed=SEED,
            pack=width,
        )
        try:
            results.append(seat.train(config, data))
        finally:
            seat.withdraw()

    threads = [threading.Thread(target=sit, args=(s, i)) for i, s in enumerate(seats)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    pack.run()
    seconds = time.perf_counter() - started
    for thread in threads:
        thread.join()
    stop.set()
    sampler.join()
    classes, features = data.dims.classes, data.dims.features
    return {
        "pack": width,
        "runs_completed": sum(r.completed for r in results),
        "steps_each": 2 * chunk_steps,
        "seconds": seconds,
        "rss_before_mib": baseline / 2**20,
        "rss_growth_peak_mib": (peak[0] - baseline) / 2**20,
        "formula_mib": pack_memory_bytes(
            width, features, classes, steps_per_call(chunk_steps, BATCH)
        )
        / 2**20,
    }


def memory(width: int, chunk_steps: int) -> dict[str, Any]:
    """:func:`memory_child` in a fresh process, so nothing of the throughput rounds counts."""
    command = [sys.executable, "-m", "bench.pack_bench", "--memory-child", str(width)]
    command += ["--chunk-steps", str(chunk_steps)]
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=900)
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    """Parse the options, measure, print a table or JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 round of ~0.3 s, 100-step calls")
    parser.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    parser.add_argument("--chunk-steps", type=int, default=None, help="steps per call")
    parser.add_argument("--seconds", type=float, default=None, help="per way and round")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--memory-pack", type=int, default=256, help="0: skip the memory figure")
    parser.add_argument("--memory-child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--intra-op-threads",
        type=int,
        default=1,
        help="TensorFlow's threads inside one op (trainq uses 1; 2 splits each product over 2 "
        "cores: the figures are then no longer one core's)",
    )
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    chunk_steps = options.chunk_steps or (100 if options.quick else 500)
    if options.memory_child:
        print(json.dumps(memory_child(options.memory_child, chunk_steps)))
        return
    seconds = options.seconds or (0.3 if options.quick else 2.0)
    rounds = options.rounds or (1 if options.quick else 3)
    widths = tuple(int(w) for w in options.widths.split(","))
    figures: dict[str, Any] = {
        "threads": {
            "tensorflow_intra_op": options.intra_op_threads,
            "tensorflow_inter_op": 1,
            "numpy": os.environ["OPENBLAS_NUM_THREADS"],
        },
        "steps_per_call": chunk_steps,
        "seconds_per_way": seconds,
        "rounds": rounds,
        "widths": measure(widths, chunk_steps, seconds, rounds, options.intra_op_threads),
    }
    if options.memory_pack:
        load_before = _load()
        figures["memory"] = memory(options.memory_pack, chunk_steps) | {
            "load_1min": [load_before, _load()]
        }
    if options.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"trial-steps/s (TF {options.intra_op_threads} intra-op thread(s), NumPy 1 thread), "
        f"{chunk_steps} steps per call, median of {rounds} rounds of {seconds:g} s per way"
    )
    for row in figures["widths"]:
        print(_row_line(row))
    if "memory" in figures:
        m = figures["memory"]
        print(
            f"pack of {m['pack']}: RSS grew {m['rss_growth_peak_mib']:.1f} MiB at its peak "
            f"(from {m['rss_before_mib']:.0f} MiB; {m['runs_completed']} runs of "
            f"{m['steps_each']} steps in {m['seconds']:.1f} s); pack_memory_bytes "
            f"{m['formula_mib']:.1f} MiB; load {m['load_1min'][0]:.1f}->{m['load_1min'][1]:.1f}"
        )


if __name__ == "__main__":
    main()
