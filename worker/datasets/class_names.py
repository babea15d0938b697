"""Class names, and the number of classes C they and the labels imply."""

from __future__ import annotations

from collections.abc import Sequence

from worker.datasets.checks import LabelArray
from worker.datasets.limits import MAX_CLASS_NAME_CHARS, MIN_CLASSES, DatasetLimits
from worker.datasets.problems import Origin, echo, invalid
from worker.errors import InvalidDatasetError


def checked_class_names(
    names: Sequence[str] | None, option: str, limits: DatasetLimits
) -> tuple[str, ...]:
    """``names`` as a tuple after checking count, emptiness, length and uniqueness; () for None.

    Raises:
        InvalidDatasetError: naming ``option`` (``--class-names`` on the command line).
    """
    if names is None:
        return ()
    names = tuple(names)
    if not MIN_CLASSES <= len(names) <= limits.max_classes:
        raise _names_problem(
            option,
            f"lists {len(names):,} name(s)",
            f"give between {MIN_CLASSES} and {limits.max_classes:,}, one per class",
        )
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not isinstance(name, str) or not name.strip():
            raise _names_problem(option, f"name {position} is empty", "give every class a name")
        if len(name) > MAX_CLASS_NAME_CHARS or not name.isprintable():
            raise _names_problem(
                option,
                f"name {position} ({echo(name)}) is over {MAX_CLASS_NAME_CHARS} characters "
                "or holds control characters",
                "use short, printable names",
            )
        if name in seen:
            raise _names_problem(option, f"{echo(name)} is listed twice", "name each class once")
        seen.add(name)
    return names


def class_count(
    labels: Sequence[LabelArray],
    origins: Sequence[Origin],
    names: tuple[str, ...],
    option: str,
    limits: DatasetLimits,
) -> int:
    """C: the number of names when given (every label must be below it), else largest label + 1.

    Raises:
        InvalidDatasetError: for a label at or above the number of names, or a C out of range.
    """
    largest = [(int(split.max()), origin) for split, origin in zip(labels, origins, strict=True)]
    if names:
        for top, origin in largest:
            if top >= len(names):
                raise invalid(
                    origin,
                    f"labels in {origin.what} go up to {top} but {option} lists "
                    f"{len(names)} names (labels 0..{len(names) - 1})",
                    f"give one name per class ({top + 1} or more), or fix the labels",
                )
        return len(names)
    top, origin = max(largest, key=lambda pair: pair[0])
    if top + 1 > limits.max_classes:
        raise invalid(
            origin,
            f"labels in {origin.what} go up to {top}, which makes {top + 1:,} classes, over "
            f"the limit of {limits.max_classes:,}",
            "number the classes 0..C-1 without gaps, with C at most the limit",
        )
    return max(top + 1, MIN_CLASSES)


def _names_problem(option: str, problem: str, advice: str) -> InvalidDatasetError:
    return InvalidDatasetError(f"{option}: {problem}; {advice}")
