"""``trainq export``: a run's weights as a NumPy ``.npz`` (``W`` 784x10, ``b`` 10, float32)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api_cli.output import stdout
from api_cli.state import STATE
from storage.errors import CheckpointNotFoundError, OutputWriteError
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
        f"wrote {out} (run {run_id}, step {found.info.step}, sha256 {found.info.sha256[:12]}…)"
    )


def _write_npz(out: Path, weights: NDArray[np.float32], bias: NDArray[np.float32]) -> None:
    """Write ``W`` and ``b`` to ``out`` all or nothing: a failed write leaves no file behind.

    Raises:
        OutputWriteError: the file could not be written; the message says why (no space left,
            read-only file system, permission denied).
    """
    import numpy as np

    # Written beside the target, then renamed: never a half-written file under the requested
    # name, and a pid in the name keeps two exports to one directory apart.
    temporary = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with temporary.open("xb") as handle:
            np.savez(handle, W=weights, b=bias)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        reason = (exc.strerror or type(exc).__name__).lower()
        raise OutputWriteError(
            f"cannot write {out}: {reason}; free some space or choose another --out"
        ) from None
