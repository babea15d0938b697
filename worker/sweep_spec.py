"""A sweep file, validated: every key checked, every message naming the key the user wrote.

Parameters are named like ``trainq train``'s options (``lr``, ``batch_size`` or ``batch-size``,
``momentum``...) or as stored configs name them (``learning_rate``, ``worker.parameter_names``),
and their values are checked by the same validator as ``trainq train``
(``worker.config``), here for each value and distribution bound and again, by the planner, for
every trial's full config, before anything is stored.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar

from storage.validation import MAX_SEED
from worker.config import MAX_PACK, MAX_TRAIN_EXAMPLES, TRAIN_EXAMPLES, parse_train_config
from worker.errors import InvalidConfigError
from worker.parameter_names import did_you_mean

EnumT = TypeVar("EnumT", bound=StrEnum)

#: The sweep file's ``pack`` left to trainq (``worker.pack_plan.resolve_pack``).
AUTO_PACK = "auto"

#: Largest number of trials a sweep may plan (a grid beyond this is refused).
MAX_TRIALS = 10_000

#: Parameter name (as ``trainq train`` spells the option) → TrainConfig field.
PARAMETER_FIELDS = {
    "lr": "learning_rate",
    "batch_size": "batch_size",
    "steps": "steps",
    "seed": "seed",
    "init": "init",
    "momentum": "momentum",
    "l2": "l2",
    "schedule": "schedule",
    "checkpoint_every": "checkpoint_every_steps",
    "chunk_steps": "chunk_steps",
    "device": "device",
}
#: The config's field names, accepted for the parameters whose option name differs.
_PARAMETER_FOR_FIELD = {field: name for name, field in PARAMETER_FIELDS.items() if field != name}
_INTEGER_PARAMETERS = {"batch_size", "steps", "seed", "checkpoint_every", "chunk_steps"}
_TOP_LEVEL_KEYS = {
    "name",
    "description",
    "metric",
    "method",
    "seed",
    "run_cap",
    "max_concurrent",
    "val_size",
    "parameters",
    "early_terminate",
    "data",
    "pack",
}
#: Stands for the sweep's dataset when a value is checked alone: its training examples are
#: known only once the version is found (``SweepSpec.on_dataset``), so the built-in
#: Fashion-MNIST's 60,000 must not bound ``batch_size`` here.
_SOME_VERSION = "0" * 64


class Objective(StrEnum):
    """What a sweep ranks trials by: a metric over the held-out validation images."""

    VAL_ACCURACY = "val_accuracy"
    VAL_LOSS = "val_loss"


class Goal(StrEnum):
    """Whether higher or lower values of the objective are better."""

    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


class Method(StrEnum):
    """How trials are chosen."""

    GRID = "grid"  # every combination of the listed values, in file order
    RANDOM = "random"  # run_cap independent draws, trial i from the sweep seed and i


class Distribution(StrEnum):
    """Random draws for one parameter (method random)."""

    UNIFORM = "uniform"  # a float in [min, max]
    LOG_UNIFORM = "log_uniform"  # a float whose log is uniform in [log min, log max]; min > 0
    INT_UNIFORM = "int_uniform"  # an integer in [min, max]


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter: a fixed value, a list of values, or a distribution."""

    name: str  # as the option is named: "lr", "batch_size"...
    values: tuple[Any, ...] | None = None  # {value: x} is a one-value list
    distribution: Distribution | None = None
    low: float | None = None  # the distribution's min
    high: float | None = None  # the distribution's max


@dataclass(frozen=True)
class AshaSpec:
    """Stopping-based ASHA: rungs at ``min_steps * reduction_factor**k`` below a trial's steps."""

    min_steps: int
    reduction_factor: int

    def rungs(self, steps: int) -> list[int]:
        """The rung steps of a trial of ``steps`` steps (strictly below it)."""
        rungs, rung = [], self.min_steps
        while rung < steps:
            rungs.append(rung)
            rung *= self.reduction_factor
        return rungs


@dataclass(frozen=True)
class SweepData:
    """The stored dataset version a sweep's trials train on, found when it is submitted."""

    sha256: str  # the version's content hash, recorded in every trial's config
    name: str  # NAME@N, for people
    train_examples: int
    features: int = 784  # D (sizes a pack's memory)
    classes: int = 10  # C


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file."""

    name: str | None
    objective: Objective
    goal: Goal
    method: Method
    seed: int  # draws the trials, holds out the validation images, seeds each trial's run
    run_cap: int  # trials planned (a grid: at most its size)
    max_concurrent: int  # trials QUEUED or RUNNING at once in a cluster
    val_size: int  # training images held out for validation
    parameters: tuple[ParameterSpec, ...]
    asha: AshaSpec | None
    data: str | None = None  # the dataset as the file names it; None: Fashion-MNIST, built in
    dataset: SweepData | None = None  # ``data`` found (``on_dataset``), before trials are planned
    # Trials trained side by side per compiled call (``worker.pack_plan``): None is ``auto``,
    # decided when the sweep is submitted and stored as a number.
    pack: int | None = None

    @property
    def maximize(self) -> bool:
        """True when a higher objective is better."""
        return self.goal is Goal.MAXIMIZE

    def to_json(self) -> dict[str, Any]:
        """The spec as JSON-safe data (stored with the sweep; ``parse_sweep_spec`` reads it)."""
        parameters: dict[str, Any] = {}
        for parameter in self.parameters:
            if parameter.distribution is not None:
                parameters[parameter.name] = {
                    "distribution": parameter.distribution.value,
                    "min": parameter.low,
                    "max": parameter.high,
                }
            else:
                parameters[parameter.name] = {"values": list(parameter.values or ())}
        data: dict[str, Any] = {
            "name": self.name,
            "metric": {"name": self.objective.value, "goal": self.goal.value},
            "method": self.method.value,
            "seed": self.seed,
            "run_cap": self.run_cap,
            "max_concurrent": self.max_concurrent,
            "val_size": self.val_size,
            "parameters": parameters,
        }
        if self.asha is not None:
            data["early_terminate"] = {"type": "asha"} | asdict(self.asha)
        if self.data is not None:
            # Once found, the version's hash: what the trials train on, whatever is added later.
            data["data"] = self.dataset.sha256 if self.dataset is not None else self.data
        data["pack"] = AUTO_PACK if self.pack is None else self.pack
        return data

    def on_dataset(
        self, sha256: str, name: str, train_examples: int, *, features: int = 784, classes: int = 10
    ) -> SweepSpec:
        """This sweep on the stored version ``data`` named (its hash, ``NAME@N`` and training
        examples), its ``val_size`` checked against that version.

        Raises:
            InvalidConfigError: ``val_size`` leaves no training example.
        """
        if self.val_size >= train_examples:
            raise InvalidConfigError(
                f"val_size: {self.val_size} must be less than the {train_examples} training "
                f"examples of {name} (some must be left to train on); set val_size in the "
                "sweep file"
            )
        return replace(self, dataset=SweepData(sha256, name, train_examples, features, classes))


def parse_sweep_spec(data: dict[str, Any], *, default_seed: int | None = None) -> SweepSpec:
    """Validate a loaded sweep file.

    Args:
        data: the file's mapping (``worker.sweep_file.read_sweep_file``).
        default_seed: the seed to use when the file gives none (drawn by the caller).

    Raises:
        InvalidConfigError: naming the first offending key (e.g. ``parameters.lr.min``).
    """
    unknown = sorted(set(data) - _TOP_LEVEL_KEYS)
    if unknown:
        hint = did_you_mean(str(unknown[0]), _TOP_LEVEL_KEYS)
        raise InvalidConfigError(
            f"{unknown[0]}: unknown key{hint}; a sweep file has "
            f"{', '.join(sorted(_TOP_LEVEL_KEYS))}"
        )
    objective, goal = _metric(data.get("metric", {"name": "val_accuracy"}))
    method = _choice(Method, data.get("method", "random"), "method")
    dataset = _data(data.get("data"))
    parameters = _parameters(data.get("parameters"), method, on_dataset=dataset is not None)
    seed = data.get("seed", default_seed)
    if seed is None:
        raise InvalidConfigError(f"seed: give the sweep a seed (0..{MAX_SEED})")
    return SweepSpec(
        name=_name(data.get("name")),
        objective=objective,
        goal=goal,
        method=method,
        seed=_integer(seed, "seed", 0, MAX_SEED),
        run_cap=_run_cap(data.get("run_cap"), method, parameters),
        max_concurrent=_integer(data.get("max_concurrent", 1), "max_concurrent", 1, 1_000),
        # On a stored version, its own count bounds val_size (``SweepSpec.on_dataset``).
        val_size=_integer(
            data.get("val_size", 10_000),
            "val_size",
            1,
            (TRAIN_EXAMPLES if dataset is None else MAX_TRAIN_EXAMPLES) - 1,
        ),
        parameters=parameters,
        asha=_asha(data.get("early_terminate")),
        data=dataset,
        pack=_pack(data.get("pack", AUTO_PACK)),
    )


def _pack(value: Any) -> int | None:
    if value == AUTO_PACK:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PACK:
        raise InvalidConfigError(
            f"pack: must be auto or a whole number of trials from 1 to {MAX_PACK} (1 trains "
            "each trial on its own)"
        )
    return value


def _data(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 200:
        raise InvalidConfigError(
            "data: name a stored dataset: NAME (its newest version), NAME@N or a hash "
            "(`trainq data list`)"
        )
    return value.strip()


def _name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 200:
        raise InvalidConfigError("name: must be text of 1 to 200 characters")
    return value


def _metric(value: Any) -> tuple[Objective, Goal]:
    if not isinstance(value, dict):
        raise InvalidConfigError("metric: must be a mapping like {name: val_accuracy, goal: ...}")
    extra = sorted(set(value) - {"name", "goal"})
    if extra:
        raise InvalidConfigError(f"metric.{extra[0]}: unknown key; use name and goal")
    objective = _choice(Objective, value.get("name", "val_accuracy"), "metric.name")
    default = Goal.MAXIMIZE if objective is Objective.VAL_ACCURACY else Goal.MINIMIZE
    return objective, _choice(Goal, value.get("goal", default.value), "metric.goal")


def _run_cap(value: Any, method: Method, parameters: tuple[ParameterSpec, ...]) -> int:
    grid_size = math.prod(len(p.values or ()) for p in parameters)
    if method is Method.GRID and grid_size > MAX_TRIALS:
        raise InvalidConfigError(
            f"parameters: the grid has {grid_size:,} combinations; at most {MAX_TRIALS:,} "
            "trials are allowed (use fewer values, or method: random with a run_cap)"
        )
    if value is None:
        if method is Method.RANDOM:
            raise InvalidConfigError("run_cap: method random needs run_cap (how many trials)")
        return grid_size
    cap = _integer(value, "run_cap", 1, MAX_TRIALS)
    return min(cap, grid_size) if method is Method.GRID else cap


def _asha(value: Any) -> AshaSpec | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidConfigError("early_terminate: must be a mapping like {type: asha, ...}")
    extra = sorted(set(value) - {"type", "min_steps", "reduction_factor"})
    if extra:
        raise InvalidConfigError(f"early_terminate.{extra[0]}: unknown key")
    if value.get("type") != "asha":
        raise InvalidConfigError("early_terminate.type: only asha is supported")
    return AshaSpec(
        min_steps=_integer(value.get("min_steps"), "early_terminate.min_steps", 1, 10_000_000),
        reduction_factor=_integer(
            value.get("reduction_factor", 3), "early_terminate.reduction_factor", 2, 1_000
        ),
    )


def _parameters(value: Any, method: Method, *, on_dataset: bool) -> tuple[ParameterSpec, ...]:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise InvalidConfigError("parameters: must be a mapping of option name to its values")
    parsed = []
    given_as: dict[str, str] = {}
    for raw_name, spec in value.items():
        name = raw_name.replace("-", "_")
        name = _PARAMETER_FOR_FIELD.get(name, name)  # learning_rate, as configs say it: lr
        if name not in PARAMETER_FIELDS:
            known = [*PARAMETER_FIELDS, *_PARAMETER_FOR_FIELD]
            raise InvalidConfigError(
                f"parameters.{raw_name}: unknown parameter{did_you_mean(str(raw_name), known)} "
                f"(the options of `trainq train`: {', '.join(PARAMETER_FIELDS)}, or their config "
                f"names such as learning_rate)"
            )
        if name in given_as:
            raise InvalidConfigError(
                f"parameters.{raw_name}: {given_as[name]} and {raw_name} name the same "
                "hyperparameter: give one"
            )
        given_as[name] = str(raw_name)
        parsed.append(_parameter(name, spec, method, f"parameters.{raw_name}", on_dataset))
    return tuple(parsed)


def _parameter(name: str, spec: Any, method: Method, key: str, on_dataset: bool) -> ParameterSpec:
    if not isinstance(spec, dict):
        raise InvalidConfigError(
            f"{key}: must be {{value: x}}, {{values: [...]}} or a distribution"
        )
    shapes = [shape for shape in ("value", "values", "distribution") if shape in spec]
    if len(shapes) != 1:
        raise InvalidConfigError(f"{key}: give exactly one of value, values or distribution")
    allowed = {"distribution", "min", "max"} if shapes[0] == "distribution" else {shapes[0]}
    extra = sorted(set(spec) - allowed)
    if extra:
        raise InvalidConfigError(f"{key}.{extra[0]}: unknown key here")
    if shapes[0] == "value":
        value = check_value(name, spec["value"], f"{key}.value", on_dataset=on_dataset)
        return ParameterSpec(name, values=(value,))
    if shapes[0] == "values":
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise InvalidConfigError(f"{key}.values: must be a non-empty list")
        checked = (
            check_value(name, v, f"{key}.values[{i}]", on_dataset=on_dataset)
            for i, v in enumerate(values)
        )
        return ParameterSpec(name, values=tuple(checked))
    if method is Method.GRID:
        raise InvalidConfigError(f"{key}: method grid needs value or values, not a distribution")
    return _distribution(name, spec, key, on_dataset)


def _distribution(name: str, spec: dict[str, Any], key: str, on_dataset: bool) -> ParameterSpec:
    distribution = _choice(Distribution, spec["distribution"], f"{key}.distribution")
    bounds = []
    for bound in ("min", "max"):
        number = spec.get(bound)
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise InvalidConfigError(f"{key}.{bound}: a number is required")
        if distribution is Distribution.INT_UNIFORM and not isinstance(number, int):
            raise InvalidConfigError(f"{key}.{bound}: int_uniform needs whole numbers")
        bounds.append(check_value(name, number, f"{key}.{bound}", on_dataset=on_dataset))
    low, high = bounds
    if low > high:
        raise InvalidConfigError(f"{key}.min: {low} is greater than max {high}")
    if distribution is Distribution.LOG_UNIFORM and low <= 0:
        raise InvalidConfigError(f"{key}.min: log_uniform needs min > 0, got {low}")
    if name not in _INTEGER_PARAMETERS and distribution is Distribution.INT_UNIFORM:
        raise InvalidConfigError(f"{key}.distribution: {name} is not a whole number")
    if name in _INTEGER_PARAMETERS and distribution is not Distribution.INT_UNIFORM:
        raise InvalidConfigError(f"{key}.distribution: {name} is a whole number; use int_uniform")
    return ParameterSpec(name, distribution=distribution, low=low, high=high)


def check_value(name: str, value: Any, key: str, *, on_dataset: bool = False) -> Any:
    """Check one parameter value with ``trainq train``'s validator; return it as stored.

    ``on_dataset``: the sweep trains on a stored version, whose training examples bound
    ``batch_size`` once it is found (``worker.sweep_plan.trial_config``), not Fashion-MNIST's.

    Raises:
        InvalidConfigError: naming ``key`` and what the validator said.
    """
    field = PARAMETER_FIELDS[name]
    probe: dict[str, Any] = {field: value}
    if field == "checkpoint_every_steps":
        probe["chunk_steps"] = 1  # alone, only the value's own range is checked here
    if field == "batch_size":
        probe["val_size"] = 0
        if on_dataset:
            probe["data_sha256"] = _SOME_VERSION
    try:
        checked = parse_train_config(probe)
    except InvalidConfigError as exc:
        reason = str(exc).removeprefix("invalid config: ").removeprefix(f"{field}: ")
        raise InvalidConfigError(f"{key}: {reason}") from None
    stored = getattr(checked, field)
    return stored.value if hasattr(stored, "value") else stored


def _integer(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidConfigError(f"{key}: a whole number in {low}..{high} is required")
    if not low <= value <= high:
        raise InvalidConfigError(f"{key}: {value} is outside {low}..{high}")
    return value


def _choice(enum: type[EnumT], value: Any, key: str) -> EnumT:
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum)
        raise InvalidConfigError(f"{key}: {value!r} is not one of {choices}") from None
