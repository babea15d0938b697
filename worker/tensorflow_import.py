"""Import TensorFlow once, quietly.

TensorFlow's C++ start-up banner (oneDNN notices, CUDA probing that "fails" on every CPU-only
machine) reaches users of the CLI as alarming noise. Part of it is printed by absl before
logging is initialised, which ignores TF_CPP_MIN_LOG_LEVEL, so the import runs with file
descriptor 2 captured; if the import fails, what it printed is replayed before the exception.
Set TF_CPP_MIN_LOG_LEVEL yourself (to 0 or 1) to see everything again.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any


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
        import tensorflow

        return tensorflow
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _captured_stderr_fd():
        import tensorflow

        return tensorflow


tf = _import_tensorflow()

__all__ = ["tf"]
