"""Job configurations: typed, frozen, validated by the same code in the CLI and in the worker.

No TensorFlow here: the CLI imports this module. Every hyperparameter has a comment; units are in
the names. Finite-only floats: Python's ``json`` and Click both accept ``nan``/``inf``.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Final, TypeGuard, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from storage.validation import MAX_ID, MAX_SEED, MAX_STEPS
from worker.choices import (
    DEFAULT_CHECKPOINT_EVERY_STEPS,
    DEFAULT_CHUNK_STEPS,
    TRAIN_DEFAULTS,
    Dataset,
    Device,
    Init,
    Schedule,
    Split,
)
from worker.errors import InvalidConfigError

# The enums live in worker.choices (no pydantic, for the CLI's start); they are re-exported here
# because a config's fields are where callers look for them.
__all__ = [
    "MAX_TRAIN_EXAMPLES",
    "TRAIN_EXAMPLES",
    "Dataset",
    "Device",
    "EvalConfig",
    "Init",
    "Schedule",
    "Split",
    "TrainConfig",
    "parse_eval_config",
    "parse_train_config",
    "require_fits_training_split",
]

#: Training images of the built-in Fashion-MNIST (a config without ``data_sha256``).
TRAIN_EXAMPLES = 60_000
#: Any dataset's training examples at most: batches index them with int32.
MAX_TRAIN_EXAMPLES = 2**31 - 1
#: A dataset version's content hash, as ``worker.datasets.content_hash`` writes it.
_SHA256_PATTERN = r"^[0-9a-f]{64}$"
#: How people name a version ("NAME@N"); bounded, since it is stored and printed.
_DATA_NAME_PATTERN = r"^[^\s@][^\s]{0,199}@[0-9]{1,9}$"


ConfigT = TypeVar("ConfigT", bound=BaseModel)

_FROZEN = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, use_enum_values=False)


#: Widest pack of trials (``TrainConfig.pack``): 1,024 trials of 784 x 10 hold ~350 MB of state.
MAX_PACK: Final = 1024

#: The two fields fitted to each other when only one is given (None means "not given").
_FITTED: Final = frozenset({"checkpoint_every_steps", "chunk_steps"})


def _positive_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_STEPS


def _largest_divisor_up_to(number: int, limit: int) -> int:
    """The largest divisor of ``number`` that is at most ``limit``."""
    return max(d for d in range(1, min(number, limit) + 1) if number % d == 0)


class TrainConfig(BaseModel):
    """Hyperparameters of one training run. Defaults reproduce the seed notebook."""

    model_config = _FROZEN

    # Plain SGD step size; the seed uses 0.01.
    learning_rate: Annotated[float, Field(gt=0, le=1000)] = TRAIN_DEFAULTS.learning_rate
    # Examples per step; the seed uses 128. At most the training examples left after val_size
    # (checked here for Fashion-MNIST, against the dataset's count where the dataset is known).
    batch_size: Annotated[int, Field(ge=1, le=MAX_TRAIN_EXAMPLES)] = TRAIN_DEFAULTS.batch_size
    # Number of SGD steps ("Número del lote" 1..steps); the seed runs 10,000.
    steps: Annotated[int, Field(ge=1, le=MAX_STEPS)] = TRAIN_DEFAULTS.steps
    # Seeds the initial weights and the data order; None means "draw one" (see resolved()).
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None
    # Initial weights and bias: standard normal (the seed) or zeros.
    init: Init = TRAIN_DEFAULTS.init
    # Heavy-ball momentum coefficient; 0 is plain SGD.
    momentum: Annotated[float, Field(ge=0, lt=1)] = TRAIN_DEFAULTS.momentum
    # L2 weight decay coefficient added to the loss as l2/2 * ||W||^2 (bias not decayed).
    l2: Annotated[float, Field(ge=0, le=10)] = TRAIN_DEFAULTS.l2
    # Learning-rate schedule over the steps.
    schedule: Schedule = TRAIN_DEFAULTS.schedule
    # Steps between checkpoints; a multiple of chunk_steps so checkpoints fall on chunk ends
    # (given alone, the chunk is fitted to it; see _fit_the_one_left_unset).
    checkpoint_every_steps: Annotated[int, Field(ge=1, le=MAX_STEPS)] = (
        DEFAULT_CHECKPOINT_EVERY_STEPS
    )
    # Steps per compiled call, and per stored metric row.
    chunk_steps: Annotated[int, Field(ge=1, le=100_000)] = DEFAULT_CHUNK_STEPS
    # Where to train.
    device: Device = TRAIN_DEFAULTS.device
    # Which dataset to train on.
    dataset: Dataset = TRAIN_DEFAULTS.dataset
    # Training examples held out for validation (never trained on); 0 keeps them all (the seed).
    val_size: Annotated[int, Field(ge=0, le=MAX_TRAIN_EXAMPLES - 1)] = TRAIN_DEFAULTS.val_size
    # Seeds which images are held out; None means "the run's seed" (see resolved()).
    val_seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None
    # Compile each chunk with XLA (faster steps, a compile once per shape and host) rather than
    # as a plain graph: how the run is computed, not what it computes. None until submission
    # decides (see resolved(), worker.training.xla_choice); a stored config without it (a run
    # from before this field) trained with XLA and resumes with XLA.
    xla: bool | None = None
    # The width of the compiled pack the run trains in (``worker.training.pack``): 1 alone; P > 1
    # a sweep trial trained side by side with up to P-1 others on shared batches. How it runs,
    # recorded so that a resume or a rerun takes a product of the same width: on some builds a
    # trial's last bits depend on it (never on which trials share the pack).
    pack: Annotated[int, Field(ge=1, le=MAX_PACK)] = 1
    # Where the pack narrows, as (from step, width) pairs, steps rising and widths falling: a
    # sweep with ASHA narrows at its rungs, where most trials leave (``worker.pack_plan``). Fixed
    # when the sweep is planned, so a trial's widths never depend on which mates it had.
    pack_narrows: tuple[tuple[int, int], ...] = ()
    # The dataset version trained on, by content hash (``trainq data``); None is the built-in
    # Fashion-MNIST, as every run before datasets trained (so old runs stay valid, unchanged).
    data_sha256: Annotated[str, Field(pattern=_SHA256_PATTERN)] | None = None
    # The same version as people name it ("NAME@N"), recorded for them; the hash is what counts.
    data_name: Annotated[str, Field(pattern=_DATA_NAME_PATTERN)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _fit_the_one_left_unset(cls, data: Any) -> Any:
        """Checkpoints fall on chunk ends, so when only one of the two is given, the other is
        fitted to it: any checkpoint interval works without a chunk size the user never set.

        The chunk becomes the largest divisor of the interval up to the default chunk; the
        interval, the multiple of the chunk nearest the default interval. Stored configs carry
        both, so this never changes a stored run.
        """
        if not isinstance(data, dict):
            return data
        every, chunk = data.get("checkpoint_every_steps"), data.get("chunk_steps")
        fitted = {k: v for k, v in data.items() if v is not None or k not in _FITTED}
        if chunk is None and _positive_int(every):
            fitted["chunk_steps"] = _largest_divisor_up_to(every, DEFAULT_CHUNK_STEPS)
        elif every is None and _positive_int(chunk):
            multiple = max(1, round(DEFAULT_CHECKPOINT_EVERY_STEPS / chunk))
            fitted["checkpoint_every_steps"] = min(chunk * multiple, MAX_STEPS)
        return fitted

    # pydantic's lax mode reads True as 1 and "10" as 10: a slip of a Python API caller, never
    # what a stored config holds, so both are refused.
    @field_validator(
        "batch_size",
        "steps",
        "seed",
        "checkpoint_every_steps",
        "chunk_steps",
        "val_size",
        "val_seed",
        "pack",
        mode="before",
    )
    @classmethod
    def _counts_are_numbers(cls, value: Any) -> Any:
        if isinstance(value, bool | str | bytes):
            raise ValueError("must be a whole number, not a string or True/False")
        return value

    @field_validator("learning_rate", "momentum", "l2", mode="before")
    @classmethod
    def _rates_are_numbers(cls, value: Any) -> Any:
        if isinstance(value, bool | str | bytes):
            raise ValueError("must be a number, not a string or True/False")
        return value

    @field_validator("xla", mode="before")
    @classmethod
    def _xla_is_a_flag(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, bool):
            raise ValueError("must be True, False or None")
        return value

    @model_validator(mode="after")
    def _the_pack_only_narrows(self) -> TrainConfig:
        width, step = self.pack, 0
        for from_step, narrower in self.pack_narrows:
            if not (from_step > step and 1 <= narrower < width):
                raise ValueError(
                    f"pack_narrows: ({from_step}, {narrower}) must come after step {step} and "
                    f"be narrower than {width}"
                )
            width, step = narrower, from_step
        return self

    @model_serializer(mode="wrap")
    def _packing_only_when_packed(self, handler: SerializerFunctionWrapHandler) -> Any:
        """A run trained alone is stored without ``pack`` and ``pack_narrows``: as every run was
        before packs, so that a worker of an older release still reads it (it refuses fields it
        does not know) while a cluster is upgraded one host at a time."""
        data = handler(self)
        if isinstance(data, dict) and self.pack == 1 and not self.pack_narrows:
            data.pop("pack", None)
            data.pop("pack_narrows", None)
        return data

    def pack_width_at(self, step: int) -> int:
        """The width of the pack this run's step ``step + 1`` trains in (0-based ``step``)."""
        width = self.pack
        for from_step, narrower in self.pack_narrows:
            if step >= from_step:
                width = narrower
        return width

    @model_validator(mode="after")
    def _checkpoints_fall_on_chunk_ends(self) -> TrainConfig:
        every, chunk = self.checkpoint_every_steps, self.chunk_steps
        if every % chunk != 0:
            lower = every // chunk * chunk
            choices = " or ".join(str(n) for n in (lower, lower + chunk) if n > 0)
            raise ValueError(
                f"checkpoint_every_steps {every} must be a multiple of chunk_steps {chunk} "
                f"(checkpoints fall on chunk ends): try checkpoint_every_steps {choices}, "
                "or give only one of the two"
            )
        return self

    @model_validator(mode="after")
    def _batches_fit_the_training_images(self) -> TrainConfig:
        if self.data_name is not None and self.data_sha256 is None:
            raise ValueError("data_name names a dataset version but data_sha256 is missing")
        if self.data_sha256 is None:  # the built-in Fashion-MNIST: its count is known here
            problem = _fit_problem(self, TRAIN_EXAMPLES, "Fashion-MNIST")
            if problem is not None:
                raise ValueError(problem)
        return self

    def resolved(self, *, xla: bool = True) -> TrainConfig:
        """Return this config with a concrete seed (drawn now when none was given) and a
        concrete XLA choice, both recorded with the run so that a resume takes the same path.

        The validation seed defaults to the run's seed. ``xla`` is the choice for a config that
        leaves it open: an embedded ``trainq train`` passes what this machine's figures say
        (``worker.training.xla_choice.choose_xla``); a worker, which compiles once for every run
        of the same shape, takes XLA. A choice already made is never changed.
        """
        seed = self.seed if self.seed is not None else secrets.randbelow(MAX_SEED + 1)
        val_seed = self.val_seed
        if val_seed is None and (self.seed != seed or self.val_size > 0):
            val_seed = seed
        chosen = self.xla if self.xla is not None else xla
        if (seed, val_seed, chosen) == (self.seed, self.val_seed, self.xla):
            return self
        return self.model_copy(update={"seed": seed, "val_seed": val_seed, "xla": chosen})

    @property
    def seed_value(self) -> int:
        """The seed; only valid on a resolved config."""
        if self.seed is None:
            raise InvalidConfigError("seed: the config was not resolved; call resolved() first")
        return self.seed


def require_fits_training_split(config: TrainConfig, train_examples: int, dataset: str) -> None:
    """Check ``batch_size`` and ``val_size`` against the ``train_examples`` of the dataset
    ``config`` trains on (named ``dataset`` in the message).

    Raises:
        InvalidConfigError: naming the option and the count it must fit.
    """
    problem = _fit_problem(config, train_examples, dataset)
    if problem is not None:
        raise InvalidConfigError(f"invalid config: {problem}")


def _fit_problem(config: TrainConfig, train_examples: int, dataset: str) -> str | None:
    if config.val_size >= train_examples:
        return (
            f"val_size ({config.val_size}) must be less than the {train_examples} training "
            f"examples of {dataset}: some must be left to train on"
        )
    left = train_examples - config.val_size
    if config.batch_size > left:
        return (
            f"batch_size ({config.batch_size}) must not exceed the {left} training examples "
            f"of {dataset} left after holding out val_size ({config.val_size})"
        )
    return None


class EvalConfig(BaseModel):
    """An evaluation job: one checkpoint of one training run over one whole split."""

    model_config = _FROZEN

    # The training run whose weights are evaluated.
    run_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    # Checkpoint step to evaluate; None means the newest one at the time the job runs.
    checkpoint_step: Annotated[int, Field(ge=1, le=MAX_STEPS)] | None = None
    # Which split to evaluate on.
    split: Split = Split.TEST
    # Where to evaluate.
    device: Device = Device.AUTO


def parse_train_config(data: Any) -> TrainConfig:
    """Validate untrusted input (CLI options, a stored JSON) as a TrainConfig.

    Raises:
        InvalidConfigError: naming each offending field and why.
    """
    from worker.parameter_names import canonical_fields

    return _parse(TrainConfig, canonical_fields(data) if isinstance(data, dict) else data)


def parse_eval_config(data: Any) -> EvalConfig:
    """Validate untrusted input as an EvalConfig.

    Raises:
        InvalidConfigError: naming each offending field and why.
    """
    return _parse(EvalConfig, data)


def _parse(model: type[ConfigT], data: Any) -> ConfigT:
    if not isinstance(data, dict):
        raise InvalidConfigError(f"config must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidConfigError(_describe(exc, model)) from None


def _describe(exc: ValidationError, model: type[BaseModel]) -> str:
    """Each problem in plain words (``learning_rate: must be > 0, got -1``), without pydantic's
    own phrasing ("Value error, ...", "Input should be ...")."""
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        message = _plain_message(error)
        if error["loc"] and "input" in error and error["type"] != "extra_forbidden":
            message = f"{message}, got {error['input']!r}"
        if error["type"] == "extra_forbidden":
            from worker.parameter_names import accepted_names, did_you_mean

            message += did_you_mean(field, accepted_names(model.model_fields))
        problems.append(f"{field}: {message}" if field else message)
    return "invalid config: " + "; ".join(problems)


#: pydantic's error types, said in trainq's words (``{…}`` filled from the error's context).
_PLAIN_MESSAGES: Final = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "finite_number": "must be a finite number",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "enum": "must be one of {expected}",
    "extra_forbidden": "unknown option",
    "missing": "is required",
}


def _plain_message(error: Any) -> str:
    template = _PLAIN_MESSAGES.get(error["type"])
    if template is not None:
        try:
            return template.format(**error.get("ctx", {}))
        except (KeyError, IndexError):
            pass
    message = str(error["msg"])
    return message.removeprefix("Value error, ")
