"""Starts the emulator: the Vertex and Cloud Run services, their gRPC and REST servers, and the readiness signals.

Once both servers listen, `serve()` prints exactly one line

    gcpjobs emulator ready grpc=HOST:PORT rest=HOST:PORT

and writes `DATA_DIR/emulator.json` ({pid, host, grpc_port, rest_port, started_at, data_dir}).
Before that it makes the data directory private (0700; run through `python -m gcpjobs.emulator`
the process's umask is 077 too, so every file it writes is 0600) and writes a new admin token
to `DATA_DIR/admin-token` (0600), which the `/_emulator/*` routes require.
SIGTERM or SIGINT stops it gracefully: the servers stop taking requests, every running job's
process tree is killed and the job recorded FAILED (it cannot be resumed), emulator.json and
the admin token go. One emulator per data directory: a lock file keeps a second one out.
"""

from __future__ import annotations

import contextlib
import faulthandler
import fcntl
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from types import FrameType
from typing import IO

from gcpjobs.emulator.cloudrun.service import CloudRunService
from gcpjobs.emulator.config import EmulatorConfig, Timings
from gcpjobs.emulator.dispatch import (
    Dispatcher,
    cloud_run_methods,
    logging_methods,
    operation_methods,
    secret_manager_methods,
    vertex_methods,
)
from gcpjobs.emulator.executor import JobEnvironment
from gcpjobs.emulator.faults import FaultRegistry
from gcpjobs.emulator.logging.service import LoggingService
from gcpjobs.emulator.operations import OperationRegistry
from gcpjobs.emulator.secrets.service import SecretManagerService
from gcpjobs.emulator.stats import RequestStats
from gcpjobs.emulator.store import JobStore
from gcpjobs.emulator.transports.admin import Admin
from gcpjobs.emulator.transports.front import new_admin_token, remove_admin_token
from gcpjobs.emulator.transports.grpc import BindError, start_grpc_server
from gcpjobs.emulator.transports.rest import start_rest_server
from gcpjobs.emulator.vertex.service import JobService
from gcpjobs.errors import EmulatorError

INFO_FILE = "emulator.json"
LOCK_FILE = "emulator.lock"
READY_PREFIX = "gcpjobs emulator ready"

_log = logging.getLogger(__name__)


RECOVERY_NOTE = "gcpjobs emulator starting: recovering what the last run left unfinished"
_HEARTBEAT_SECONDS = 1.0


@contextlib.contextmanager
def _recovery_heartbeat() -> Iterator[None]:
    """While the body runs, say every second that the start is still under way (on stderr,
    which `start --detach` sends to emulator.log: a log that grows is an emulator making
    progress, so its readiness wait goes on). Nothing is printed when the body is quick."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(_HEARTBEAT_SECONDS):
            print(RECOVERY_NOTE, file=sys.stderr, flush=True)

    thread = threading.Thread(target=beat, name="recovery-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _client_host(host: str) -> str:
    """Where a local client reaches a server bound to `host`."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


class EmulatorServer:
    """A running emulator inside this process (`serve()` is the usual way in)."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.data_dir = config.data_dir.expanduser().resolve()
        self.grpc_port = 0
        self.rest_port = 0
        self._lock_file: IO[str] | None = None
        self._started = False
        self._job_projects: dict[str, str] = {}
        self.admin_token = ""

    def start(self) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Records, logs, secrets and the admin token are the user's alone.
        os.chmod(self.data_dir, 0o700)
        self._take_lock()
        try:
            self.admin_token = new_admin_token(self.data_dir)
            self._start_parts()
        except BaseException:
            if self.admin_token:
                remove_admin_token(self.data_dir, self.admin_token)
            self._release_lock()
            raise
        self._started = True

    def _start_parts(self) -> None:
        config = self.config
        self.store = JobStore(self.data_dir)
        operations = OperationRegistry(self.store)
        # What every job process starts from (the same for both services); the addresses are
        # filled in once the servers listen, before any job can start.
        job_environment = JobEnvironment(self.data_dir, passed=tuple(config.pass_env))
        # The services stop what a crashed run left behind and fail its unfinished jobs before
        # they serve; the heartbeat lets a waiting `start --detach` see that this is progress.
        with _recovery_heartbeat():
            self.service = JobService(
                data_dir=self.data_dir,
                store=self.store,
                operations=operations,
                timings=Timings(config.queued_seconds, config.pending_seconds, config.cancel_grace_seconds),
                job_environment=job_environment,
            )
            # One set of timings for both: the admin route changes them in one place.
            self.cloud_run = CloudRunService(
                data_dir=self.data_dir,
                store=self.store,
                operations=operations,
                timings=lambda: self.service.timings,
                job_environment=job_environment,
            )
        self.logging = LoggingService(self.data_dir, self._vertex_project)
        self.stats = RequestStats()
        self.faults = FaultRegistry()
        dispatcher = Dispatcher(
            [*vertex_methods(self.service), *cloud_run_methods(self.cloud_run),
             *operation_methods(operations), *logging_methods(self.logging),
             *secret_manager_methods(SecretManagerService(self.cloud_run.secrets))],
            self.stats,
            self.faults,
        )
        admin = Admin(self.service, self.stats, self.faults, self.cloud_run)
        try:
            self.grpc_server, self.grpc_port = start_grpc_server(dispatcher, config.host, config.grpc_port)
        except BindError as error:
            self._shutdown_services()
            raise EmulatorError(f"{error}; choose another --grpc-port (0 picks a free one)") from None
        job_environment.emulator_host = _address(_client_host(config.host), self.grpc_port)
        try:
            self.rest_server, self.rest_port = start_rest_server(
                dispatcher, admin, config.host, config.rest_port, admin_token=self.admin_token,
                timeout_seconds=config.http_timeout_seconds)
        except OSError as error:
            self.grpc_server.stop(0)
            self._shutdown_services()
            raise EmulatorError(
                f"cannot listen for REST on {_address(config.host, config.rest_port)}: "
                f"{error.strerror or error}; choose another --rest-port (0 picks a free one)"
            ) from None
        job_environment.emulator_rest_host = _address(_client_host(config.host), self.rest_port)
        self.service.set_web_access_base(f"http://{_address(_client_host(config.host), self.rest_port)}")
        self._write_info()

    def _vertex_project(self, job_id: str) -> str | None:
        """The project a Vertex job was created in (its log entries belong there)."""
        known = self._job_projects.get(job_id)
        if known is None:
            self._job_projects = {job.job_id: job.project for job in self.store.load_jobs()}
            known = self._job_projects.get(job_id)
        return known

    @property
    def ready_line(self) -> str:
        host = self.config.host
        return f"{READY_PREFIX} grpc={_address(host, self.grpc_port)} rest={_address(host, self.rest_port)}"

    def stop(self) -> None:
        """Stop taking requests, stop every job (recorded FAILED), remove emulator.json."""
        if not self._started:
            return
        self._started = False
        self.logging.shutdown()  # open tail streams end
        self.grpc_server.stop(grace=1.0).wait(2.0)
        self.rest_server.stop()
        self._shutdown_services()
        self.store.close()
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / INFO_FILE).unlink()
        remove_admin_token(self.data_dir, self.admin_token)
        self._release_lock()

    def _shutdown_services(self) -> None:
        """Stop every job and execution (in parallel: each pays its own kill grace period)."""
        stoppers = [threading.Thread(target=stop) for stop in (self.service.shutdown, self.cloud_run.shutdown)]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()

    def _write_info(self) -> None:
        info = {
            "pid": os.getpid(),
            "host": self.config.host,
            "grpc_port": self.grpc_port,
            "rest_port": self.rest_port,
            "started_at": datetime.now(timezone.utc).isoformat(),
            "data_dir": str(self.data_dir),
        }
        temporary = self.data_dir / (INFO_FILE + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(info, indent=2) + "\n")
        temporary.replace(self.data_dir / INFO_FILE)

    def _take_lock(self) -> None:
        descriptor = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        handle = os.fdopen(descriptor, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise EmulatorError(
                f"another emulator is already running with data dir {self.data_dir}; stop it "
                "(python -m gcpjobs.emulator stop --data-dir DIR) or use another --data-dir"
            ) from None
        self._lock_file = handle

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing drops the flock
            self._lock_file = None


def serve(config: EmulatorConfig) -> None:
    """Run in the foreground until SIGTERM or SIGINT (call from the main thread)."""
    # The kernel may deliver SIGTERM to any thread (gRPC has several), and then the main
    # thread's blocking read is never interrupted and a Python handler never runs. The wakeup
    # fd is written by the C-level handler on whichever thread takes the signal, so the main
    # thread always wakes; a signal that arrives before the read is not lost either.
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        """Replaces the default action (exit at once); the wakeup fd does the waking."""

    # `kill -USR1 PID` prints every thread's stack: how to see where a stuck emulator is.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous_wakeup = signal.set_wakeup_fd(wake_write)
    server = EmulatorServer(config)
    try:
        server.start()
        print(server.ready_line, flush=True)
        os.read(wake_read, 1)
    finally:
        server.stop()
        signal.set_wakeup_fd(previous_wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(wake_read)
        os.close(wake_write)
    print("gcpjobs emulator stopped", file=sys.stderr, flush=True)
