"""The dashboard's ASGI application (Starlette): server-rendered pages and the JSON they poll.

Read-only by construction: every route is GET (HEAD comes with it), and the repository it is
given opens the database read-only. Pages run no inline script (the Content-Security-Policy
forbids it), so a run name that holds markup can neither render nor execute; Jinja2 escapes it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from api_cli.dashboard import views
from api_cli.dashboard.queue_view import queue_page
from api_cli.dashboard.sweep_view import sweep_curves, sweep_page
from storage.errors import InvalidValueError, NotFoundError, TrainqError
from storage.redaction import redact
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from storage import Repository, Settings

_HERE = Path(__file__).resolve().parent

#: No inline script, no third-party origin: the page only runs the package's own static files.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: How often a page polls while something it shows is still running, in milliseconds.
POLL_INTERVAL_MS = 2000


def create_app(
    repository: Repository, settings: Settings, *, clock: Callable[[], datetime] | None = None
) -> Starlette:
    """The dashboard over ``repository`` (which should be opened read-only).

    Args:
        repository: where every page reads from.
        settings: trainq's settings (the queue page asks the broker they name, if any).
        clock: "now", for the runs' ages (tests pass a fixed one).
    """
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["num"] = _number
    environment.globals["poll_ms"] = POLL_INTERVAL_MS
    templates = Jinja2Templates(env=environment)
    now = clock or (lambda: datetime.now(UTC))
    pages = _Pages(repository, settings, templates, now)
    routes: list[BaseRoute] = [
        Route("/", pages.runs, methods=["GET"]),
        Route("/runs/{run_id:int}", pages.run, methods=["GET"]),
        Route("/sweeps/{sweep_id:int}", pages.sweep, methods=["GET"]),
        Route("/compare", pages.compare, methods=["GET"]),
        Route("/queue", pages.queue, methods=["GET"]),
        Route("/api/runs", pages.runs_json, methods=["GET"]),
        Route("/api/runs/{run_id:int}/metrics", pages.metrics_json, methods=["GET"]),
        Route("/api/sweeps/{sweep_id:int}/curves", pages.sweep_json, methods=["GET"]),
        Route("/api/queue", pages.queue_json, methods=["GET"]),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=_security_headers)],
        exception_handlers={
            NotFoundError: pages.error(404),
            InvalidValueError: pages.error(400),
            InvalidConfigError: pages.error(400),
            ValueError: pages.error(400),
            TrainqError: pages.error(503),
            HTTPException: pages.http_error,
        },
    )


async def _security_headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
    response = await call_next(request)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _number(value: Any, digits: int = 4) -> str:
    """A metric for a table cell: 4 significant digits, ``-`` for nothing."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


class _Pages:
    """The route handlers (sync: Starlette runs them in its thread pool, off the event loop)."""

    def __init__(
        self,
        repository: Repository,
        settings: Settings,
        templates: Jinja2Templates,
        now: Callable[[], datetime],
    ) -> None:
        self._repository = repository
        self._settings = settings
        self._templates = templates
        self._now = now

    def _render(self, request: Request, name: str, context: dict[str, Any]) -> Response:
        return self._templates.TemplateResponse(request, name, context)

    def runs(self, request: Request) -> Response:
        filters = _filters(request)
        data = views.runs_page(self._repository, filters, self._now())
        return self._render(request, "runs.html", {"data": data, "filters": filters})

    def runs_json(self, request: Request) -> Response:
        return JSONResponse(views.runs_page(self._repository, _filters(request), self._now()))

    def run(self, request: Request) -> Response:
        run_id = int(request.path_params["run_id"])
        data = views.run_page(self._repository, run_id, self._now())
        return self._render(request, "run.html", {"data": data})

    def metrics_json(self, request: Request) -> Response:
        run_id = int(request.path_params["run_id"])
        max_points = int(request.query_params.get("max_points", "1000"))
        return JSONResponse(views.curve_json(self._repository, run_id, max_points))

    def sweep(self, request: Request) -> Response:
        data = sweep_page(self._repository, int(request.path_params["sweep_id"]))
        return self._render(request, "sweep.html", {"data": data})

    def sweep_json(self, request: Request) -> Response:
        return JSONResponse(sweep_curves(self._repository, int(request.path_params["sweep_id"])))

    def compare(self, request: Request) -> Response:
        raw = request.query_params.getlist("run") or request.query_params.get("runs", "").split(",")
        run_ids = [int(part) for part in raw if part.strip()]
        if not run_ids:
            raise InvalidValueError("name the runs to compare: /compare?runs=3,4,5")
        data = views.compare_page(self._repository, run_ids)
        return self._render(request, "compare.html", {"data": data})

    def queue(self, request: Request) -> Response:
        data = queue_page(self._repository, self._settings, self._now())
        return self._render(request, "queue.html", {"data": data})

    def queue_json(self, request: Request) -> Response:
        return JSONResponse(queue_page(self._repository, self._settings, self._now()))

    def error(self, status_code: int) -> Callable[[Request, Exception], Response]:
        def handle(request: Request, exc: Exception) -> Response:
            return self._error(request, status_code, redact(str(exc)))

        return handle

    def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return self._error(request, exc.status_code, str(exc.detail))

    def _error(self, request: Request, status_code: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status_code)
        return self._templates.TemplateResponse(
            request, "error.html", {"status": status_code, "message": message}, status_code
        )


def _filters(request: Request) -> views.RunFilters:
    params = request.query_params
    page = params.get("page", "1")
    per_page = params.get("per_page", str(views.PAGE_SIZE))
    return views.RunFilters(
        status=params.get("status", "").strip(),
        tag=params.get("tag", "").strip(),
        sweep=params.get("sweep", "").strip(),
        page=max(1, int(page)) if page.isdigit() else 1,
        per_page=min(max(1, int(per_page)), views.MAX_PAGE_SIZE)
        if per_page.isdigit()
        else views.PAGE_SIZE,
    )
