"""Reading a sweep file: YAML through the safe loader (JSON for ``.json``), bounded in size.

The safe loader builds only plain data (a ``!!python/object`` tag is an error, never a call), and
the loaded document is walked with a node budget, so an alias bomb ("billion laughs": a few
hundred bytes whose aliases expand to billions of nodes) is refused before anything uses it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from worker.errors import InvalidConfigError

#: Largest sweep file read (a 10,000-trial grid fits in a few kilobytes).
MAX_FILE_BYTES = 1 << 20
#: Most nodes (mappings, lists, scalars) the loaded document may have once aliases are expanded.
MAX_NODES = 100_000
#: Deepest nesting of mappings and lists (a real sweep file needs four levels).
MAX_DEPTH = 32


def read_sweep_file(path: Path) -> dict[str, Any]:
    """Load ``path`` as a mapping, checked for size, tags, aliases and NaN.

    Raises:
        InvalidConfigError: naming the file and the problem (exit 2, nothing stored).
    """
    try:
        size_bytes = path.stat().st_size
        if size_bytes > MAX_FILE_BYTES:
            raise InvalidConfigError(
                f"{path}: {size_bytes} bytes; a sweep file may have at most {MAX_FILE_BYTES}"
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidConfigError(f"{path}: cannot read the sweep file ({exc})") from None
    return parse_sweep_text(text, json_only=path.suffix.lower() == ".json", source=str(path))


def parse_sweep_text(
    text: str, *, json_only: bool = False, source: str = "sweep"
) -> dict[str, Any]:
    """Parse a sweep document (YAML, or JSON with ``json_only``) into a checked mapping.

    Raises:
        InvalidConfigError: not parseable, a tag that would build an object, too many nodes
            after expanding aliases, NaN or infinity, or not a mapping with string keys.
    """
    document = _load_json(text, source) if json_only else _load_yaml(text, source)
    return check_sweep_document(document, source=source)


def check_sweep_document(document: Any, *, source: str = "sweep") -> dict[str, Any]:
    """Check a loaded sweep document (a file's, or a mapping given to the Python API) as a
    file's is checked: at most ``MAX_NODES`` values and ``MAX_DEPTH`` levels, string keys, no
    NaN or infinity, a mapping at the top.

    Raises:
        InvalidConfigError: naming ``source`` and the problem.
    """
    _check_nodes(document, source)
    if not isinstance(document, dict):
        raise InvalidConfigError(
            f"{source}: a sweep file must be a mapping of keys (name, metric, method, "
            f"parameters, ...), got {type(document).__name__}"
        )
    return document


def _load_yaml(text: str, source: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except RecursionError:
        # The parsers recurse once per level: a file nested thousands deep exhausts the stack.
        raise _too_deep(source) from None
    except yaml.YAMLError as exc:
        raise InvalidConfigError(
            f"{source}: not a valid sweep file (YAML with plain values only; tags such as "
            f"!!python/object are refused): {exc}"
        ) from None


def _load_json(text: str, source: str) -> Any:
    def refuse(constant: str) -> Any:
        raise InvalidConfigError(f"{source}: {constant} is not a number a sweep can use")

    try:
        return json.loads(text, parse_constant=refuse)
    except RecursionError:
        raise _too_deep(source) from None
    except json.JSONDecodeError as exc:
        raise InvalidConfigError(f"{source}: not valid JSON: {exc}") from None


def _too_deep(source: str) -> InvalidConfigError:
    return InvalidConfigError(
        f"{source}: values nested more than {MAX_DEPTH} levels deep; a sweep file needs a few "
        "(parameters, then each parameter's settings)"
    )


def _check_nodes(document: Any, source: str) -> None:
    """Walk the document, aliases expanded, refusing it past ``MAX_NODES`` nodes or
    ``MAX_DEPTH`` levels (so nothing later recurses through it without end)."""
    budget, stack = MAX_NODES, [(document, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep(source)
        budget -= 1
        if budget < 0:
            raise InvalidConfigError(
                f"{source}: more than {MAX_NODES} values once YAML aliases are expanded "
                "(an alias bomb?); write the values out"
            )
        if isinstance(node, dict):
            for key in node:
                if not isinstance(key, str):
                    raise InvalidConfigError(f"{source}: key {key!r} must be a string")
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)
        elif isinstance(node, float) and not math.isfinite(node):
            raise InvalidConfigError(f"{source}: {node} is not a number a sweep can use")
