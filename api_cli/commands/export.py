"""``trainq export``: a run's weights as a NumPy ``.npz`` (``W`` 784x10, ``b`` 10, float32)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api_cli.output import literal, stdout
from api_cli.output_file import write_all_or_nothing
from api_cli.state import STATE
from storage.errors import CheckpointNotFoundError
from storage.validation import MAX_ID, MAX_STEPS
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


def export(
    run_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The run's id.")],
    out: Annotated[Path, typer.Option(help="Destination .npz file.", dir_okay=False)],
    checkpoint: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_STEPS, help="Checkpoint step (default: the newest)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Export weights for pixels scaled to [0, 1], as in the seed: logits = x @ W + b.

    Example: trainq export 7 --out run7.npz   (then numpy.load('run7.npz')['W'])
    """
    import numpy as np

    if out.suffix != ".npz":
        raise InvalidConfigError(f"--out {out}: the file name must end in .npz")
    if out.exists() and not force:
        raise InvalidConfigError(f"--out {out} exists; pass --force to overwrite it")
    if not out.parent.is_dir():
        raise InvalidConfigError(f"--out {out}: directory {out.parent} does not exist")
    repository = STATE.repository
    repository.get_run(run_id)
    if checkpoint is None:
        found = repository.latest_checkpoint(run_id)
        if found is None:
            raise CheckpointNotFoundError(f"run {run_id} has no checkpoint yet")
    else:
        found = repository.get_checkpoint(run_id, checkpoint)
    _write_npz(out, found.arrays["W"].astype(np.float32), found.arrays["b"].astype(np.float32))
    stdout.print(
        f"wrote {literal(out)} (run {run_id}, step {found.info.step}, "
        f"sha256 {found.info.sha256[:12]}…)"
    )


def _write_npz(out: Path, weights: NDArray[np.float32], bias: NDArray[np.float32]) -> None:
    """Write ``W`` and ``b`` to ``out`` all or nothing (exit 73 and no file when it fails)."""
    import numpy as np

    write_all_or_nothing(out, lambda handle: np.savez(handle, W=weights, b=bias))
