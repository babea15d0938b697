"""Training in a second process that imports TensorFlow while the CLI does everything else.

For the embedded ``trainq train``. TensorFlow's import is ~2.4 s of Python holding the
interpreter's lock, and the CLI meanwhile runs ~1 s of its own: Typer and the commands, SQLAlchemy
and the ORM, the run's insert and claim, the data's checks, the progress line. In one process
those take turns on one lock; here they run side by side on two cores. The console script forks
the trainer process before it imports anything else (:func:`fork_early`, from ``api_cli.entry``);
it reads the settings, turns the XLA compile cache on (``xla_choice.use_compile_cache``), imports
TensorFlow, and then trains what the job sends it. With a broker set it exits at once.

Only the steps move. The job stays in the CLI's process (``worker.jobs``) with its claim, lease,
chunk writes, validation, cancel and hand-back: the trainer process sends each chunk's report and
waits for the answer (``on_chunk`` ran there; stop, or go on?), so every decision is made exactly
as in-process, in the same order, and the numbers are the same bits (the same ``train`` with the
same TensorFlow settings). Arrays cross the socket as pickle protocol 5 out-of-band buffers (one
copy); the trainer's log records are handled by the CLI's handlers.

The trainer process ignores Ctrl-C (the job decides what it means), dies with the CLI
(``PR_SET_PDEATHSIG``, and the socket's end) and never opens the database. If it dies itself
(killed, out of memory), ``train`` raises :class:`TrainerProcessLostError` and the job hands the
run back at its newest checkpoint, for ``trainq resume``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import mmap
import os
import pickle
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from worker.errors import WorkerError

if TYPE_CHECKING:
    from worker.config import TrainConfig
    from worker.data import FashionMnist
    from worker.training.state import ChunkReport, TrainingState, TrainResult
    from worker.training_data import TrainingData

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h

#: The trainer process :func:`fork_early` started in this process, if any (at most one).
_STARTED: list[TrainerProcess] = []


class TrainerProcessLostError(WorkerError):
    """Raised when the trainer process died mid-call: nothing says the run is at fault."""


class _StoppedByJobError(Exception):
    """Ends ``train`` in the trainer process: the job's ``on_chunk`` raised."""


def fork_early() -> None:
    """Fork the trainer process now, before this process imports anything heavy.

    Only where a fork is safe and useful: on Linux, with no other thread running (a fork copies
    only the calling thread: a lock another thread holds would stay held in the child) and
    TensorFlow not imported. Does nothing the second time.
    """
    if _STARTED or not _can_fork():
        return
    _STARTED.append(TrainerProcess.fork())


def for_this_run(home: Path) -> TrainerProcess | None:
    """The trainer process forked early, if there is one and it trains for ``home`` (it read the
    same settings); one that does not is ended. None: train in this process."""
    if not _STARTED:
        return None
    from storage.settings import Settings

    with contextlib.suppress(Exception):  # settings the CLI would have refused already
        if Settings.from_env().home_dir == home:
            return _STARTED[0]
    discard()
    return None


def discard() -> None:
    """End the trainer process forked early, if any: this process's run trains elsewhere."""
    if _STARTED:
        _STARTED.pop().end()


def started() -> TrainerProcess | None:
    """The trainer process forked here, if any."""
    return _STARTED[0] if _STARTED else None


def _can_fork() -> bool:
    return (
        sys.platform.startswith("linux")
        and "tensorflow" not in sys.modules
        and threading.active_count() == 1
    )


class TrainerProcess:
    """The CLI's end of a trainer process: a :class:`~worker.training.trainer.Trainer`."""

    def __init__(self, pid: int, channel: socket.socket) -> None:
        self.pid = pid
        self._channel = channel
        self._lock = threading.Lock()  # one call at a time
        self._traces = 0
        self._exit_status: int | None = None  # once reaped

    @classmethod
    def fork(cls) -> TrainerProcess:
        ours, theirs = socket.socketpair()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the trainer process: never returns
            ours.close()
            _serve(theirs, parent)
        theirs.close()
        trainer = cls(pid, ours)
        atexit.register(trainer.end)
        return trainer

    def train(
        self,
        config: TrainConfig,
        data: TrainingData | FashionMnist,
        *,
        resume_from: TrainingState | None = None,
        on_chunk: Callable[[ChunkReport], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> TrainResult:
        """``worker.training.train`` run by the trainer process; the callbacks are called here.

        Raises:
            TrainerProcessLostError: the trainer process died, or exited (a broker is set).
            Whatever ``train`` or a callback raises, as ``train`` would.
        """
        from worker.training_data import training_data

        # The steps read the training split only: the test split stays here.
        data = replace(training_data(data), x_test=None, y_test=None)
        level = logging.getLogger().getEffectiveLevel()
        with self._lock:
            self._send(("train", (config, data, resume_from, level)))
            while True:
                verb, payload, self._traces = self._receive()
                if verb == "log":
                    logging.getLogger(payload.name).handle(payload)
                elif verb == "done":
                    result: TrainResult = payload
                    return result
                elif verb == "raised":
                    raise payload
                else:  # "chunk": the job's turn
                    self._send(("go", self._answer(payload, on_chunk, should_stop)))

    def traces_so_far(self) -> int:
        """Chunk traces the trainer process had made at its last message."""
        return self._traces

    def end(self) -> None:
        """End the trainer process at once and reap it (at exit too, so that whoever waits for
        this process counts its CPU time). It holds nothing to save: it never opens the database."""
        if self._exit_status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self._reap(block=True)
        self._channel.close()

    def _reap(self, *, block: bool) -> int | None:
        """The trainer process's exit status once it has ended (reaped once: its pid is then
        free for another process); None while it runs (``block=False``)."""
        if self._exit_status is None:
            with contextlib.suppress(ChildProcessError):  # reaped by someone else: say ended
                pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
                if not pid:
                    return None
                self._exit_status = status
            if self._exit_status is None:
                self._exit_status = 0
        return self._exit_status

    def _answer(
        self,
        report: ChunkReport,
        on_chunk: Callable[[ChunkReport], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> bool:
        """Run the job's callbacks on ``report``; whether to stop. If one raises, the trainer
        process is told to stop (and is ready for another call) and the error goes on."""
        try:
            if on_chunk is not None:
                on_chunk(report)
            return bool(should_stop()) if should_stop is not None else False
        except BaseException:
            with contextlib.suppress(TrainerProcessLostError):
                self._send(("abort", False))
                while self._receive()[0] == "log":
                    pass  # then its "stopped"
            raise

    def _send(self, message: object) -> None:
        try:
            _send(self._channel, message)
        except OSError as error:
            raise self._lost(error) from error

    def _receive(self) -> Any:
        try:
            return _receive(self._channel)
        except (EOFError, OSError) as error:
            raise self._lost(error) from error

    def _lost(self, error: BaseException) -> TrainerProcessLostError:
        """Why the socket ended, from the trainer process's exit status (it is exiting: its end
        of the socket closed), waited for a moment."""
        deadline = time.monotonic() + 1.0
        status = self._reap(block=False)
        while status is None and time.monotonic() < deadline:
            time.sleep(0.01)
            status = self._reap(block=False)
        if status is not None and os.WIFSIGNALED(status):
            name = signal.Signals(os.WTERMSIG(status)).name
            return TrainerProcessLostError(f"the trainer process was killed by {name}")
        return TrainerProcessLostError(f"the trainer process is gone ({error})")


#: Buffers at least this large cross in a memory file (``memfd``) rather than the socket: the
#: sender writes it while the receiver is still busy (the trainer process importing TensorFlow),
#: and the receiver maps it instead of reading it, so the training split costs it nothing.
_MEMORY_FILE_BYTES = 1 << 20
#: The fixed part of a message: its body's length and how many memory files come with it.
_PREFIX = struct.Struct("<QI")


def _send(channel: socket.socket, message: object) -> None:
    """Send ``message`` (pickled; its arrays out of band, large ones as memory files)."""
    buffers: list[pickle.PickleBuffer] = []
    header = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
    parts: list[bytes | int] = []
    files: list[int] = []
    try:
        for buffer in buffers:
            view = buffer.raw()
            if view.nbytes < _MEMORY_FILE_BYTES:
                parts.append(bytes(view))
            else:
                files.append(_memory_file(view))
                parts.append(view.nbytes)
        body = pickle.dumps((header, parts), protocol=5)
        socket.send_fds(channel, [_PREFIX.pack(len(body), len(files))], files)
        channel.sendall(body)
    finally:
        for descriptor in files:
            os.close(descriptor)


def _receive(channel: socket.socket) -> Any:
    """The next message :func:`_send` sent; EOFError when the other end is gone."""
    prefix, files, _, _ = socket.recv_fds(channel, _PREFIX.size, maxfds=16)
    try:
        if len(prefix) < _PREFIX.size:
            prefix += _read(channel, _PREFIX.size - len(prefix))
        length, count = _PREFIX.unpack(prefix)
        if count != len(files):
            raise EOFError("a message came without its memory files")
        header, parts = pickle.loads(_read(channel, length))
        mapped = iter(files)
        buffers = [
            part if isinstance(part, bytes) else _mapped(next(mapped), part) for part in parts
        ]
        return pickle.loads(header, buffers=buffers)
    finally:
        for descriptor in files:
            os.close(descriptor)


def _read(channel: socket.socket, length: int) -> bytes:
    data = bytearray(length)
    view, done = memoryview(data), 0
    while done < length:
        got = channel.recv_into(view[done:])
        if got == 0:
            raise EOFError("the other process closed the socket")
        done += got
    return bytes(data)


def _memory_file(view: memoryview) -> int:
    descriptor = os.memfd_create("trainq-array", os.MFD_CLOEXEC)
    with open(descriptor, "wb", closefd=False) as file:
        file.write(view)
    return descriptor


def _mapped(descriptor: int, length: int) -> memoryview:
    """The memory file read-only: arrays over it are read-only, as the sender's were."""
    return memoryview(mmap.mmap(descriptor, length, prot=mmap.PROT_READ))


# ---- the trainer process ------------------------------------------------------------------------


def _serve(channel: socket.socket, parent: int) -> NoReturn:
    """Read the settings, import TensorFlow, then train what is asked until the socket ends."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the job's to handle
        _die_with(parent)
        logging.getLogger().handlers = [_ForwardedLogs(channel)]
        home = _embedded_home()
        if home is None:
            os._exit(0)  # a broker is set (workers train), or settings the CLI will refuse
        failure: BaseException | None = None
        try:
            from worker.training import xla_choice

            with _quiet():  # the CLI says what the cache's check finds, once
                xla_choice.use_compile_cache(home)
            import worker.training.loop  # noqa: F401  (TensorFlow: this process's reason to be)
        except BaseException as error:  # said at the first call, as train would raise it
            failure = error
        while True:
            try:
                _, request = _receive(channel)
            except (EOFError, OSError):
                break
            _send(channel, _train(channel, request, failure))
    finally:
        os._exit(0)


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when ``parent`` ends (Linux), or end now if it has."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)


def _embedded_home() -> Path | None:
    from storage.settings import Settings

    try:
        settings = Settings.from_env()
    except Exception:
        return None
    return settings.home_dir if settings.embedded else None


@contextlib.contextmanager
def _quiet() -> Any:
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


class _ForwardedLogs(logging.Handler):
    """Sends each log record to the CLI, whose handlers say it as they say the job's own."""

    def __init__(self, channel: socket.socket) -> None:
        super().__init__()
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.msg, record.args = record.getMessage(), None
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
                record.exc_info = None
            _send(self._channel, ("log", record, _traces()))
        except Exception:
            self.handleError(record)


def _traces() -> int:
    if "worker.training.step" not in sys.modules:
        return 0
    from worker.training.step import traces_so_far

    return traces_so_far()


def _train(channel: socket.socket, request: Any, failure: BaseException | None) -> object:
    if failure is not None:
        return ("raised", _portable(failure), 0)
    from worker.training.loop import train

    config, data, resume_from, level = request
    logging.getLogger().setLevel(level)
    stop = False

    def on_chunk(report: ChunkReport) -> None:
        nonlocal stop
        _send(channel, ("chunk", report, _traces()))
        verb, stop = _receive(channel)
        if verb == "abort":
            raise _StoppedByJobError

    try:
        result = train(
            config, data, resume_from=resume_from, on_chunk=on_chunk, should_stop=lambda: stop
        )
    except _StoppedByJobError:
        return ("stopped", None, _traces())
    except BaseException as error:
        return ("raised", _portable(error), _traces())
    return ("done", result, _traces())


def _portable(error: BaseException) -> BaseException:
    """``error`` as it can cross to the job: itself if it pickles, else a RuntimeError saying it;
    either way with the trainer process's traceback as a note (shown with ``--debug``)."""
    note = "in the trainer process:\n" + "".join(traceback.format_exception(error)).rstrip()
    try:
        pickle.loads(pickle.dumps(error))
        portable = error
    except Exception:
        portable = RuntimeError(f"{type(error).__name__}: {error}")
    portable.__traceback__ = None
    with contextlib.suppress(Exception):
        portable.add_note(note)
    return portable
