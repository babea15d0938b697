"""``train``: run a config's SGD steps in compiled chunks, reporting each chunk as it finishes.

Reads top to bottom: set TensorFlow up once, pick the device, start from the seed's initial state
(or a checkpoint), then run chunk after chunk. Chunk boundaries are multiples of
``chunk_steps`` in global step numbers, also after a resume, so that stored metric rows stay
aligned; a chunk runs as one compiled call (several only when ``chunk_steps * batch_size`` exceeds
``xla_choice.MAX_INDICES_PER_CALL``, to bound the index tensor). After each chunk: check the loss
and the weights are finite, deliver the chunk (with the state when a checkpoint is due), ask
whether to stop.

Metric semantics: a step's loss and accuracy are those of its batch under the weights *before*
that step's update (the forward pass the gradient needs). The notebook instead re-predicts after
the update; that costs a third matmul per step and measures the batch the model just fitted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from worker.config import TrainConfig
from worker.data import FashionMnist
from worker.errors import DivergenceError
from worker.holdout import holdout
from worker.tensorflow_import import tf
from worker.training import compile_cache
from worker.training.batches import batch_indices, learning_rates
from worker.training.runtime import (
    DeviceDataset,
    ResolvedDevice,
    configure_tensorflow,
    resident_training_set,
    resolve_device,
)
from worker.training.state import (
    ChunkReport,
    FloatArray,
    TrainingState,
    TrainResult,
    check_resume_state,
    frozen_array,
    initial_state,
)
from worker.training.step import ChunkFn, ChunkShape, chunk_function
from worker.training.xla_choice import compiles_with_xla, steps_per_call
from worker.training_data import TrainingData, training_data


def train(
    config: TrainConfig,
    data: TrainingData | FashionMnist,
    *,
    resume_from: TrainingState | None = None,
    on_chunk: Callable[[ChunkReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train the logistic regression of ``config`` on ``data``'s training split.

    Args:
        config: A resolved config (its seed set).
        data: The dataset (``worker.training_data.load_training_data``; Fashion-MNIST as
            ``worker.data.load_fashion_mnist`` loads it is taken too).
        resume_from: A checkpoint state of this same run; training continues after its step and
            ends with weights bit-identical to an uninterrupted run (CPU, op determinism on).
        on_chunk: Called after every chunk, in order, with its per-step metrics (loss and
            accuracy measured before each step's update) and, when a checkpoint is due at its
            end or it is the last chunk, the state.
        should_stop: Asked after every chunk but the last (after ``on_chunk``); True ends the
            call early with ``completed=False`` and the state at that chunk's end.

    Returns:
        The final (or stopped-at) state and a summary of the call.

    Raises:
        InvalidConfigError: when the config has no seed (call ``config.resolved()`` first).
        IncompatibleWeightsError: when ``resume_from`` does not fit the config.
        DeviceUnavailableError: when the config asks for a GPU and there is none.
        DivergenceError: when the loss or the weights stop being finite; nothing of the
            diverged chunk is delivered and no non-finite weights are returned.
    """
    if config.pack > 1:  # a packed trial trained without its mates: the same numbers
        from worker.training.pack import train_in_pack_alone

        return train_in_pack_alone(
            config, data, resume_from=resume_from, on_chunk=on_chunk, should_stop=should_stop
        )
    started = time.perf_counter()
    seed = config.seed_value
    ready = training_data(data)
    if resume_from is not None:
        check_resume_state(resume_from, config, ready.dims, dataset=ready.label)
    configure_tensorflow()
    device = resolve_device(config.device)
    runner = _ChunkRunner(config, seed, device, resident_training_set(ready, device))
    runner.load(resume_from or initial_state(config, ready.dims))
    step, steps_run = runner.step, 0
    last: ChunkReport | None = None
    clock = TrainingClock()
    while step < config.steps:
        end = min(config.steps, (step // config.chunk_steps + 1) * config.chunk_steps)
        with clock.chunk(end - step):
            losses, accuracies = runner.run(step, end - step)
        due = end % config.checkpoint_every_steps == 0 or end == config.steps
        state = runner.state() if due else None
        last = ChunkReport(step + 1, losses, accuracies, state, device.label)
        step, steps_run = end, steps_run + len(losses)
        if on_chunk is not None:
            on_chunk(last)
        if step < config.steps and should_stop is not None and should_stop():
            break
    final_state = last.state if last is not None and last.state is not None else runner.state()
    return train_result(final_state, config, steps_run, device.label, started, last, clock)


def prepare(config: TrainConfig, data: TrainingData | FashionMnist) -> None:
    """Do now what the first ``train`` of ``config``'s shape would do before its first step.

    Sets TensorFlow up, copies the training split to the device and traces and compiles the
    chunk for ``config``'s shape (device, batch size, steps per call, momentum, the data's width
    and kind), running it for
    zero steps: nothing is trained and nothing is returned. A later ``train`` of any config of the
    same shape in this process starts at its first step (``worker.cluster.warm_up``).
    """
    ready = training_data(data)
    configure_tensorflow()
    device = resolve_device(config.device)
    runner = _ChunkRunner(config, config.seed_value, device, resident_training_set(ready, device))
    runner.load(initial_state(config, ready.dims))
    runner.compile()


def train_result(
    state: TrainingState,
    config: TrainConfig,
    steps_run: int,
    device_label: str,
    started: float,
    last: ChunkReport | None,
    clock: TrainingClock,
) -> TrainResult:
    """How a ``train`` call that started at ``started`` (``time.perf_counter``) ended."""
    duration_s = time.perf_counter() - started
    return TrainResult(
        state=state,
        completed=state.step == config.steps,
        steps_run=steps_run,
        device=device_label,
        duration_s=duration_s,
        steps_per_s=steps_run / duration_s if duration_s > 0 else 0.0,
        final_loss=float(np.mean(last.loss)) if last is not None else None,
        final_accuracy=float(np.mean(last.accuracy)) if last is not None else None,
        training_steps_per_s=clock.steps_per_s(),
        tensorflow_version=tf.__version__,
    )


class TrainingClock:
    """Times the compiled calls alone, leaving out the first chunk when there are more.

    The first chunk's call traces and compiles the step; counting it would make a short run look
    several times slower than the device is.
    """

    def __init__(self) -> None:
        self._chunks: list[tuple[int, float]] = []  # (steps, seconds) per chunk

    @contextmanager
    def chunk(self, n_steps: int) -> Iterator[None]:
        """Time one chunk of ``n_steps`` steps."""
        started = time.perf_counter()
        yield
        self.record(n_steps, time.perf_counter() - started)

    def record(self, n_steps: int, seconds: float) -> None:
        """Count a chunk of ``n_steps`` steps that took ``seconds``."""
        self._chunks.append((n_steps, seconds))

    def steps_per_s(self) -> float | None:
        """Steps per second of the timed chunks (after the first when there are several)."""
        timed = self._chunks[1:] or self._chunks
        seconds = sum(duration for _, duration in timed)
        if not timed or seconds <= 0:
            return None
        return sum(steps for steps, _ in timed) / seconds


class _ChunkRunner:
    """Holds a run's weights as device tensors between compiled calls."""

    def __init__(
        self, config: TrainConfig, seed: int, device: ResolvedDevice, dataset: DeviceDataset
    ) -> None:
        self._config = config
        self._seed = seed
        self._device = device
        self._dataset = dataset
        batch = config.batch_size
        data = dataset.source
        self._call_steps = steps_per_call(config.chunk_steps, batch)
        shape = ChunkShape(
            device=device.name,
            batch_size=batch,
            steps_per_call=self._call_steps,
            momentum=config.momentum > 0,
            xla=compiles_with_xla(config),
            features=data.dims.features,
            classes=data.dims.classes,
            feature_kind=data.feature_kind.value,
        )
        self._shape = shape
        self._function = chunk_function(shape)
        self._examples = data.train_examples
        # None when nothing is held out: the seed's order over all training examples, unchanged.
        self._pool = (
            holdout(config.val_seed, config.val_size, self._examples).train_indices
            if config.val_size
            else None
        )
        self._l2 = tf.constant(config.l2, tf.float32)
        self._momentum = tf.constant(config.momentum, tf.float32)
        self._params: tuple[tf.Tensor, ...] = ()
        self.step = 0

    def load(self, state: TrainingState) -> None:
        """Put ``state``'s arrays on the device, ``W`` and ``vW`` transposed (see ``step``)."""
        arrays = state.arrays
        zeros_w, zeros_b = np.zeros_like(arrays["W"]), np.zeros_like(arrays["b"])
        with tf.device(self._device.name):
            self._params = (
                tf.constant(np.ascontiguousarray(arrays["W"].T, dtype=np.float32)),
                tf.constant(np.asarray(arrays["b"], dtype=np.float32)),
                tf.constant(np.ascontiguousarray(arrays.get("vW", zeros_w).T, dtype=np.float32)),
                tf.constant(np.asarray(arrays.get("vb", zeros_b), dtype=np.float32)),
            )
        self.step = state.step

    def state(self) -> TrainingState:
        """The current arrays, back in the notebook's layout, as a read-only state."""
        weights_t, bias, vel_w, vel_b = (tensor.numpy() for tensor in self._params)
        arrays = {"W": frozen_array(weights_t.T), "b": frozen_array(bias)}
        if self._config.momentum > 0:
            arrays |= {"vW": frozen_array(vel_w.T), "vb": frozen_array(vel_b)}
        return TrainingState(step=self.step, arrays=arrays)

    def run(self, first: int, n_steps: int) -> tuple[FloatArray, FloatArray]:
        """Run steps ``first .. first + n_steps - 1`` (0-based); return their metrics."""
        losses, accuracies = [], []
        for call_first in range(first, first + n_steps, self._call_steps):
            count = min(self._call_steps, first + n_steps - call_first)
            loss, accuracy = self._call(call_first, count)
            losses.append(loss)
            accuracies.append(accuracy)
        return frozen_array(np.concatenate(losses)), frozen_array(np.concatenate(accuracies))

    def compile(self) -> None:
        """Trace and compile the chunk for this runner's shape by calling it for zero steps."""
        config, padded = self._config, self._call_steps
        self._invoke(
            np.zeros((padded, config.batch_size), np.int32),
            np.zeros(padded, np.float32),
            tf.constant(0, tf.int32),
        )

    def _call(self, first: int, count: int) -> tuple[FloatArray, FloatArray]:
        config, padded = self._config, self._call_steps
        indices = np.zeros((padded, config.batch_size), np.int32)
        indices[:count] = batch_indices(
            self._seed, config.batch_size, first, count, self._pool, n_examples=self._examples
        )
        rates = np.zeros(padded, np.float32)
        rates[:count] = learning_rates(
            config.learning_rate, config.schedule, config.steps, first, count
        )
        params, loss, accuracy, finite = self._invoke(indices, rates, tf.constant(count, tf.int32))
        loss, accuracy = loss.numpy()[:count], accuracy.numpy()[:count]
        _check_finite(loss, bool(finite), first, config)
        self._params = tuple(params)
        self.step = first + count
        return loss, accuracy

    def _invoke(self, indices: object, rates: object, n_steps: tf.Tensor) -> Any:
        """Call the compiled chunk (a failure of the persistent XLA cache never fails the run)."""
        args = (self._dataset.images, self._dataset.labels, self._params, indices, rates, n_steps)
        with tf.device(self._device.name):
            outputs, self._function = call_compiled(
                self._function, lambda: _rebuilt(self._shape), (*args, self._l2, self._momentum)
            )
        return outputs


def _rebuilt(shape: ChunkShape) -> ChunkFn:
    chunk_function.cache_clear()  # the failed function remembers its failure
    return chunk_function(shape)


def call_compiled(
    function: ChunkFn, rebuild: Callable[[], ChunkFn], args: tuple[Any, ...]
) -> tuple[Any, ChunkFn]:
    """Call a compiled chunk; a failure of the persistent XLA cache never fails the run.

    The call that failed changed nothing (the weights are replaced only after a call), so a
    second call with the same inputs, compiled afresh (``rebuild``), gives what a clean compile
    gives.

    Returns:
        The call's outputs and the function to call from now on.

    Raises:
        CompileCacheUnusableError: when the cache failed the fresh compile too.
    """
    try:
        return function(*args), function
    except tf.errors.OpError as error:
        aside = compile_cache.set_aside(error)  # raises what is not the cache's
        failed = error
    function = rebuild()
    try:
        outputs = function(*args)
    except tf.errors.OpError as error:
        raise compile_cache.give_up(error) from None
    compile_cache.compiled_again(failed, aside)
    return outputs, function


def _check_finite(loss: FloatArray, weights_finite: bool, first: int, config: TrainConfig) -> None:
    """Raise DivergenceError when a loss or the new weights are not finite."""
    if np.isfinite(loss).all() and weights_finite:
        return
    raise divergence_error(loss, weights_finite, first, config)


def divergence_error(
    loss: FloatArray, weights_finite: bool, first: int, config: TrainConfig
) -> DivergenceError:
    """What went wrong in a chunk from step ``first`` (0-based) whose loss or weights are not
    finite, with the advice for ``config``."""
    bad = np.flatnonzero(~np.isfinite(loss))
    if bad.size:
        what, step = f"loss became {loss[bad[0]]}", first + int(bad[0]) + 1
    else:
        what, step = "weights became non-finite (inf or nan)", first + len(loss)
    rate = config.learning_rate
    advice = f"lower the learning rate (--lr, now {rate:g}), e.g. to {rate / 10:g}"
    # The L2 term alone is a linear recurrence on W; it is unstable from lr * l2 = 2 (1 + momentum).
    unstable_from = 2 * (1 + config.momentum) / config.l2 if config.l2 > 0 else math.inf
    if rate >= unstable_from:
        advice += f"; with --l2 {config.l2:g} any rate from {unstable_from:g} up diverges"
    return DivergenceError(f"{what} at step {step}; {advice}")
