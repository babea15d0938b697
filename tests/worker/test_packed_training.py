"""Packed training: several runs' steps in one compiled call, each run's numbers its own.

On the real Fashion-MNIST. Each run trains through ``Seat.train`` (what a job's thread calls) in
a :class:`~worker.training.pack.Pack` driven by this thread, and is compared bit for bit with the
same config trained in a pack of other mates, alone at its width, and resumed halfway.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from worker.choices import Device
from worker.config import TrainConfig, parse_train_config
from worker.data import FashionMnist
from worker.errors import DivergenceError
from worker.pack_plan import pack_memory_bytes, resolve_pack
from worker.training import ChunkReport, TrainingState, TrainResult, train
from worker.training.pack import Pack

#: A width whose products differ in their last bits from a run alone on this CPU (see
#: worker.training.pack): the comparisons below are then about the width, not about luck.
WIDTH = 16


def config(**fields: Any) -> TrainConfig:
    base = {
        "steps": 300,
        "chunk_steps": 100,
        "checkpoint_every_steps": 100,
        "seed": 5,
        "val_size": 1000,
        "val_seed": 5,
        "xla": True,
        "pack": WIDTH,
    }
    return parse_train_config(base | fields)


TRIALS = {
    "a": config(learning_rate=0.05, momentum=0.9),
    "b": config(learning_rate=0.3, init="zeros"),
    "c": config(learning_rate=0.01, l2=0.001, schedule="cosine", steps=200),
    "d": config(learning_rate=0.1, momentum=0.5, l2=0.0001),
    "e": config(learning_rate=0.002),
}


class Member:
    """One run's thread in a pack: what it was given back, chunk by chunk."""

    def __init__(
        self,
        config: TrainConfig,
        resume_from: TrainingState | None = None,
        stop_after: int | None = None,
    ) -> None:
        self.config = config
        self.resume_from = resume_from
        self.stop_after = stop_after
        self.reports: list[ChunkReport] = []
        self.result: TrainResult | None = None
        self.error: BaseException | None = None

    def should_stop(self) -> bool:
        return self.stop_after is not None and self.reports[-1].last_step >= self.stop_after


def train_pack(data: FashionMnist, members: Sequence[Member], width: int = WIDTH) -> None:
    """Train ``members`` in one pack, each in a thread of its own, as pack_job does."""
    pack = Pack(width)
    seats = [pack.seat() for _ in members]

    def sit(member: Member, seat: Any) -> None:
        try:
            member.result = seat.train(
                member.config,
                data,
                resume_from=member.resume_from,
                on_chunk=member.reports.append,
                should_stop=member.should_stop,
            )
        except BaseException as error:
            member.error = error
        finally:
            seat.withdraw()

    threads = [
        threading.Thread(target=sit, args=(member, seat))
        for member, seat in zip(members, seats, strict=True)
    ]
    for thread in threads:
        thread.start()
    pack.run()
    for thread in threads:
        thread.join()


def weights(result: TrainResult | None) -> dict[str, np.ndarray]:
    assert result is not None
    return result.state.arrays


def assert_same_arrays(one: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> None:
    assert sorted(one) == sorted(other)
    for name, array in one.items():
        assert np.array_equal(array, other[name]), name


@pytest.fixture(scope="module")
def full_pack(fashion_mnist: FashionMnist) -> dict[str, Member]:
    members = {name: Member(trial) for name, trial in TRIALS.items()}
    train_pack(fashion_mnist, list(members.values()))
    return members


def test_every_run_of_a_pack_ends_with_its_own_steps_metrics_and_checkpoints(
    full_pack: dict[str, Member],
) -> None:
    for name, member in full_pack.items():
        assert member.error is None, name
        result = member.result
        assert result is not None and result.completed
        assert result.steps_run == member.config.steps == result.state.step
        steps = [step for r in member.reports for step in range(r.first_step, r.last_step + 1)]
        assert steps == list(range(1, member.config.steps + 1))
        assert [r.state is not None for r in member.reports] == [True] * len(member.reports)
        assert all(np.isfinite(r.loss).all() for r in member.reports)
        assert ("vW" in result.state.arrays) == (member.config.momentum > 0)
    # Different hyperparameters, different runs: no run was handed another's column block.
    finals = [weights(m.result)["W"] for m in full_pack.values()]
    assert len({f.tobytes() for f in finals}) == len(finals)


def test_a_run_alone_at_its_width_repeats_its_packed_numbers_bit_for_bit(
    fashion_mnist: FashionMnist, full_pack: dict[str, Member]
) -> None:
    for name in ("a", "c"):
        alone = train(TRIALS[name], fashion_mnist)  # pack = WIDTH: one seat of a pack of WIDTH
        assert_same_arrays(weights(alone), weights(full_pack[name].result))


def test_other_mates_in_other_seats_change_nothing(
    fashion_mnist: FashionMnist, full_pack: dict[str, Member]
) -> None:
    members = [Member(TRIALS["e"]), Member(TRIALS["d"]), Member(TRIALS["a"])]
    train_pack(fashion_mnist, members)
    for member, name in zip(members, ("e", "d", "a"), strict=True):
        assert_same_arrays(weights(member.result), weights(full_pack[name].result))
        ours = np.concatenate([r.loss for r in member.reports])
        theirs = np.concatenate([r.loss for r in full_pack[name].reports])
        assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("width", [2, 5])
def test_the_last_seat_of_a_narrow_pack_repeats_the_first_bit_for_bit(
    fashion_mnist: FashionMnist, width: int
) -> None:
    # Unpadded, an AVX2 CPU computed the gradient rows of these seats (in a partial vector
    # register, at the end of the matrix) by another path: their last bits differed from seat 0.
    trial = config(learning_rate=0.05, momentum=0.9, steps=200, pack=width)
    mates = [config(learning_rate=0.1 * (k + 1), steps=200, pack=width) for k in range(width - 1)]
    last = Member(trial)
    train_pack(fashion_mnist, [*map(Member, mates), last], width=width)
    first = Member(trial)
    train_pack(fashion_mnist, [first], width=width)
    assert last.error is None and first.error is None
    assert_same_arrays(weights(last.result), weights(first.result))


def test_a_run_stopped_mid_pack_resumes_in_another_pack_to_the_same_weights(
    fashion_mnist: FashionMnist, full_pack: dict[str, Member]
) -> None:
    first = [Member(TRIALS["a"], stop_after=100), Member(TRIALS["b"], stop_after=200)]
    train_pack(fashion_mnist, first)
    stopped = {name: m.result for name, m in zip("ab", first, strict=True)}
    assert all(r is not None and not r.completed for r in stopped.values())
    assert [r.state.step for r in stopped.values() if r] == [100, 200]
    # Resumed from different steps: trained as two groups, each at the pack's width.
    second = [Member(TRIALS[n], resume_from=r.state if r else None) for n, r in stopped.items()]
    train_pack(fashion_mnist, [*second, Member(TRIALS["e"])])
    for member, name in zip(second, "ab", strict=True):
        assert_same_arrays(weights(member.result), weights(full_pack[name].result))


def test_a_diverging_run_leaves_the_pack_with_its_error_and_the_others_go_on(
    fashion_mnist: FashionMnist, full_pack: dict[str, Member]
) -> None:
    members = [Member(TRIALS["d"]), Member(config(learning_rate=900.0, l2=5.0))]
    train_pack(fashion_mnist, members)
    assert isinstance(members[1].error, DivergenceError)
    assert "lower the learning rate" in str(members[1].error)
    assert_same_arrays(weights(members[0].result), weights(full_pack["d"].result))


def test_an_error_in_one_runs_callback_reaches_that_run_alone(
    fashion_mnist: FashionMnist, full_pack: dict[str, Member]
) -> None:
    def broken(report: ChunkReport) -> None:
        raise RuntimeError(f"database gone at step {report.last_step}")

    healthy = Member(TRIALS["c"])
    pack = Pack(WIDTH)
    seats = [pack.seat(), pack.seat()]
    results: dict[int, Any] = {}

    def sit(index: int, trial: TrainConfig, on_chunk: Callable[[ChunkReport], None]) -> None:
        try:
            results[index] = seats[index].train(trial, fashion_mnist, on_chunk=on_chunk)
        except BaseException as error:
            results[index] = error
        finally:
            seats[index].withdraw()

    threads = [
        threading.Thread(target=sit, args=(0, TRIALS["c"], healthy.reports.append)),
        threading.Thread(target=sit, args=(1, TRIALS["b"], broken)),
    ]
    for thread in threads:
        thread.start()
    pack.run()
    for thread in threads:
        thread.join()
    assert isinstance(results[1], RuntimeError) and "step 100" in str(results[1])
    assert_same_arrays(weights(results[0]), weights(full_pack["c"].result))


def test_a_seat_whose_run_never_trains_does_not_hold_the_pack(
    fashion_mnist: FashionMnist, full_pack: dict[str, Member]
) -> None:
    pack = Pack(WIDTH)
    used, unused = pack.seat(), pack.seat()
    unused.withdraw()  # its job could not claim the run
    outcome: list[TrainResult] = []
    thread = threading.Thread(target=lambda: outcome.append(used.train(TRIALS["e"], fashion_mnist)))
    thread.start()
    pack.run()
    thread.join()
    assert_same_arrays(weights(outcome[0]), weights(full_pack["e"].result))


def test_auto_packs_max_concurrent_over_the_workers_unless_batches_differ() -> None:
    common: dict[str, Any] = {
        "device": Device.AUTO,
        "features": 784,
        "classes": 10,
        "call_steps": 1000,
    }
    assert resolve_pack(None, max_concurrent=64, workers=1, swept=frozenset({"lr"}), **common) == 64
    assert resolve_pack(None, max_concurrent=64, workers=2, swept=frozenset({"lr"}), **common) == 32
    assert resolve_pack(None, max_concurrent=5, workers=2, swept=frozenset(), **common) == 3
    # A pack of 2 would be slower on a CPU than its two trials alone; not on a GPU.
    assert resolve_pack(None, max_concurrent=4, workers=2, swept=frozenset(), **common) == 1
    two_on_gpu = common | {"device": Device.GPU}
    assert resolve_pack(None, max_concurrent=4, workers=2, swept=frozenset(), **two_on_gpu) == 2
    assert resolve_pack(None, max_concurrent=500, workers=1, swept=frozenset(), **common) == 64
    few = resolve_pack(None, max_concurrent=64, workers=1, trials=6, swept=frozenset(), **common)
    assert few == 6
    gpu = common | {"device": Device.GPU}
    assert resolve_pack(None, max_concurrent=2000, workers=1, swept=frozenset(), **gpu) == 1024
    for unpackable in ("seed", "batch_size"):
        swept = frozenset({"lr", unpackable})
        assert resolve_pack(None, max_concurrent=64, workers=1, swept=swept, **common) == 1
    assert resolve_pack(8, max_concurrent=2, workers=4, swept=frozenset({"seed"}), **common) == 8


def test_a_pack_over_the_memory_budget_is_narrowed_to_fit() -> None:
    budget = pack_memory_bytes(100, 784, 10, 1000)
    width = resolve_pack(
        1000,
        max_concurrent=1000,
        workers=1,
        device=Device.CPU,
        swept=frozenset(),
        features=784,
        classes=10,
        call_steps=1000,
        budget_bytes=budget,
    )
    assert width == 100
    # 2,560 rows of 256 trials, padded: 16 spare rows (worker.pack_plan.packed_rows).
    assert pack_memory_bytes(256, 784, 10, 1000) == 4 * (13 * 2576 * 785 + 2 * 1000 * 256)


def test_a_pack_narrows_where_its_schedule_says_and_each_run_keeps_its_numbers(
    fashion_mnist: FashionMnist,
) -> None:
    narrowing = {"pack_narrows": ((100, 4), (200, 2))}
    trials = [
        config(learning_rate=rate, momentum=momentum, **narrowing)
        for rate, momentum in [(0.05, 0.9), (0.3, 0.0), (0.01, 0.5), (0.1, 0.0), (0.002, 0.9)]
    ]
    assert trials[0].pack_width_at(99) == WIDTH and trials[0].pack_width_at(100) == 4
    members = [Member(trial) for trial in trials]
    train_pack(fashion_mnist, members)  # 16 wide, then two packs of 4 (4 + 1), then of 2
    for member in members:
        assert member.error is None
        alone = train(member.config, fashion_mnist)
        assert_same_arrays(weights(alone), weights(member.result))
        steps = [s for r in member.reports for s in range(r.first_step, r.last_step + 1)]
        assert steps == list(range(1, 301))
    # Resumed after the first narrowing, alone: the same widths from there, the same numbers.
    halfway = Member(trials[2], stop_after=200)
    train_pack(fashion_mnist, [halfway])
    assert halfway.result is not None and halfway.result.state.step == 200
    resumed = train(trials[2], fashion_mnist, resume_from=halfway.result.state)
    assert_same_arrays(weights(resumed), weights(members[2].result))


def test_the_narrowing_follows_the_rungs_in_powers_of_two_then_multiples_of_8() -> None:
    from worker.pack_plan import narrowing

    # 64 decided together keep 21, then 7, then 2: packs of 24 (not 32: 11 parked seats would
    # cost a third of every product), 8, then trials alone (a pack of 2 is slower than its two
    # trials one after the other).
    assert narrowing(64, [1000, 3000, 9000], 3) == ((1000, 24), (3000, 8), (9000, 1))
    assert narrowing(32, [1000, 3000, 9000], 3) == ((1000, 16), (3000, 4), (9000, 1))
    assert narrowing(128, [100, 200], 3) == ((100, 48), (200, 16))  # keeps 42, then 14
    assert narrowing(12, [100, 200], 2) == ((100, 8), (200, 4))
    assert narrowing(4, [100, 200], 2) == ((100, 1),)
    assert narrowing(2, [100], 4) == ((100, 1),)
    assert narrowing(1, [100], 3) == ()


def test_a_run_trained_alone_is_stored_without_the_pack_fields_as_before_packs() -> None:
    alone = config(pack=1).model_dump(mode="json")
    assert "pack" not in alone and "pack_narrows" not in alone  # an older worker reads it
    assert parse_train_config(alone).pack == 1
    packed = config(pack_narrows=((100, 4),)).model_dump(mode="json")
    assert packed["pack"] == WIDTH and packed["pack_narrows"] == [[100, 4]]
    assert parse_train_config(packed).pack_width_at(100) == 4
