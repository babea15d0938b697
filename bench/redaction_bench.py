"""Redaction of 1 KiB, 64 KiB and 1 MiB strings: the linear scanner beside the former regexes.

The former implementation (commit 6c1812f, ``storage/redaction.py``) is loaded from git and run
side by side where it finishes in reasonable time; past ``--old-max-chars`` it is skipped (it is
quadratic: 12.5 s for 20,000 characters).

    python bench/redaction_bench.py [--old-max-chars 65536]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from storage.redaction import redact

OLD_COMMIT = "6c1812f"
SIZES = {"1 KiB": 1024, "64 KiB": 64 * 1024, "1 MiB": 1024 * 1024}
#: One ordinary log line with a URL in it, and the shapes that made the old regexes backtrack.
SHAPES = {
    "log line": "cannot connect to redis://user:Hunter2@redis:6379/0?password=x: refused. ",
    "one word": "x",
    "key=": "a=",
}


def load_old() -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{OLD_COMMIT}:storage/redaction.py"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "old_redaction.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_redaction", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seconds(function: Callable[[str], str], text: str) -> float:
    best = float("inf")
    for _ in range(3 if len(text) < 100_000 else 1):
        start = time.perf_counter()
        function(text)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-max-chars", type=int, default=64 * 1024)
    args = parser.parse_args()
    old = load_old()
    print(f"{'input':<10} {'size':>7} {'new s':>9} {'old s':>9} {'old/new':>8}")
    for shape, unit in SHAPES.items():
        for label, size in SIZES.items():
            text = (unit * (size // len(unit) + 1))[:size]
            new_s = seconds(redact, text)
            if size <= args.old_max_chars:
                try:
                    old_s = seconds(old.redact, text)
                    old_text, ratio = f"{old_s:9.4f}", f"{old_s / new_s:8.1f}"
                except RecursionError:  # the old one recursed once per nested key=value
                    old_text, ratio = f"{'crashed':>9}", f"{'-':>8}"
            else:
                old_text, ratio = f"{'skipped':>9}", f"{'-':>8}"
            print(f"{shape:<10} {label:>7} {new_s:9.4f} {old_text} {ratio}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
