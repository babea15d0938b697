"""``trainq export``: a run's weights as a NumPy ``.npz`` (``W`` 784x10, ``b`` 10, float32)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api_cli.output import stdout
from api_cli.state import STATE
from storage.errors import CheckpointNotFoundError
from worker.errors import InvalidConfigError


def export(
    run_id: Annotated[int, typer.Argument(help="The run's id.")],
    out: Annotated[Path, typer.Option(help="Destination .npz file.", dir_okay=False)],
    checkpoint: Annotated[
        int | None, typer.Option(help="Checkpoint step (default: the newest).")
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
    temporary = out.with_suffix(".partial.npz")
    np.savez(
        temporary, W=found.arrays["W"].astype(np.float32), b=found.arrays["b"].astype(np.float32)
    )
    temporary.replace(out)  # never leave a half-written file under the requested name
    stdout.print(
        f"wrote {out} (run {run_id}, step {found.info.step}, sha256 {found.info.sha256[:12]}…)"
    )
