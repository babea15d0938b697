"""Planning a sweep's trials: parameters drawn or enumerated, each turned into a full config.

Deterministic: trial ``i`` of a random sweep draws from ``default_rng((seed, 3, i))``, so the plan
is a function of the file alone. Every trial trains with the sweep's seed (unless ``seed`` is a
parameter) and holds out the same ``val_size`` images (``val_seed`` = the sweep's seed), so trials
differ only by their parameters and are ranked on the same validation images.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from worker.config import TrainConfig, parse_train_config, require_fits_training_split
from worker.errors import InvalidConfigError
from worker.pack_plan import narrowing
from worker.sweep_spec import (
    PARAMETER_FIELDS,
    AshaSpec,
    Distribution,
    Method,
    ParameterSpec,
    SweepSpec,
)

TRIAL_STREAM = 3  # first word after the seed: 0 data order, 1 initial weights, 2 validation split
#: Longest chunk a trial is given on its own (so that a cancel or a hand-back still stops within a
#: fraction of a second at 10,000 steps/s).
MAX_TRIAL_CHUNK_STEPS = 2_000


def plan_trials(spec: SweepSpec) -> list[tuple[dict[str, Any], TrainConfig]]:
    """Every trial's parameters and validated config, in trial order.

    Raises:
        InvalidConfigError: a trial's combination of values fails ``trainq train``'s validator
            (naming the trial, its parameters and the option).
    """
    planned = [(params, trial_config(spec, params)) for params in _parameter_sets(spec)]
    if spec.asha is None or not spec.pack or spec.pack <= 1:
        return planned
    # One narrowing for the whole sweep (from the longest trial's rungs), so that trials of
    # different lengths still share packs.
    longest = max(config.steps for _, config in planned)
    narrows = narrowing(spec.pack, spec.asha.rungs(longest), spec.asha.reduction_factor)
    return [
        (params, config.model_copy(update={"pack_narrows": narrows})) for params, config in planned
    ]


def trial_config(spec: SweepSpec, params: dict[str, Any]) -> TrainConfig:
    """The config a trial with ``params`` trains with.

    With ASHA, checkpoints must fall on every rung (a rung decision is taken at a checkpoint): the
    checkpoint interval becomes ``gcd(checkpoint_every, min_steps)`` and the chunk size divides it.
    Unless the file sets ``chunk_steps``, a trial trains one chunk per checkpoint (up to
    :data:`MAX_TRIAL_CHUNK_STEPS`): a chunk between checkpoints would only cost a transaction, since
    a resumed trial starts from its checkpoint and recomputes that chunk anyway.

    A sweep on a stored dataset trains every trial on the version found at submission
    (``SweepSpec.on_dataset``), its batch checked against that version's training examples.

    Raises:
        InvalidConfigError: naming the parameters and the offending option; or the sweep names
            a dataset that was not found first.
    """
    fields: dict[str, Any] = {
        "seed": spec.seed,
        "val_size": spec.val_size,
        "val_seed": spec.seed,
        "pack": spec.pack or 1,
    }
    if spec.data is not None:
        if spec.dataset is None:
            raise InvalidConfigError(
                f"data: {spec.data!r} must be found among the stored versions before trials are "
                "planned (Client.submit_sweep does it)"
            )
        fields |= {"data_sha256": spec.dataset.sha256, "data_name": spec.dataset.name}
    fields |= {PARAMETER_FIELDS[name]: value for name, value in params.items()}
    try:
        config = parse_train_config(fields)
        if spec.dataset is not None:
            require_fits_training_split(config, spec.dataset.train_examples, spec.dataset.name)
        if spec.asha is not None:
            config = _checkpoints_on_rungs(config, spec.asha)
        if "chunk_steps" not in params:
            config = _one_chunk_per_checkpoint(config)
    except InvalidConfigError as exc:
        described = ", ".join(f"{name}={value!r}" for name, value in params.items())
        reason = str(exc).removeprefix("invalid config: ")
        for name, field in PARAMETER_FIELDS.items():
            reason = reason.replace(f"{field}:", f"{name}:")
        raise InvalidConfigError(
            f"parameters: the trial {described} is invalid: {reason}"
        ) from None
    return config.resolved()


def _checkpoints_on_rungs(config: TrainConfig, asha: AshaSpec) -> TrainConfig:
    every = math.gcd(config.checkpoint_every_steps, asha.min_steps)
    if every == config.checkpoint_every_steps:
        return config
    fields = config.model_dump(mode="json")
    fields |= {"checkpoint_every_steps": every, "chunk_steps": math.gcd(config.chunk_steps, every)}
    return parse_train_config(fields)


def _one_chunk_per_checkpoint(config: TrainConfig) -> TrainConfig:
    every = config.checkpoint_every_steps
    if config.chunk_steps == every or every > MAX_TRIAL_CHUNK_STEPS:
        return config
    return parse_train_config(config.model_dump(mode="json") | {"chunk_steps": every})


def _parameter_sets(spec: SweepSpec) -> Iterator[dict[str, Any]]:
    if spec.method is Method.GRID:
        names = [p.name for p in spec.parameters]
        grid = itertools.product(*(p.values or () for p in spec.parameters))
        for values in itertools.islice(grid, spec.run_cap):
            yield dict(zip(names, values, strict=True))
        return
    for trial in range(spec.run_cap):
        rng = np.random.default_rng((spec.seed, TRIAL_STREAM, trial))
        yield {p.name: _draw(p, rng) for p in spec.parameters}


def _draw(parameter: ParameterSpec, rng: np.random.Generator) -> Any:
    if parameter.values is not None:
        return parameter.values[int(rng.integers(len(parameter.values)))]
    low, high = float(parameter.low or 0), float(parameter.high or 0)
    if parameter.distribution is Distribution.INT_UNIFORM:
        return int(rng.integers(int(low), int(high) + 1))
    if parameter.distribution is Distribution.LOG_UNIFORM:
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    # Six significant digits: readable in tables and JSON, and never outside [min, max].
    return min(max(float(f"{value:.6g}"), low), high)
