"""``trainq export``: a run's weights as a NumPy ``.npz``, with what it takes to use them.

Arrays: ``W`` (D, C) and ``b`` (C,) float32; ``features`` D and ``classes`` C; ``class_names``
(C strings: the dataset's, or the numbers); ``scaling`` ("divide_by_255" or "standardise") and,
when standardising, ``mean`` and ``std`` (D,) float32, so that
``logits = ((x - mean) / std) @ W + b`` (or ``(x / 255) @ W + b``) without trainq.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api_cli.output import literal, stdout
from api_cli.output_file import write_all_or_nothing
from api_cli.state import STATE
from storage.errors import CheckpointNotFoundError
from storage.validation import MAX_ID, MAX_STEPS
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from worker.training_data import TrainingData


def export(
    run_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The run's id.")],
    out: Annotated[Path, typer.Option(help="Destination .npz file.", dir_okay=False)],
    checkpoint: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_STEPS, help="Checkpoint step (default: the newest)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Export weights and the scaling of their inputs: logits = scale(x) @ W + b.

    scale(x) is x / 255 for images (as in the seed) or (x - mean) / std for features, with the
    statistics of the run's dataset version, written into the file beside W and b.

    Example: trainq export 7 --out run7.npz   (then numpy.load('run7.npz')['W'])
    """
    import numpy as np

    from worker.config import parse_train_config
    from worker.training_data import load_training_data

    check_destination(out, force=force)
    repository = STATE.repository
    run = repository.get_run(run_id)
    if checkpoint is None:
        found = repository.latest_checkpoint(run_id)
        if found is None:
            raise CheckpointNotFoundError(f"run {run_id} has no checkpoint yet")
    else:
        found = repository.get_checkpoint(run_id, checkpoint)
    data = load_training_data(parse_train_config(run.config), STATE.settings, repository)
    arrays = {"W": found.arrays["W"].astype(np.float32), "b": found.arrays["b"].astype(np.float32)}
    _write_npz(out, arrays | _data_arrays(data))
    stdout.print(
        f"wrote {literal(out)} (run {run_id}, step {found.info.step}, "
        f"sha256 {found.info.sha256[:12]}…)"
    )


def check_destination(out: Path, *, force: bool, option: str = "--out") -> None:
    """Refuse ``out`` before anything is read: not a ``.npz`` name, an existing file (unless
    ``force``), or no such directory. Messages name ``option``, the option that gave the file
    (``--export`` for ``sweep best``).

    Raises:
        InvalidConfigError: (exit 2) saying what to do.
    """
    if out.suffix != ".npz":
        raise InvalidConfigError(f"{option} {out}: the file name must end in .npz")
    if out.exists() and not force:
        raise InvalidConfigError(f"{option} {out} exists; pass --force to overwrite it")
    if not out.parent.is_dir():
        raise InvalidConfigError(f"{option} {out}: directory {out.parent} does not exist")


def _data_arrays(data: TrainingData) -> dict[str, NDArray[Any]]:
    """What the file says of the data: width, class names and the scaling with its numbers."""
    import numpy as np

    scaling = data.scaling
    arrays: dict[str, NDArray[Any]] = {
        "features": np.asarray(data.dims.features, dtype=np.int64),
        "classes": np.asarray(data.dims.classes, dtype=np.int64),
        "class_names": np.asarray(data.class_names, dtype=np.str_),
        "scaling": np.asarray(scaling.kind.value, dtype=np.str_),
    }
    if scaling.mean is not None and scaling.std is not None:
        arrays |= {"mean": np.asarray(scaling.mean), "std": np.asarray(scaling.std)}
    return arrays


def _write_npz(out: Path, arrays: dict[str, NDArray[Any]]) -> None:
    """Write ``arrays`` to ``out`` all or nothing (exit 73 and no file when it fails)."""
    import numpy as np

    write_all_or_nothing(out, lambda handle: np.savez(handle, allow_pickle=False, **arrays))
