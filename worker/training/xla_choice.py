"""Whether a run's chunks compile with XLA, decided from what this machine measured.

XLA's steps were faster than the plain graph's on every CPU measured (about 1.2x on a 2-core
Xeon, 2.1x on a 2-core EPYC), but compiling a chunk costs about 0.6-1 s more than tracing a graph,
in every process that trains. Two things here make the choice cheap and right on any CPU:

1. The compiled chunks are kept on disk, per home and per host type (CPU model and flags, the
   TensorFlow build): TensorFlow's persistent XLA cache, which a process must name before it
   imports TensorFlow (:func:`use_compile_cache`). The compile is then paid once per shape, and
   later processes load it in about the time a graph takes to trace.
2. What finished runs measured on this host type (steps/s of each path, seconds before the first
   step, which shapes are compiled) is kept beside it (:func:`record_run`). A run that leaves the
   choice open takes the path the figures say ends sooner (:func:`prefers_xla`): no calibration
   run, nothing measured on the way to a run's first step.

The choice is stored with the run (its config's ``xla``) so that a resume takes the same path and
ends bit-identical, whatever this machine measures by then. No TensorFlow here: the CLI calls
:func:`choose_xla` before TensorFlow has imported.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import logging
import os
import platform
import re
import statistics
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from worker.training import compile_cache

if TYPE_CHECKING:
    from worker.config import TrainConfig
    from worker.training.state import TrainResult

logger = logging.getLogger(__name__)

#: Largest ``steps * batch_size`` index tensor built for one compiled call (4 MiB of int32).
MAX_INDICES_PER_CALL = 1 << 20

#: Free space below which the compile cache is not used (an entry is ~0.1-1 MiB).
MIN_FREE_BYTES: Final = 256 << 20

#: ... and free inodes (an entry is one file, written as a temporary one and renamed).
MIN_FREE_INODES: Final = 64

#: Observations kept per figure; the figure is their median (the machine may be shared).
KEPT_OBSERVATIONS: Final = 5


@dataclass(frozen=True)
class Figures:
    """Speeds of the two compile paths for one chunk shape on one host type."""

    graph_steps_per_s: float  # training only, after the first chunk
    xla_steps_per_s: float
    graph_setup_s: float  # a train call's seconds beyond its steps: trace (and set-up)
    xla_compile_setup_s: float  # the same for XLA when the shape must be compiled
    xla_cached_setup_s: float  # ... and when its compiled chunk is in the cache


#: Before anything was measured here. Measured on a 2-core Xeon (Emerald Rapids, TF 2.21): graph
#: ~4,000-4,600 steps/s, XLA ~5,000-5,600; the EPYC of issue 16 gave 2,339 and 5,025. The graph's
#: figure is the lower one so that a fresh home's first long-enough run compiles XLA, which every
#: later run here reuses, and measures XLA's real speed.
DEFAULT_FIGURES: Final = Figures(
    graph_steps_per_s=3_000.0,
    xla_steps_per_s=5_000.0,
    graph_setup_s=0.4,
    xla_compile_setup_s=1.0,
    xla_cached_setup_s=0.4,
)


def prefers_xla(steps: int, figures: Figures, *, compiled: bool) -> bool:
    """Whether a run of ``steps`` steps ends sooner with XLA than as a plain graph.

    Args:
        steps: The steps this process will train.
        figures: This host type's speeds (:meth:`Measurements.figures`).
        compiled: Whether this shape's XLA chunk is already in the cache (only the cached load
            is then paid, not the compile).
    """
    xla_setup_s = figures.xla_cached_setup_s if compiled else figures.xla_compile_setup_s
    xla_s = xla_setup_s + steps / figures.xla_steps_per_s
    graph_s = figures.graph_setup_s + steps / figures.graph_steps_per_s
    return xla_s <= graph_s


@dataclass(frozen=True)
class Measurements:
    """Recent observations of finished runs on one host type, per figure, and the shapes whose
    XLA chunk was compiled (so is in the cache)."""

    observed: Mapping[str, tuple[float, ...]]
    xla_shapes: frozenset[str] = frozenset()

    def figures(self) -> Figures:
        """Medians of what was observed; defaults for the rest. A speed measured for one path
        only stands in for the other through the default ratio of the two."""
        medians = {name: statistics.median(v) for name, v in self.observed.items() if v}
        known = {f.name: medians[f.name] for f in fields(Figures) if f.name in medians}
        figures = replace(DEFAULT_FIGURES, **known)
        graph, xla = "graph_steps_per_s" in known, "xla_steps_per_s" in known
        ratio = DEFAULT_FIGURES.xla_steps_per_s / DEFAULT_FIGURES.graph_steps_per_s
        if graph and not xla:
            figures = replace(figures, xla_steps_per_s=figures.graph_steps_per_s * ratio)
        elif xla and not graph:
            figures = replace(figures, graph_steps_per_s=figures.xla_steps_per_s / ratio)
        return figures

    def observe(self, name: str, value: float) -> Measurements:
        """These measurements with one more observation of ``name``."""
        kept = (*self.observed.get(name, ()), value)[-KEPT_OBSERVATIONS:]
        return replace(self, observed={**self.observed, name: kept})


@dataclass(frozen=True)
class DataShape:
    """What a compiled chunk is specialised on beyond the config: the data's D, C and kind."""

    features: int = 784  # D (the built-in Fashion-MNIST's pixels)
    classes: int = 10  # C
    feature_kind: str = "uint8"  # "uint8" or "float32" (``worker.training_data.FeatureKind``)


#: The built-in Fashion-MNIST's, whose keys are written as before datasets (figures kept).
FASHION_MNIST_SHAPE: Final = DataShape()


# Whether chunks may be compiled with XLA (read when a run starts). Measured on CPU (TF 2.21, 2
# cores, batch 128, bench/training_bench.py): XLA ~1.3-1.5x the steps/s of the same loop as a plain
# graph (15,200 against 11,500), as it fuses the gather, the uint8->float32 cast and the
# elementwise work around the two matmuls, and drops the graph executor's per-op dispatch.
USE_XLA = True


def compiles_with_xla(config: TrainConfig) -> bool:
    """Whether ``config``'s chunks are compiled with XLA.

    A function of the stored config alone (never of the machine or of what this process has
    compiled already), so that a resumed run takes the same path and ends bit-identical: its
    ``xla`` field, chosen at submission (``TrainConfig.resolved``); absent, XLA (runs stored
    before the field existed trained with it).
    """
    return USE_XLA and config.xla is not False


def shape_key(config: TrainConfig, data: DataShape = FASHION_MNIST_SHAPE) -> str:
    """What a compiled chunk is specialised on (``worker.training.step.ChunkShape``), but the
    path, as the config says it before TensorFlow resolves the device, and the data's width."""
    steps = steps_per_call(config.chunk_steps, config.batch_size)
    key = f"{config.device.value}-b{config.batch_size}-k{steps}-m{int(config.momentum > 0)}"
    if data != FASHION_MNIST_SHAPE:
        key += f"-d{data.features}-c{data.classes}-{data.feature_kind}"
    return key


def steps_per_call(chunk_steps: int, batch_size: int) -> int:
    """Steps per compiled call: the chunk, bounded so one call's index tensor stays small."""
    return min(chunk_steps, max(1, MAX_INDICES_PER_CALL // batch_size))


def choose_xla(config: TrainConfig, home: Path, data: DataShape = FASHION_MNIST_SHAPE) -> bool:
    """The path for a run of ``config`` on data of shape ``data`` trained in a fresh process
    here, from the figures of this host type kept under ``home`` (defaults where nothing was
    measured)."""
    measured = load_measurements(home)
    compiled = shape_key(config, data) in measured.xla_shapes
    return prefers_xla(config.steps, measured.figures(), compiled=compiled)


def record_run(
    home: Path,
    config: TrainConfig,
    result: TrainResult,
    *,
    traced: bool,
    data: DataShape = FASHION_MNIST_SHAPE,
) -> None:
    """Keep what a finished ``train`` call of ``config`` on data of shape ``data`` measured, for
    the next choice here.

    ``traced``: whether that call traced its chunk (a process's first run of the shape); only
    then do its seconds before the first step say what a fresh process pays. Never raises: the
    figures only make later choices better.
    """
    if result.steps_run == 0:
        return
    xla, shape = compiles_with_xla(config), shape_key(config, data)
    measured = load_measurements(home)
    steps_per_s = result.training_steps_per_s
    # With one chunk, the speed includes the compile: it says nothing of either figure.
    if steps_per_s is not None and result.steps_run > config.chunk_steps:
        measured = measured.observe("xla_steps_per_s" if xla else "graph_steps_per_s", steps_per_s)
        if traced:
            setup = "graph_setup_s"
            if xla:
                cached = shape in measured.xla_shapes
                setup = "xla_cached_setup_s" if cached else "xla_compile_setup_s"
            seconds = result.duration_s - result.steps_run / steps_per_s
            measured = measured.observe(setup, max(0.0, seconds))
    if xla:
        measured = replace(measured, xla_shapes=measured.xla_shapes | {shape})
    _save(home, measured)


def use_compile_cache(home: Path) -> bool:
    """Make this process keep its XLA-compiled chunks under ``home`` for this host type.

    Call it before TensorFlow is imported (TensorFlow reads its XLA flags once); returns False
    when it is too late, the directory cannot be made or written, the disk is nearly full, or a
    process here turned the cache off (``compile_cache``), and training then compiles as before.
    Only CPU executables are kept: the key names the CPU, not a GPU. A damaged entry, or a write
    that fails later, never fails the run (``worker.training.compile_cache``).
    """
    if "tensorflow" in sys.modules:
        return False
    if compile_cache.active_directory() is not None:  # on already (the CLI, then the job)
        return True
    directory = host_directory(home) / "compiled"
    if compile_cache.turned_off(directory):
        logger.debug("no XLA compile cache: %s is there", compile_cache.off_marker(directory))
        return False
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # A failed write fails the compiled call (compile_cache meets it, but only a new process
        # can train without the cache): a nearly full disk trains without it from the start.
        if not _room_for_entries(directory):
            return False
        _check_writable(directory)
    except OSError as error:
        if directory not in _UNWRITABLE:  # said once per process (the CLI, then the job, ask)
            logger.warning("XLA compile cache off: %s cannot be written (%s)", directory, error)
        _UNWRITABLE.add(directory)
        return False
    flags = (
        f"--tf_xla_persistent_cache_directory={directory} "
        "--tf_xla_persistent_cache_device_types=CPU"
    )
    # TensorFlow's own variable, written for the import that follows in this process.
    previous = os.environ.get("TF_XLA_FLAGS", "")
    if "--tf_xla_persistent_cache_directory" not in previous:
        os.environ["TF_XLA_FLAGS"] = f"{previous} {flags}".strip()
    # The directory TensorFlow will use (one given by whoever started this process wins).
    named = re.search(r"--tf_xla_persistent_cache_directory=(\S+)", os.environ["TF_XLA_FLAGS"])
    compile_cache.activate(Path(named.group(1)) if named else directory)
    return True


_UNWRITABLE: set[Path] = set()


def _room_for_entries(directory: Path) -> bool:
    """Whether the disk has :data:`MIN_FREE_BYTES` and some inodes free (none counted: no limit)."""
    stats = os.statvfs(directory)
    inodes_ok = stats.f_files == 0 or stats.f_favail >= MIN_FREE_INODES
    return stats.f_bavail * stats.f_frsize >= MIN_FREE_BYTES and inodes_ok


def _check_writable(directory: Path) -> None:
    """Create and remove a file in ``directory`` (root ignores its mode; a read-only mount not).

    Raises:
        OSError: when it cannot.
    """
    probe = directory / f".probe.{os.getpid()}"
    probe.touch()
    probe.unlink()


def host_directory(home: Path) -> Path:
    """Where this host type's compiled chunks and figures live under ``home``."""
    return home / "xla" / host_key()


@functools.cache
def host_key() -> str:
    """A short digest of what a compiled chunk and a speed depend on beyond its shape: the
    machine's architecture, CPU model and flags, the TensorFlow build and any XLA flags."""
    parts = (
        platform.machine(),
        _cpu_description(),
        _tensorflow_build(),
        os.environ.get("XLA_FLAGS", ""),
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def load_measurements(home: Path) -> Measurements:
    """This host type's measurements under ``home``; empty when none (or unreadable)."""
    try:
        raw: Any = json.loads((host_directory(home) / "figures.json").read_text())
        observed = {
            str(name): tuple(float(v) for v in values)
            for name, values in raw["observed"].items()
            if name in _OBSERVED_NAMES
        }
        return Measurements(observed, frozenset(str(s) for s in raw["xla_shapes"]))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return Measurements({})


_OBSERVED_NAMES: Final = frozenset(f.name for f in fields(Figures))


def _save(home: Path, measured: Measurements) -> None:
    """Write atomically (two processes may finish at once: the later one's figures win)."""
    target = host_directory(home) / "figures.json"
    body = {"observed": dict(measured.observed), "xla_shapes": sorted(measured.xla_shapes)}
    partial = target.with_name(f".figures.{os.getpid()}.json")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(body, indent=1))
        os.replace(partial, target)
    except OSError as error:
        logger.debug("XLA figures not kept: %s", error)
        with contextlib.suppress(OSError):
            partial.unlink()


def _cpu_description() -> str:
    """The first CPU's model name and flags (Linux), else what the platform says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            wanted = {}
            for line in cpuinfo:
                if not line.strip():
                    break  # the first processor's block is enough: all cores are alike
                key, _, value = line.partition(":")
                if key.strip() in ("vendor_id", "model name", "flags"):
                    wanted[key.strip()] = value.strip()
            return "|".join(wanted[k] for k in sorted(wanted))
    except OSError:
        return platform.processor()


def _tensorflow_build() -> str:
    """Which TensorFlow is installed, without importing it (importlib.metadata costs ~0.1 s):
    its path, its distribution's name and version, and its ``__init__``'s size and time."""
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or spec.origin is None:
        return "no tensorflow"
    origin = Path(spec.origin)
    site = origin.parent.parent
    try:
        stat = origin.stat()
        dists = sorted(
            entry.name
            for entry in os.scandir(site)
            if entry.name.startswith("tensorflow") and entry.name.endswith(".dist-info")
        )
    except OSError:
        return str(origin)
    return f"{origin}|{','.join(dists)}|{stat.st_size}|{stat.st_mtime_ns}"
