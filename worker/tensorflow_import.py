"""Import TensorFlow once, quietly.

TensorFlow's C++ start-up banner (oneDNN notices, CUDA probing that "fails" on every CPU-only
machine) reaches users of the CLI as alarming noise. Part of it is printed by absl before
logging is initialised, which ignores TF_CPP_MIN_LOG_LEVEL, so the import runs with file
descriptor 2 captured; if the import fails, what it printed is replayed before the exception.
Set TF_CPP_MIN_LOG_LEVEL yourself (to 0 or 1) to see everything again.

TensorFlow's ``__init__`` also imports all of Keras 3 eagerly ("so that optimizers register in
the SavedModel registry", inside a ``try: ... except ImportError``), and Keras pulls in
matplotlib, IPython, scipy and h5py: about 1.4 of TensorFlow's 4.8 CPU-seconds of import on 2
shared cores. trainq never uses Keras through TensorFlow (its model is a plain ``tf.function``), so
``keras`` refuses to import while TensorFlow imports: TensorFlow's own ``except`` skips it, and its
path set-up for ``tf.keras`` still finds where Keras is installed. Afterwards ``import keras``
works as usual (the dataset download fallback uses it).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any


class _KerasRefused(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``keras`` where it is installed (its spec's origin is real) but refuses to run it."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "keras":
            return None
        installed = importlib.machinery.PathFinder.find_spec(fullname, path)
        if installed is None:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=installed.origin)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        raise ImportError("keras is not imported with TensorFlow in trainq (tensorflow_import)")


@contextlib.contextmanager
def _without_keras() -> Iterator[None]:
    if "keras" in sys.modules:  # already imported by someone else: nothing to save
        yield
        return
    refused = _KerasRefused()
    sys.meta_path.insert(0, refused)
    try:
        yield
    finally:
        sys.meta_path.remove(refused)


@contextlib.contextmanager
def _captured_stderr_fd() -> Iterator[None]:
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _import_tensorflow() -> Any:
    user_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    if user_level is not None and user_level in ("0", "1"):
        with _without_keras():
            import tensorflow

        return tensorflow
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _captured_stderr_fd(), _without_keras():
        import tensorflow

        return tensorflow


tf = _import_tensorflow()

__all__ = ["tf"]
