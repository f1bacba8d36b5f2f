"""Run the `gcpjobs` command line inside the test process, as if it were a process of its own.

Starting the console script costs 1.5-2 s a call (most of it importing the Google clients);
calling `gcpjobs.cli.main.main` here costs what the command itself does, over the same real
sockets to the same emulator. What makes a process a process is rebuilt around each call:
its environment (exactly the `env` given), its standard streams (pipes, not a terminal, at
the Python and the file-descriptor level), its logging and warnings as a fresh interpreter
has them, the settings that libraries read from the environment once, at import, and a
deadline. Tests about the process itself (signals, a terminal, being killed, what /proc
shows) use `support.gcpjobs_process` instead.
"""

from __future__ import annotations

import asyncio
import gc
import io
import locale
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import IO, Any

GCPJOBS = str(Path(sys.executable).with_name("gcpjobs"))

# After the deadline, how often the call is interrupted again should it catch the first one.
_REPEAT_SECONDS = 5.0
# How long threads the command started get to end after it has returned.
_THREAD_GRACE_SECONDS = 5.0
# Threads a library starts once and keeps for the life of the process, whoever uses it next:
# grpc.aio's completion-queue poller.
_PROCESS_WIDE_THREADS = ("(_poll_wrapper)",)
# The warning filters of a fresh interpreter started without -W or PYTHONWARNINGS.
_FRESH_WARNING_FILTERS: tuple[tuple[Any, type[Warning], str], ...] = (
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
)


class _Deadline(BaseException):
    """Raised in the call when it outlives its timeout; a BaseException so that no
    `except Exception` in the command swallows it."""


def gcpjobs_inprocess(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`support.gcpjobs_process(*args, env=env, timeout=timeout)`, run in this process: the
    same result, or the same `subprocess.TimeoutExpired` past `timeout`."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("the in-process gcpjobs runs in the main thread only: the CLI "
                           "handles Ctrl-C there (use gcpjobs_process from other threads)")
    command = [GCPJOBS, *args]
    with ExitStack() as stack:
        stack.enter_context(_process_environment(env))
        stdout = stack.enter_context(_captured(1, "stdout", errors="strict"))
        stderr = stack.enter_context(_captured(2, "stderr", errors="backslashreplace"))
        stack.enter_context(_stdin_at_end_of_file())
        stack.enter_context(_argv(command))
        stack.enter_context(_import_time_settings())
        stack.enter_context(_fresh_consoles())
        stack.enter_context(_fresh_logging())
        stack.enter_context(_fresh_warnings())
        stack.enter_context(_process_state())
        stack.enter_context(_signal_handlers_kept())
        started = stack.enter_context(_threads_started())
        returncode, timed_out = _call_main(list(args), timeout)
    if timed_out:
        expired = subprocess.TimeoutExpired(command, timeout, output=stdout.text,
                                            stderr=stderr.text)
        try:
            _assert_no_threads_left(command, started)
        except AssertionError as left:
            raise left from expired
        raise expired
    _assert_no_threads_left(command, started)
    return subprocess.CompletedProcess(command, returncode, stdout.text, stderr.text)


def _call_main(args: list[str], timeout: float) -> tuple[int, bool]:
    """`main(args)` as the console script runs it: SystemExit is the exit code, anything
    else a traceback on stderr and 1. The exit code, and whether the deadline was reached."""
    from gcpjobs.cli.main import main

    with _deadline(timeout) as expired:
        try:
            main(args)
        except SystemExit as done:
            return _exit_status(done.code), expired()
        except _Deadline:
            return 1, True
        except KeyboardInterrupt:
            traceback.print_exc()
            return -signal.SIGINT, expired()
        except BaseException:  # what escapes the console script: Python prints it, exits 1
            traceback.print_exc()
            return 1, expired()
    return 0, expired()


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # what the interpreter does with `sys.exit("message")`
    return 1


@contextmanager
def _deadline(timeout: float) -> Iterator[Callable[[], bool]]:
    """Interrupt the main thread with `_Deadline` once `timeout` has passed (a signal, so
    that it also wakes a blocking wait), and again every few seconds until the call gives
    up. Yields whether the deadline was reached."""
    main_thread = threading.main_thread().ident
    assert main_thread is not None
    ended = threading.Event()
    fired = threading.Event()
    live = [True]

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if live[0] and fired.is_set():
            raise _Deadline

    def watch() -> None:
        if ended.wait(timeout):
            return
        fired.set()
        while True:
            signal.pthread_kill(main_thread, signal.SIGUSR2)
            if ended.wait(_REPEAT_SECONDS):
                return

    previous = signal.signal(signal.SIGUSR2, interrupt)
    watchdog = threading.Thread(target=watch, name="gcpjobs-inprocess-deadline", daemon=True)
    watchdog.start()
    try:
        yield fired.is_set
    finally:
        live[0] = False
        ended.set()
        watchdog.join()
        # Installing the old handler first runs any interrupt still pending, now harmless.
        signal.signal(signal.SIGUSR2, previous)


@contextmanager
def _process_environment(env: dict[str, str]) -> Iterator[None]:
    """os.environ (and the C environment that child processes inherit) is exactly `env`."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class _Capture:
    """One standard stream of the call: sys.<name> is a text pipe stand-in (not a tty), and
    the file descriptor goes to a file too, for what C code (gRPC's core) writes there."""

    def __init__(self, descriptor_file: IO[bytes], errors: str) -> None:
        self.raw = io.BytesIO()
        self.stream = io.TextIOWrapper(self.raw, encoding=locale.getpreferredencoding(False),
                                       errors=errors, write_through=True)
        self.descriptor_file = descriptor_file
        self.text = ""

    def finish(self) -> None:
        self.stream.flush()
        self.descriptor_file.seek(0)
        data = self.raw.getvalue() + self.descriptor_file.read()
        # What `subprocess.run(text=True)` reads: decoded, with universal newlines.
        self.text = io.TextIOWrapper(io.BytesIO(data), encoding=self.stream.encoding,
                                     errors="replace").read()


@contextmanager
def _captured(descriptor: int, name: str, *, errors: str) -> Iterator[_Capture]:
    with tempfile.TemporaryFile() as descriptor_file:
        capture = _Capture(descriptor_file, errors)
        saved_stream = getattr(sys, name)
        saved_stream.flush()
        saved_descriptor = os.dup(descriptor)
        os.dup2(descriptor_file.fileno(), descriptor)
        setattr(sys, name, capture.stream)
        try:
            yield capture
        finally:
            setattr(sys, name, saved_stream)
            os.dup2(saved_descriptor, descriptor)
            os.close(saved_descriptor)
            capture.finish()


@contextmanager
def _stdin_at_end_of_file() -> Iterator[None]:
    # The console script under pytest reads /dev/null (pytest's fd capture) as its stdin.
    saved = sys.stdin
    sys.stdin = io.StringIO("")
    try:
        yield
    finally:
        sys.stdin = saved


@contextmanager
def _argv(command: list[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = list(command)
    try:
        yield
    finally:
        sys.argv = saved


def _read_import_time_settings() -> None:
    """Re-read, from os.environ, the settings that libraries the CLI uses read only when they
    are imported: a process started with the call's environment would have read these."""
    from google.auth.compute_engine import _metadata
    from typer import rich_utils

    # GCE_METADATA_HOST keeps a test that must not reach a metadata server local.
    _metadata._GCE_METADATA_HOST = (os.getenv("GCE_METADATA_HOST")
                                    or os.getenv("GCE_METADATA_ROOT", _metadata._GCE_DEFAULT_HOST))
    _metadata._METADATA_DEFAULT_TIMEOUT = _int_setting("GCE_METADATA_TIMEOUT", 3)
    _metadata._METADATA_DETECT_RETRIES = _int_setting("GCE_METADATA_DETECT_RETRIES", 3)
    _metadata._NO_GCE_CHECK = os.getenv("NO_GCE_CHECK") == "true"
    # The width and colour of `--help`.
    width = os.getenv("TERMINAL_WIDTH")
    rich_utils.MAX_WIDTH = int(width) if width else None
    forced = os.getenv("GITHUB_ACTIONS") or os.getenv("FORCE_COLOR") or os.getenv("PY_COLORS")
    rich_utils.FORCE_TERMINAL = (False if os.getenv("_TYPER_FORCE_DISABLE_TERMINAL")
                                 else True if forced else None)


def _int_setting(name: str, default: int) -> int:
    try:
        return int(os.getenv(name, default))
    except ValueError:
        return default


@contextmanager
def _import_time_settings() -> Iterator[None]:
    _read_import_time_settings()
    try:
        yield
    finally:
        _read_import_time_settings()  # back to what this process's own environment says


def _rebuild_consoles() -> None:
    """The CLI's rich consoles as a fresh import makes them: rich decides width (COLUMNS),
    colour (NO_COLOR, TERM, whether the stream is a terminal) and interactivity once, when
    a Console is made; the objects stay the same, for the modules that imported them."""
    from rich.console import Console

    from gcpjobs.cli import console as consoles

    for made, stderr in ((consoles.console, False), (consoles.err_console, True)):
        # The arguments src/gcpjobs/cli/console.py makes them with.
        made.__dict__.update(Console(highlight=False, stderr=stderr).__dict__)


@contextmanager
def _fresh_consoles() -> Iterator[None]:
    _rebuild_consoles()
    try:
        yield
    finally:
        _rebuild_consoles()


@contextmanager
def _fresh_logging() -> Iterator[None]:
    """Logging as an unconfigured interpreter has it: no root handlers (pytest's capture
    handlers step aside), so warnings reach stderr through logging's last resort."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers.clear()
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _warning_on_stderr(message: Warning | str, category: type[Warning], filename: str,
                       lineno: int, file: Any = None, line: str | None = None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextmanager
def _fresh_warnings() -> Iterator[None]:
    """The warning filters of a fresh interpreter, shown on stderr (not recorded by pytest);
    a new filter list also forgets which warnings were already shown once."""
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for action, category, module in reversed(_FRESH_WARNING_FILTERS):
            warnings.filterwarnings(action, category=category, module=module)
        warnings.showwarning = _warning_on_stderr
        yield


@contextmanager
def _process_state() -> Iterator[None]:
    """What gcpjobs keeps for the life of a process, which a new one starts without: the
    call gets it fresh, and what it made of it is undone after."""
    from gcpjobs.steps import remote

    _forget_process_state()
    # The private event loop (and thread) that blocking step calls share.
    saved_runner, remote._runner = remote._runner, remote._BlockingRunner()
    try:
        yield
    finally:
        _forget_process_state()
        _stop_loop(remote._runner._loop)
        remote._runner = saved_runner


def _forget_process_state() -> None:
    from gcpjobs import history
    from gcpjobs.core import ratelimit

    history._warned.clear()  # "the local run history could not ...": once per process
    with ratelimit._SHARED_LOCK:
        ratelimit._SHARED.clear()  # the process-wide budget of calls to GCP


def _stop_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """End the private event loop of the steps' blocking calls (a daemon thread that the
    process's exit would have ended), with its executor's threads."""
    if loop is None or loop.is_closed():
        return
    with suppress(Exception):
        asyncio.run_coroutine_threadsafe(loop.shutdown_default_executor(), loop).result(
            _THREAD_GRACE_SECONDS)
    stopped = threading.Event()

    def stop() -> None:
        loop.stop()
        stopped.set()

    loop.call_soon_threadsafe(stop)
    if stopped.wait(_THREAD_GRACE_SECONDS):
        # Its thread leaves run_forever right after that callback.
        deadline = time.monotonic() + _THREAD_GRACE_SECONDS
        while loop.is_running() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not loop.is_running():
            loop.close()


@contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    """Ctrl-C handling that a command installs (asyncio's, while it follows a job) ends with
    the call, as it would with its process."""
    handler = signal.getsignal(signal.SIGINT)
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
        signal.set_wakeup_fd(wakeup)


@contextmanager
def _threads_started() -> Iterator[list[threading.Thread]]:
    """The threads the call starts, and those that they start: not the threads of an
    emulator served from this process, which its own threads start as requests come in."""
    started: list[threading.Thread] = []
    starters = {threading.current_thread()}
    original_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if threading.current_thread() in starters:
            started.append(self)
            starters.add(self)
        original_start(self)

    threading.Thread.start = start  # type: ignore[method-assign]
    try:
        yield started
    finally:
        threading.Thread.start = original_start  # type: ignore[method-assign]


def _assert_no_threads_left(command: list[str], started: list[threading.Thread]) -> None:
    """A thread the command started and left would outlive it here, into the next test."""
    left = [thread for thread in started if not thread.name.endswith(_PROCESS_WIDE_THREADS)]
    if not _joined(left, _THREAD_GRACE_SECONDS / 5):
        # The idle workers of a stopped event loop's default executor end only once the
        # executor is collected (the process would simply have exited).
        gc.collect()
        _joined(left, _THREAD_GRACE_SECONDS)
    running = [thread for thread in left if thread.is_alive()]
    frames = sys._current_frames()
    where = "".join(f"\n{thread.name}:\n" + "".join(traceback.format_stack(frames[thread.ident]))
                    for thread in running if thread.ident in frames)
    assert not running, f"{' '.join(command[1:])!r} left threads running:{where}"


def _joined(threads: list[threading.Thread], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)
