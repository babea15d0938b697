"""Canaries: the private parts of other libraries that trainq relies on are still there.

One test per entry of ``docs/internals.md``. Each looks at the installed release itself (real
imports, no doubles) and, when something moved, fails with a message that names the library,
its installed version, the part that moved and what in trainq stops working. The behaviour that
each reach buys is tested beside its module (``tests/worker/test_redis_transport.py``,
``test_bounded_redis.py``, ``test_job_pool.py``, ``test_standby.py``, ``test_imports.py``,
``tests/cli/test_help.py``); these tests say *why* such a test fails after an upgrade.
"""

from __future__ import annotations

import ast
import inspect
import platform
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Callable
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def moved(distribution: str, part: str, consequence: str) -> str:
    """The failure message: which release, which part, what breaks, where to read more."""
    installed = platform.python_version() if distribution == "CPython" else version(distribution)
    return (
        f"{distribution} {installed} no longer has {part}: {consequence}. "
        "See docs/internals.md, then fix the reach or bound the version in pyproject.toml."
    )


def parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def source_of(function: Callable[..., Any]) -> str:
    return textwrap.dedent(inspect.getsource(function))


def test_kombus_redis_channel_still_has_the_four_methods_the_screening_channel_overrides() -> None:
    from kombu.transport.redis import Channel

    expected = {
        "_get_client": ["self"],
        "_handle_message": ["self", "client", "r"],
        "_connparams": ["self", "asynchronous"],
        "_brpop_read": ["self", "options"],
    }
    for name, params in expected.items():
        method = getattr(Channel, name, None)
        assert callable(method), moved(
            "kombu", f"Channel.{name}", "worker.cluster.redis_transport screens nothing there"
        )
        assert parameters(method) == params, moved(
            "kombu", f"Channel.{name}{tuple(params[1:])}", f"its signature is now {params!r}"
        )
    assert "'BRPOP': self._brpop_read" in source_of(Channel.__init__), moved(
        "kombu",
        "the BRPOP handler Channel._brpop_read",
        "a malformed item would again stop the consumer",
    )
    assert isinstance(Channel.sep, str), moved(
        "kombu", "Channel.sep", "queue names are no longer found in BRPOP keys"
    )


def test_kombu_still_delivers_nothing_for_a_broadcast_whose_data_is_emptied() -> None:
    from kombu.transport.redis import Channel

    source = source_of(Channel._receive_one)  # type: ignore[attr-defined]
    assert "self._handle_message(" in source and "payload['data']" in source, moved(
        "kombu",
        "Channel._receive_one reading the payload of Channel._handle_message",
        "a refused celery.pidbox broadcast would reach Celery",
    )


def test_redis_pys_python_parsers_and_socket_buffer_are_where_bounded_redis_reads_them() -> None:
    import socket

    import redis
    from redis._parsers import _RESP2Parser, _RESP3Parser
    from redis._parsers.socket import SocketBuffer

    from worker.cluster.bounded_redis import BoundedRESP2Parser, BoundedRESP3Parser

    for parser in (_RESP2Parser, _RESP3Parser):
        assert callable(getattr(parser, "on_connect", None)), moved(
            "redis", f"{parser.__name__}.on_connect", "the bounded buffer is never installed"
        )
    assert parameters(SocketBuffer.__init__)[:4] == [
        "self",
        "socket",
        "socket_read_size",
        "socket_timeout",
    ], moved("redis", "SocketBuffer(socket, socket_read_size, socket_timeout)", "cannot build one")
    for name in ("read", "purge", "_read_from_socket"):
        assert callable(getattr(SocketBuffer, name, None)), moved(
            "redis", f"SocketBuffer.{name}", "an oversize item cannot be read off in chunks"
        )
    with socket.socket() as unconnected:
        buffer = SocketBuffer(unconnected, 65536, 1.0)
    assert hasattr(buffer, "_buffer"), moved(
        "redis", "SocketBuffer._buffer", "an oversize item cannot be read off in chunks"
    )
    probe = redis.Connection()
    assert type(getattr(probe, "_parser", None)) in (_RESP2Parser, _RESP3Parser) or (
        find_spec("hiredis") is not None
    ), moved("redis", "Connection._parser", "bounded_parser cannot tell which parser is used")
    assert hasattr(probe, "_sock") and hasattr(probe, "socket_timeout"), moved(
        "redis", "Connection._sock / socket_timeout", "the bounded buffer has no socket to read"
    )
    connection: Any = redis.Connection  # its stubs predate RESP3
    for protocol, bounded in ((2, BoundedRESP2Parser), (3, BoundedRESP3Parser)):
        given = connection(parser_class=bounded, protocol=protocol)
        assert type(given._parser) is bounded, moved(
            "redis", "Connection(parser_class=...)", "kombu cannot be given the bounded parser"
        )


def test_celerys_pool_still_takes_its_maintenance_interval_from_asynpool_timers() -> None:
    from celery.concurrency.asynpool import AsynPool

    timers = inspect.getattr_static(AsynPool, "timers", None)
    assert isinstance(timers, property), moved(
        "celery", "the AsynPool.timers property", "dead job processes are noticed only every 5 s"
    )
    assert "self.timers.items()" in source_of(AsynPool.register_with_event_loop), moved(
        "celery",
        "AsynPool.register_with_event_loop reading self.timers",
        "dead job processes are noticed only every 5 s",
    )
    assert callable(getattr(AsynPool, "maintain_pool", None)), moved(
        "celery", "AsynPool.maintain_pool", "worker.cluster.job_pool's timer has nothing to call"
    )


def test_billiard_still_signals_a_pool_process_exit_before_its_second_of_waiting() -> None:
    from billiard.pool import Worker
    from celery.concurrency.prefork import TaskPool, process_destructor

    exit_source = source_of(Worker._do_exit)  # type: ignore[attr-defined]
    callback = exit_source.find("self.on_exit(")
    assert 0 <= callback < exit_source.find("sleep("), moved(
        "billiard",
        "Worker._do_exit calling on_exit before its put and sleep",
        "a stopping worker's job processes wait a second each again",
    )
    assert "on_process_exit=process_destructor" in source_of(TaskPool.on_start), moved(
        "celery", "TaskPool.on_start passing process_destructor", "no worker_process_shutdown"
    )
    assert "worker_process_shutdown.send(" in source_of(process_destructor), moved(
        "celery", "process_destructor sending worker_process_shutdown", "no early exit"
    )


def test_billiards_wrapped_exception_still_carries_the_exception() -> None:
    from billiard import einfo

    wrapped = getattr(einfo, "ExceptionWithTraceback", None)
    assert wrapped is not None, moved(
        "billiard", "einfo.ExceptionWithTraceback", "a lost job process is not recognised"
    )
    assert wrapped(ValueError("x"), "tb").exc.args == ("x",), moved(
        "billiard", "ExceptionWithTraceback.exc", "a lost job process is not recognised"
    )


def test_celerys_consumer_still_caps_its_prefetch_by_max_prefetch_count() -> None:
    from celery.concurrency.base import BasePool
    from celery.worker.consumer import Consumer

    assert isinstance(inspect.getattr_static(Consumer, "max_prefetch_count", None), property), (
        moved("celery", "the Consumer.max_prefetch_count property", "standbys would take jobs")
    )
    source = inspect.getsource(Consumer)
    assert "self.initial_prefetch_count = initial_prefetch_count" in source, moved(
        "celery", "Consumer.initial_prefetch_count", "standbys would take jobs"
    )
    assert "self.max_prefetch_count" in source, moved(
        "celery",
        "Consumer reading self.max_prefetch_count after a reconnection",
        "the cap on reserved messages is ignored",
    )
    assert "limit" in parameters(BasePool.__init__), moved(
        "celery", "BasePool(limit=...)", "StandbyConsumer cannot count the pool's processes"
    )


def test_celerys_request_still_reports_a_lost_job_process_to_on_failure() -> None:
    from celery.worker.request import Request

    assert parameters(Request.on_failure) == [
        "self",
        "exc_info",
        "send_failed_event",
        "return_ok",
    ], moved("celery", "Request.on_failure(exc_info, send_failed_event, return_ok)", "changed")
    for name in ("worker_pid", "task_name", "args", "id"):
        assert hasattr(Request, name), moved(
            "celery", f"Request.{name}", "a lost job's run waits for its lease to expire"
        )


def test_cpythons_atexit_can_still_run_the_exit_handlers_before_a_fast_exit() -> None:
    script = (
        "import atexit, os\n"
        "atexit.register(print, 'handler ran')\n"
        "atexit._run_exitfuncs()\n"
        "os._exit(0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.stdout == "handler ran\n", moved(
        "CPython",
        "atexit._run_exitfuncs",
        f"exit_without_teardown would skip the exit handlers ({result.stderr.strip()})",
    )


def test_tensorflows_import_still_tolerates_a_refused_keras() -> None:
    spec = find_spec("tensorflow")
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    guarded = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Try)
        and "keras.src.optimizers" in ast.unparse(node.body)  # type: ignore[arg-type]
        and any("ImportError" in ast.unparse(handler.type or node) for handler in node.handlers)
    ]
    assert guarded, moved(
        "tensorflow",
        "the eager import of keras.src.optimizers inside try/except ImportError",
        "worker.tensorflow_import either breaks `import tensorflow` or has nothing left to do",
    )
    module_util = Path(spec.origin).parent / "python" / "tools" / "module_util.py"
    assert "find_spec" in module_util.read_text(), moved(
        "tensorflow",
        "module_util.get_parent_dir_for_name finding Keras by its spec",
        "the refused Keras may no longer be located",
    )


def test_typers_parameter_classes_still_have_the_display_hooks_help_format_overrides() -> None:
    import typer.rich_utils
    from typer.core import TyperArgument, TyperOption

    for cls, names in (
        (TyperOption, ("_get_number_range_help_str", "display_type_rich", "display_type")),
        (TyperArgument, ("_get_number_range_help_str", "display_type_rich", "get_usage_pieces")),
    ):
        for name in names:
            assert callable(getattr(cls, name, None)), moved(
                "typer", f"{cls.__name__}.{name}", "--help shows Typer's <int>-style labels again"
            )
    assert isinstance(inspect.getattr_static(TyperArgument, "display_name_raw"), property), moved(
        "typer", "TyperArgument.display_name_raw", "arguments show as {run_id} again"
    )
    rich_help = inspect.getsource(typer.rich_utils)
    assert "param._get_number_range_help_str()" in rich_help, moved(
        "typer", "rich_utils reading _get_number_range_help_str", "ranges show as 1<=x<=100 again"
    )


def test_typer_still_builds_the_parameters_that_help_format_makes_plain() -> None:
    import typer
    import typer.main

    from api_cli.help_format import TrainqTyper, _PlainArgument, _PlainOption

    app = TrainqTyper()

    @app.command()
    def show(run_id: int, limit: int = typer.Option(10, min=1)) -> None:
        """Show."""

    @app.command()
    def other() -> None:
        """Make ``show`` a subcommand, as every trainq command is."""

    command = typer.main.get_command(app).commands["show"]  # type: ignore[attr-defined]
    classes = {type(param) for param in command.get_params(typer.Context(command))}
    assert {_PlainArgument, _PlainOption} <= classes, moved(
        "typer",
        "TyperOption/TyperArgument as the classes of a command's parameters",
        f"help_format leaves {sorted(c.__name__ for c in classes)} as they are",
    )


@pytest.mark.parametrize(
    "distribution", ["tensorflow", "celery", "kombu", "billiard", "redis", "typer"]
)
def test_every_library_reached_into_has_an_upper_bound_that_the_installed_release_meets(
    distribution: str,
) -> None:
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    found = [Requirement(line) for line in project["project"]["dependencies"]]
    specifiers = [req.specifier for req in found if canonicalize_name(req.name) == distribution]
    assert specifiers, f"pyproject.toml does not list {distribution}, which trainq reaches into"
    (specifier,) = specifiers
    assert any(spec.operator in ("<", "<=", "==", "~=") for spec in specifier), (
        f"pyproject.toml lets {distribution} rise without bound ({specifier}); "
        "docs/internals.md says which releases were checked"
    )
    assert specifier.contains(version(distribution), prereleases=True), (
        f"{distribution} {version(distribution)} is outside pyproject.toml's {specifier}: "
        "check docs/internals.md's entries for it before moving the bound"
    )


def test_typers_vendored_click_still_raises_the_usage_errors_trainq_says_in_its_style() -> None:
    import typer
    from typer._click import exceptions

    from api_cli.help_format import TrainqTyper

    for name in ("ClickException", "UsageError", "BadParameter", "MissingParameter"):
        assert isinstance(getattr(exceptions, name, None), type), moved(
            "typer", f"typer._click.exceptions.{name}", "usage errors end as internal errors"
        )
    app = TrainqTyper()

    @app.command()
    def show(run_id: int) -> None:
        """Show."""

    @app.command()
    def other() -> None:
        """Make ``show`` a subcommand, as every trainq command is."""

    with pytest.raises(exceptions.BadParameter) as raised:
        app(["show", "abc"], standalone_mode=False)
    assert raised.value.ctx is not None and callable(raised.value.param.get_error_hint), moved(
        "typer", "the ctx and param of a BadParameter", "usage errors name no option nor help"
    )
    errors = getattr(raised.value.__cause__, "errors", None)
    assert callable(errors) and errors()[0]["input"] == "abc", moved(
        "typer", "BadParameter raised from pydantic's ValidationError", "no 'got x' in messages"
    )
    assert issubclass(typer.BadParameter, exceptions.UsageError)
