"""The dashboard's path and query parameters, checked against the bounds in ``storage.validation``.

A number the database cannot hold (a 31-digit page, a sweep id of 2^63) is refused here with a
400 naming the parameter, before it reaches a driver that would answer with an overflow (SQLite)
or "integer out of range" (PostgreSQL).
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request

from api_cli.dashboard import views
from api_cli.dashboard.runs_view import ARCHIVED_CHOICES
from storage.errors import InvalidValueError
from storage.validation import MAX_ID, check_id

#: A curve has at most this many points, whatever ``?max_points=`` asks (bounded work).
MAX_CURVE_POINTS: Final = 10_000
#: Runs side by side on the compare page, at most.
MAX_COMPARED_RUNS: Final = 50
#: How much of a refused value an error message repeats.
_ECHO_CHARS: Final = 40


def path_id(request: Request, name: str, what: str) -> int:
    """The id in the path parameter ``name`` (``what``: "run id", "sweep id").

    Raises:
        InvalidValueError: the id is outside 1..:data:`~storage.validation.MAX_ID`.
    """
    return check_id(int(request.path_params[name]), what)


def whole_number(text: str, name: str, low: int, high: int) -> int:
    """``text`` as a whole number in ``low..high``; ``name`` is the parameter, for the message.

    Raises:
        InvalidValueError: naming ``name``, the value (shortened) and the range.
    """
    digits = text.strip()
    if (
        digits.isascii()
        and digits.isdigit()
        and len(digits) <= len(str(high))
        and low <= int(digits) <= high
    ):
        return int(digits)
    raise InvalidValueError(
        f"{name}={text[:_ECHO_CHARS]!r} must be a whole number from {low} to {high}"
    )


def run_filters(request: Request) -> views.RunFilters:
    """The runs page's filters and paging from the query string.

    Raises:
        InvalidValueError: ``page`` or ``per_page`` is not a number in its range.
    """
    params = request.query_params
    return views.RunFilters(
        status=params.get("status", "").strip(),
        tag=params.get("tag", "").strip(),
        sweep=params.get("sweep", "").strip(),
        q=params.get("q", "").strip(),
        sort=params.get("sort", "").strip(),
        archived=params.get("archived", "").strip(),
        page=whole_number(params.get("page", "1"), "page", 1, MAX_ID),
        per_page=whole_number(
            params.get("per_page", str(views.PAGE_SIZE)), "per_page", 1, views.MAX_PAGE_SIZE
        ),
    )


def archived(request: Request) -> str:
    """``?archived=`` of a list: "" (archived ones hidden, the default), "show" or "only".

    Raises:
        InvalidValueError: any other value.
    """
    choice = request.query_params.get("archived", "").strip()
    if choice not in ARCHIVED_CHOICES:
        raise InvalidValueError(
            f"archived={choice[:_ECHO_CHARS]!r}: use archived=show (with the others) or "
            "archived=only"
        )
    return choice


def page(request: Request) -> int:
    """``?page=`` of a paged list (1 when absent)."""
    return whole_number(request.query_params.get("page", "1"), "page", 1, MAX_ID)


def max_points(request: Request) -> int:
    """``?max_points=`` of a curve (1,000 when absent)."""
    return whole_number(
        request.query_params.get("max_points", "1000"), "max_points", 1, MAX_CURVE_POINTS
    )


def compared_run_ids(request: Request) -> list[int]:
    """The run ids of ``/compare?runs=3,4,5`` (or ``?run=3&run=4``).

    Raises:
        InvalidValueError: none named, too many, or one that is not a run id.
    """
    params = request.query_params
    raw = params.getlist("run") or params.get("runs", "").split(",")
    parts = [part for part in raw if part.strip()]
    if not parts:
        raise InvalidValueError("name the runs to compare: /compare?runs=3,4,5")
    if len(parts) > MAX_COMPARED_RUNS:
        raise InvalidValueError(
            f"runs: {len(parts)} runs named; compare at most {MAX_COMPARED_RUNS} at once"
        )
    return [whole_number(part, "runs", 1, MAX_ID) for part in parts]
