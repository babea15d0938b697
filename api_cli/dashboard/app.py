"""The dashboard's ASGI application (Starlette): server-rendered pages and the JSON they poll.

Read-only by construction: every route is GET (HEAD comes with it), and the repository it is
given opens the database read-only. Pages run no inline script (the Content-Security-Policy
forbids it), so a run name that holds markup can neither render nor execute; Jinja2 escapes it.

Nothing blocks the event loop: each page's reads and rendering run through a ``ReadGate`` (a
bounded number of daemon threads, a bounded line, 503 with ``Retry-After`` beyond it), and the
queue page asks the broker through one shared ``BrokerSnapshot``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api_cli.dashboard import params, views
from api_cli.dashboard.broker_snapshot import BrokerSnapshot
from api_cli.dashboard.parallel_view import parallel_coordinates
from api_cli.dashboard.queue_view import broker_state, queue_page
from api_cli.dashboard.read_gate import RETRY_AFTER_S, DashboardBusyError, ReadGate
from api_cli.dashboard.sweep_view import sweep_curves, sweep_page
from api_cli.dashboard.sweeps_index import sweeps_index
from storage.errors import InvalidValueError, NotFoundError, TrainqError
from storage.redaction import redact
from worker.errors import InvalidConfigError
from worker.sweep_report import sweep_report

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
    repository: Repository,
    settings: Settings,
    *,
    clock: Callable[[], datetime] | None = None,
    reads: ReadGate | None = None,
) -> Starlette:
    """The dashboard over ``repository`` (which should be opened read-only).

    Args:
        repository: where every page reads from.
        settings: trainq's settings (the queue page asks the broker they name, if any).
        clock: "now", for the runs' ages (tests pass a fixed one).
        reads: how many reads run and wait at once (the defaults of ``ReadGate``).
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
    gate = reads or ReadGate()
    broker = BrokerSnapshot(lambda: broker_state(settings))

    def off_loop(handler: Callable[[Request], Response]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            return await gate.run(handler, request)

        return endpoint

    def with_broker(handler: Callable[[Request, dict[str, Any]], Response]) -> Any:
        async def endpoint(request: Request) -> Response:
            state = await broker.read()  # waits without a thread: one question, shared
            return await gate.run(handler, request, state)

        return endpoint

    routes: list[BaseRoute] = [
        Route("/", off_loop(pages.runs), methods=["GET"]),
        Route("/runs/{run_id:int}", off_loop(pages.run), methods=["GET"]),
        Route("/sweeps", off_loop(pages.sweeps), methods=["GET"]),
        Route("/sweeps/{sweep_id:int}", off_loop(pages.sweep), methods=["GET"]),
        Route("/compare", off_loop(pages.compare), methods=["GET"]),
        Route("/queue", with_broker(pages.queue), methods=["GET"]),
        Route("/api/runs", off_loop(pages.runs_json), methods=["GET"]),
        Route("/api/runs/{run_id:int}/metrics", off_loop(pages.metrics_json), methods=["GET"]),
        Route("/api/sweeps", off_loop(pages.sweeps_json), methods=["GET"]),
        Route("/api/sweeps/{sweep_id:int}/curves", off_loop(pages.sweep_json), methods=["GET"]),
        Route(
            "/api/sweeps/{sweep_id:int}/parallel", off_loop(pages.parallel_json), methods=["GET"]
        ),
        Route("/api/queue", with_broker(pages.queue_json), methods=["GET"]),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_SecurityHeaders)],
        exception_handlers={
            NotFoundError: pages.error(404),
            InvalidValueError: pages.error(400),
            InvalidConfigError: pages.error(400),
            ValueError: pages.error(400),
            DashboardBusyError: pages.error(503),
            TrainqError: pages.error(503),
            HTTPException: pages.http_error,
        },
    )
    app.state.reads = gate
    app.state.broker = broker
    return app


class _SecurityHeaders:
    """Adds the security headers to every response (plain ASGI: nothing between the server and
    the app that a cancelled request could leave waiting)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
            await send(message)

        await self._app(scope, receive, send_with_headers)


def _number(value: Any, digits: int = 4) -> str:
    """A metric for a table cell: 4 significant digits, ``-`` for nothing."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


class _Pages:
    """The route handlers (blocking: ``create_app`` runs them through its ``ReadGate``)."""

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
        filters = params.run_filters(request)
        try:
            data = views.runs_page(self._repository, filters, self._now())
        except views.RunsQueryError as exc:
            # The page with the boxes as typed and the mistake beside them: fix it in place.
            header = views.header(filters, [])
            data = {"rows": [], "total": 0, "page": 1, "pages": 1, "header": header}
            context = {"data": data, "filters": filters, "query_error": exc.to_json()}
            return self._templates.TemplateResponse(request, "runs.html", context, 400)
        context = {"data": data, "filters": filters, "query_error": None}
        return self._render(request, "runs.html", context)

    def runs_json(self, request: Request) -> Response:
        filters = params.run_filters(request)
        try:
            return JSONResponse(views.runs_page(self._repository, filters, self._now()))
        except views.RunsQueryError as exc:
            return JSONResponse(exc.to_json(), status_code=400)

    def run(self, request: Request) -> Response:
        run_id = params.path_id(request, "run_id", "run id")
        data = views.run_page(self._repository, run_id, self._now())
        return self._render(request, "run.html", {"data": data})

    def metrics_json(self, request: Request) -> Response:
        run_id = params.path_id(request, "run_id", "run id")
        max_points = params.max_points(request)
        return JSONResponse(views.curve_json(self._repository, run_id, max_points))

    def sweeps(self, request: Request) -> Response:
        return self._render(request, "sweeps.html", {"data": self._sweeps_index(request)})

    def sweeps_json(self, request: Request) -> Response:
        return JSONResponse(self._sweeps_index(request))

    def _sweeps_index(self, request: Request) -> dict[str, Any]:
        page, archived = params.page(request), params.archived(request)
        return sweeps_index(self._repository, page, self._now(), archived)

    def sweep(self, request: Request) -> Response:
        data = sweep_page(self._repository, params.path_id(request, "sweep_id", "sweep id"))
        return self._render(request, "sweep.html", {"data": data})

    def sweep_json(self, request: Request) -> Response:
        sweep_id = params.path_id(request, "sweep_id", "sweep id")
        return JSONResponse(sweep_curves(self._repository, sweep_id))

    def parallel_json(self, request: Request) -> Response:
        sweep_id = params.path_id(request, "sweep_id", "sweep id")
        return JSONResponse(parallel_coordinates(sweep_report(self._repository, sweep_id)))

    def compare(self, request: Request) -> Response:
        data = views.compare_page(self._repository, params.compared_run_ids(request))
        return self._render(request, "compare.html", {"data": data})

    def queue(self, request: Request, broker: dict[str, Any]) -> Response:
        data = queue_page(self._repository, broker, self._now())
        return self._render(request, "queue.html", {"data": data})

    def queue_json(self, request: Request, broker: dict[str, Any]) -> Response:
        return JSONResponse(queue_page(self._repository, broker, self._now()))

    # The error handlers are async, so Starlette calls them on the loop: a burst answered 503
    # must not need a thread per answer.
    def error(self, status_code: int) -> Callable[[Request, Exception], Any]:
        async def handle(request: Request, exc: Exception) -> Response:
            return self._error(request, status_code, redact(str(exc)))

        return handle

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return self._error(request, exc.status_code, str(exc.detail))

    def _error(self, request: Request, status_code: int, message: str) -> Response:
        # A 503 is load shed or a database away for a moment: say when to come back.
        headers = {"Retry-After": str(RETRY_AFTER_S)} if status_code == 503 else None
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status_code, headers=headers)
        return self._templates.TemplateResponse(
            request,
            "error.html",
            {"status": status_code, "message": message},
            status_code,
            headers,
        )
