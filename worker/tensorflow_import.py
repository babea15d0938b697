"""Import TensorFlow once, quietly.

TensorFlow's C++ start-up banner (oneDNN notices, CUDA probing that "fails" on every CPU-only
machine) reaches users of the CLI as alarming noise. Part of it is printed by absl before
logging is initialised, which ignores TF_CPP_MIN_LOG_LEVEL, so the import runs with file
descriptor 2 captured; if the import fails, what it printed is replayed before the exception.
Set TF_CPP_MIN_LOG_LEVEL yourself (to 0 or 1) to see everything again.

The import also runs without Keras. TensorFlow's ``__init__`` imports ``keras.src.optimizers``
eagerly (to register Keras optimizers for SavedModel), inside a ``try`` that tolerates an
``ImportError``; with Keras 3 that pulls in all of Keras, Matplotlib's pyplot and IPython: about
a third of the import's CPU time (1.1 of 3.5 s here), paid by every job process and every
embedded ``trainq train``. trainq never uses Keras, so during ``import tensorflow`` an import of
``keras`` raises ``ImportError`` (its spec is still found: TensorFlow reads Keras's directory
from it). Afterwards Keras imports normally, so ``tf.keras`` still works for anyone who asks.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType
from typing import Any, Final

#: Packages TensorFlow imports eagerly but trainq never uses (see the module docstring).
_NOT_DURING_IMPORT: Final = frozenset({"keras", "tf_keras"})


class _RefusingLoader(Loader):
    """Finds nothing to run: importing the module raises ``ImportError``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        raise ImportError(f"{self.name} is not imported while TensorFlow is")

    def exec_module(self, module: ModuleType) -> None:
        raise ImportError(f"{self.name} is not imported while TensorFlow is")


class _SkipUnusedPackages(MetaPathFinder):
    """Keeps the spec of ``keras`` (and its submodules) findable but its import refused."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.partition(".")[0] not in _NOT_DURING_IMPORT:
            return None
        spec = PathFinder.find_spec(fullname, path)
        if spec is not None:
            spec.loader = _RefusingLoader(fullname)
        return spec


@contextlib.contextmanager
def _without_unused_packages() -> Iterator[None]:
    finder = _SkipUnusedPackages()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


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
        with _without_unused_packages():
            import tensorflow

        return tensorflow
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _captured_stderr_fd(), _without_unused_packages():
        import tensorflow

        return tensorflow


tf = _import_tensorflow()

__all__ = ["tf"]
