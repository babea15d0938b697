"""Can this machine train on a GPU? Asked before a ``--device gpu`` worker starts.

The worker's main process must never import TensorFlow (it forks the job processes), so the
question is answered in two steps: without a loaded NVIDIA driver (``/proc/driver/nvidia/gpus``
or ``/dev/nvidia0``) the answer is no at once; with one, a short subprocess imports TensorFlow
and lists the GPUs it sees, which also catches a TensorFlow build without CUDA.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: Importing TensorFlow and initialising CUDA takes seconds; a hung driver must not hang the CLI.
PROBE_TIMEOUT_S = 120.0
_PROBE = (
    "from worker.tensorflow_import import tf\nprint(len(tf.config.list_physical_devices('GPU')))\n"
)


def nvidia_driver_loaded(
    proc: Path = Path("/proc/driver/nvidia/gpus"), dev: Path = Path("/dev")
) -> bool:
    """True when the NVIDIA kernel driver lists a GPU or exposes a device node."""
    return (proc.is_dir() and any(proc.iterdir())) or (dev / "nvidia0").exists()


def gpu_problem() -> str | None:
    """Why this machine cannot train on a GPU, or None when TensorFlow sees at least one."""
    if not nvidia_driver_loaded():
        return "no NVIDIA GPU driver is loaded (no /proc/driver/nvidia/gpus, no /dev/nvidia0)"
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"TensorFlow did not list the GPUs within {PROBE_TIMEOUT_S:.0f} s"
    count = probe.stdout.strip().splitlines()[-1:] if probe.returncode == 0 else []
    if not count or not count[0].isdigit():
        return f"TensorFlow failed to start: {probe.stderr.strip()[-300:]}"
    if int(count[0]) == 0:
        return "the NVIDIA driver is loaded but TensorFlow sees no GPU (a build without CUDA?)"
    return None
