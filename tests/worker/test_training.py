"""Training on the real Fashion-MNIST: determinism, exact resume, chunks, stopping, divergence."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from worker.config import Device, Init, Schedule, TrainConfig
from worker.data import FashionMnist
from worker.errors import DeviceUnavailableError, DivergenceError, IncompatibleWeightsError
from worker.evaluation import evaluate
from worker.training import ChunkReport, TrainingState, TrainResult, train, xla_choice

# 600 steps in chunks of 100, a checkpoint every 200: small, but crosses an epoch (468 batches).
# The plain-graph path, as an embedded `trainq train` of a short run takes it (see below).
BASE: dict[str, Any] = {
    "steps": 600,
    "chunk_steps": 100,
    "checkpoint_every_steps": 200,
    "seed": 7,
    "xla": False,
}
VARIANTS = {
    "plain-sgd": {},
    "momentum-cosine-l2": {"momentum": 0.9, "schedule": Schedule.COSINE, "l2": 1e-3},
    "held-out-validation": {"val_size": 10_000, "val_seed": 3},
}


def config(**overrides: Any) -> TrainConfig:
    return TrainConfig(**(BASE | overrides))


def run(
    data: FashionMnist, cfg: TrainConfig, **kwargs: Any
) -> tuple[TrainResult, list[ChunkReport]]:
    reports: list[ChunkReport] = []
    result = train(cfg, data, on_chunk=reports.append, **kwargs)
    return result, reports


def state_at(reports: list[ChunkReport], step: int) -> TrainingState:
    [state] = [r.state for r in reports if r.state is not None and r.state.step == step]
    return state


def assert_same_arrays(left: TrainingState, right: TrainingState) -> None:
    assert left.step == right.step
    assert sorted(left.arrays) == sorted(right.arrays)
    for name in left.arrays:
        assert np.array_equal(left.arrays[name], right.arrays[name]), name


def metrics_from(reports: list[ChunkReport], first_step: int) -> tuple[np.ndarray, np.ndarray]:
    kept = [r for r in reports if r.first_step >= first_step]
    return np.concatenate([r.loss for r in kept]), np.concatenate([r.accuracy for r in kept])


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def uninterrupted(
    request: pytest.FixtureRequest, fashion_mnist: FashionMnist
) -> tuple[TrainConfig, TrainResult, list[ChunkReport]]:
    cfg = config(**VARIANTS[request.param])
    return (cfg, *run(fashion_mnist, cfg))


def test_the_same_seed_gives_identical_metrics_and_weights(
    fashion_mnist: FashionMnist, uninterrupted: tuple[TrainConfig, TrainResult, list[ChunkReport]]
) -> None:
    cfg, first, first_reports = uninterrupted
    second, second_reports = run(fashion_mnist, cfg)
    assert_same_arrays(first.state, second.state)
    for left, right in zip(first_reports, second_reports, strict=True):
        assert np.array_equal(left.loss, right.loss)
        assert np.array_equal(left.accuracy, right.accuracy)


def test_a_different_seed_gives_different_metrics_and_weights(
    fashion_mnist: FashionMnist, uninterrupted: tuple[TrainConfig, TrainResult, list[ChunkReport]]
) -> None:
    cfg, first, first_reports = uninterrupted
    other, other_reports = run(fashion_mnist, cfg.model_copy(update={"seed": 8}))
    assert not np.array_equal(first.state.arrays["W"], other.state.arrays["W"])
    assert not np.array_equal(first_reports[0].loss, other_reports[0].loss)


def test_resuming_from_a_checkpoint_ends_bit_identical(
    fashion_mnist: FashionMnist, uninterrupted: tuple[TrainConfig, TrainResult, list[ChunkReport]]
) -> None:
    cfg, full, full_reports = uninterrupted
    resumed, resumed_reports = run(fashion_mnist, cfg, resume_from=state_at(full_reports, 200))
    assert resumed.completed
    assert resumed.steps_run == 400
    assert [r.first_step for r in resumed_reports] == [201, 301, 401, 501]
    assert_same_arrays(full.state, resumed.state)
    for left, right in zip(
        metrics_from(full_reports, 201), metrics_from(resumed_reports, 201), strict=True
    ):
        assert np.array_equal(left, right)


def test_stopping_then_resuming_ends_bit_identical(
    fashion_mnist: FashionMnist, uninterrupted: tuple[TrainConfig, TrainResult, list[ChunkReport]]
) -> None:
    cfg, full, _ = uninterrupted
    reports: list[ChunkReport] = []
    stopped = train(
        cfg,
        fashion_mnist,
        on_chunk=reports.append,
        should_stop=lambda: reports[-1].last_step >= 400,
    )
    assert not stopped.completed
    assert (stopped.state.step, stopped.steps_run) == (400, 400)
    assert_same_arrays(stopped.state, state_at(reports, 400))
    resumed, _ = run(fashion_mnist, cfg, resume_from=stopped.state)
    assert_same_arrays(full.state, resumed.state)


def test_the_chunk_size_does_not_change_the_result_and_chunks_stay_aligned(
    fashion_mnist: FashionMnist, uninterrupted: tuple[TrainConfig, TrainResult, list[ChunkReport]]
) -> None:
    cfg, full, _ = uninterrupted
    small = cfg.model_copy(update={"chunk_steps": 50, "checkpoint_every_steps": 50})
    seen: list[ChunkReport] = []
    stopped = train(
        small, fashion_mnist, on_chunk=seen.append, should_stop=lambda: seen[-1].last_step >= 250
    )
    assert stopped.state.step == 250
    # Resume the 50-step-chunk state under 100-step chunks: the first chunk ends at 300.
    resumed, reports = run(fashion_mnist, cfg, resume_from=stopped.state)
    assert [(r.first_step, len(r.loss)) for r in reports][:2] == [(251, 50), (301, 100)]
    assert_same_arrays(full.state, resumed.state)


def test_on_chunk_sees_every_step_once_in_order_with_states_when_due(
    fashion_mnist: FashionMnist,
) -> None:
    result, reports = run(fashion_mnist, config(steps=650))
    assert [r.first_step for r in reports] == [1, 101, 201, 301, 401, 501, 601]
    steps = np.concatenate([np.arange(r.first_step, r.last_step + 1) for r in reports])
    assert steps.tolist() == list(range(1, 651))
    with_state = [r.last_step for r in reports if r.state is not None]
    assert with_state == [200, 400, 600, 650]
    assert all(r.state is None or r.state.step == r.last_step for r in reports)
    assert all(r.loss.dtype == np.float32 and r.accuracy.dtype == np.float32 for r in reports)
    assert result.completed and result.state.step == 650
    assert set(result.state.arrays) == {"W", "b"}


def test_training_learns(
    fashion_mnist: FashionMnist, uninterrupted: tuple[TrainConfig, TrainResult, list[ChunkReport]]
) -> None:
    _, result, reports = uninterrupted
    assert float(np.mean(reports[-1].accuracy)) > float(np.mean(reports[0].accuracy)) + 0.15
    accuracy = evaluate(result.state.arrays, *fashion_mnist.split("test")).accuracy
    assert accuracy > 0.3  # chance is 0.1; the notebook's random-normal start is slow


def test_a_good_recipe_learns_fast(fashion_mnist: FashionMnist) -> None:
    recipe = config(init=Init.ZEROS, learning_rate=0.05, momentum=0.9, schedule=Schedule.COSINE)
    result, _ = run(fashion_mnist, recipe.model_copy(update={"steps": 500}))
    assert evaluate(result.state.arrays, *fashion_mnist.split("test")).accuracy > 0.78


def test_divergence_raises_and_never_hands_out_non_finite_weights(
    fashion_mnist: FashionMnist,
) -> None:
    # lr * l2 = 2.5 > 2: the L2 term alone makes W oscillate with a growing amplitude.
    reports: list[ChunkReport] = []
    with pytest.raises(DivergenceError, match=r"became (inf|nan|non-finite) at step \d+; lower"):
        train(config(learning_rate=1.0, l2=2.5), fashion_mnist, on_chunk=reports.append)
    assert reports  # the chunks before the divergence were delivered
    for report in reports:
        assert np.isfinite(report.loss).all()
        arrays = report.state.arrays.values() if report.state is not None else []
        assert all(np.isfinite(a).all() for a in arrays)


def test_a_huge_learning_rate_fails_at_once(fashion_mnist: FashionMnist) -> None:
    with pytest.raises(DivergenceError, match=r"at step [1-9]\d?;.*--l2 10 any rate from 0.2 up"):
        train(config(learning_rate=1000.0, l2=10.0), fashion_mnist)


def test_a_state_that_does_not_fit_the_config_is_refused(
    fashion_mnist: FashionMnist, uninterrupted: tuple[TrainConfig, TrainResult, list[ChunkReport]]
) -> None:
    _, result, _ = uninterrupted
    weights_only = TrainingState(step=200, arrays={k: result.state.arrays[k] for k in ("W", "b")})
    with pytest.raises(IncompatibleWeightsError, match="'vW'"):
        train(config(momentum=0.5), fashion_mnist, resume_from=weights_only)
    with pytest.raises(IncompatibleWeightsError, match="step 700"):
        train(config(), fashion_mnist, resume_from=TrainingState(700, result.state.arrays))
    wrong = {"W": np.zeros((10, 784), np.float32), "b": np.zeros(10, np.float32)}
    with pytest.raises(IncompatibleWeightsError, match=r"'W' has shape \(10, 784\)"):
        train(config(), fashion_mnist, resume_from=TrainingState(0, wrong))


def test_resuming_a_finished_run_runs_nothing(
    fashion_mnist: FashionMnist, uninterrupted: tuple[TrainConfig, TrainResult, list[ChunkReport]]
) -> None:
    cfg, full, _ = uninterrupted
    again, reports = run(fashion_mnist, cfg, resume_from=full.state)
    assert (again.completed, again.steps_run, reports) == (True, 0, [])
    assert again.final_loss is None
    assert_same_arrays(full.state, again.state)


def test_the_training_speed_leaves_out_the_first_chunk_that_compiles(
    uninterrupted: tuple[TrainConfig, TrainResult, list[ChunkReport]],
) -> None:
    _, result, reports = uninterrupted
    # Two speeds measured in one run on a shared machine may cross by noise, so this checks that
    # the training-only speed is measured (it needs a chunk after the compiling one), not which
    # of the two is larger.
    assert len(reports) > 1 and result.training_steps_per_s is not None
    assert result.training_steps_per_s > 0 and result.steps_per_s > 0


def test_a_warm_process_reuses_the_compiled_chunk(fashion_mnist: FashionMnist) -> None:
    from worker.training import step

    run(fashion_mnist, config(seed=11))
    run(fashion_mnist, config(seed=12, steps=250, learning_rate=0.5))  # shorter last chunk too
    xla = xla_choice.compiles_with_xla(config())
    shape = step.ChunkShape("/CPU:0", 128, 100, momentum=False, xla=xla)
    function: Any = step.chunk_function(shape)
    assert function.experimental_get_tracing_count() == 1


def test_asking_for_a_gpu_without_one_fails_clearly(fashion_mnist: FashionMnist) -> None:
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    with pytest.raises(DeviceUnavailableError, match="sees no GPU"):
        train(config(device=Device.GPU), fashion_mnist)


def test_tensorflow_is_set_up_once_for_a_small_worker(fashion_mnist: FashionMnist) -> None:
    import tensorflow as tf

    from worker.training import configure_tensorflow
    from worker.training.runtime import INTRA_OP_THREADS

    train(config(steps=100), fashion_mnist)
    configure_tensorflow(intra_op_threads=7)  # too late, and only the first call counts
    assert tf.config.threading.get_intra_op_parallelism_threads() == INTRA_OP_THREADS == 1
    assert tf.config.threading.get_inter_op_parallelism_threads() == 1


def test_the_xla_choice_is_made_once_at_submission_and_stored() -> None:
    # Open until submission; then what the submitter chose (worker.training.xla_choice), XLA
    # by default (a worker compiles once for every run of the same shape), never changed again.
    assert TrainConfig(steps=600).xla is None
    assert TrainConfig(steps=600).resolved().xla is True
    assert TrainConfig(steps=600).resolved(xla=False).xla is False
    assert TrainConfig(steps=600, xla=False).resolved().xla is False
    # Decided by the stored config alone: a resumed run takes its first attempt's path, and a
    # run stored before the field existed trained with XLA, so it resumes with XLA.
    assert xla_choice.compiles_with_xla(config(xla=True))
    assert not xla_choice.compiles_with_xla(config())
    assert xla_choice.compiles_with_xla(TrainConfig.model_validate({"steps": 600, "seed": 1}))


def test_the_xla_and_the_graph_paths_agree_within_float_tolerance(
    fashion_mnist: FashionMnist,
    uninterrupted: tuple[TrainConfig, TrainResult, list[ChunkReport]],
) -> None:
    graph_cfg, graph, graph_reports = uninterrupted
    cfg = graph_cfg.model_copy(update={"xla": True})  # the same run compiled with XLA
    assert xla_choice.compiles_with_xla(cfg) and not xla_choice.compiles_with_xla(graph_cfg)
    xla, xla_reports = run(fashion_mnist, cfg)
    for name, array in graph.state.arrays.items():
        np.testing.assert_allclose(xla.state.arrays[name], array, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        metrics_from(xla_reports, 1)[0], metrics_from(graph_reports, 1)[0], rtol=1e-4, atol=1e-5
    )
    resumed, _ = run(fashion_mnist, cfg, resume_from=state_at(xla_reports, 200))
    assert_same_arrays(xla.state, resumed.state)  # and resuming it stays on XLA, bit-identical
