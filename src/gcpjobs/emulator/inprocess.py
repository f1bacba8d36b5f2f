"""An emulator server inside this process, on free loopback ports: for tests that need an
emulator of their own (empty, with faults, held states or other settings) but not a process
boundary. It is the same `EmulatorServer` that `python -m gcpjobs.emulator start` runs, behind
the same gRPC and REST sockets, without the second or so a fresh interpreter spends importing
the Google protos.

    with InProcessEmulator(tmp_path, queued_seconds=None) as emulator:
        client = ...(emulator.grpc_address)
        emulator.advance(name)

`EmulatorHandle` holds what both this class and `EmulatorProcess` offer: start, stop and
`with`, the addresses, and the calls to the `/_emulator/*` control routes.

What the command line does to its own process and this class does not do to the caller's:
it sets no umask (a umask is process-wide, and changing it under the caller's threads would
change the modes of whatever they create; the data directory is still made 0700, and the
records inside it get the caller's umask), installs no signal handlers, no faulthandler and
no logging configuration, and leaves the open-file limit alone. The crash-recovery sweep runs
at start as it does there; it looks only for processes that carry this data directory's
marker, so two in-process emulators never touch each other's jobs. Stopping it kills every
job's process tree, as SIGTERM to the command line does; an emulator still running when the
interpreter exits is stopped then. Jobs start from this process's environment as it is when
each one starts (a process has its copy from its own start). A test about the process itself
(a crash, signals, flags, file modes, a process's environment or threads) needs
`EmulatorProcess`.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypedDict, Unpack

from gcpjobs.emulator.config import EmulatorConfig
from gcpjobs.emulator.control import admin_call
from gcpjobs.emulator.transports.front import is_loopback, read_admin_token
from gcpjobs.errors import EmulatorError

if TYPE_CHECKING:
    from gcpjobs.emulator.server import EmulatorServer


class EmulatorHandle(abc.ABC):
    """What a test holds of an emulator it started: its lifecycle (also as a context manager),
    the addresses of the emulator described by `config`, listening on `grpc_port` and
    `rest_port`, and its control routes (docs/emulator.md, Control routes)."""

    config: EmulatorConfig
    grpc_port: int
    rest_port: int

    # ------------------------------------------------------------------------------ lifecycle

    @abc.abstractmethod
    def start(self, timeout: float = 30.0) -> Self:
        """Start serving; returns once both servers listen, within `timeout` seconds."""

    @abc.abstractmethod
    def stop(self, timeout: float = 10.0) -> None:
        """Stop as SIGTERM stops the command line: no more requests, every job's process tree
        killed (after the cancel grace) and recorded FAILED."""

    @property
    @abc.abstractmethod
    def started(self) -> bool:
        """Whether `start` was called (a started emulator cannot be started again)."""

    def __enter__(self) -> Self:
        if not self.started:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------------------ addresses

    @property
    def host(self) -> str:
        """Where a client on this machine connects: the bound address, or loopback for a
        wildcard one (0.0.0.0, ::)."""
        return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.config.host,
                                                                         self.config.host)

    @property
    def grpc_address(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def rest_endpoint(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def admin_token(self) -> str | None:
        """The token the `/_emulator/*` routes require (from DATA_DIR/admin-token)."""
        return read_admin_token(self.data_dir)

    @property
    def admin_headers(self) -> dict[str, str]:
        """`Authorization: Bearer TOKEN`, for a test's own admin requests."""
        token = self.admin_token
        return {"Authorization": f"Bearer {token}"} if token else {}

    # --------------------------------------------------------------------------------- admin

    def admin(self, method: str, path: str, body: Any = None, *, timeout: float = 10.0) -> Any:
        """One admin request with this emulator's token; the JSON answer, or EmulatorError."""
        return admin_call(self.rest_endpoint, method, path, body, timeout=timeout,
                          data_dir=self.data_dir)

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", "/_emulator/stats")
        return result

    def configure(self, **settings: float | None) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("POST", "/_emulator/config", settings)
        return result

    def advance(self, name: str) -> None:
        self.admin("POST", "/_emulator/advance", {"name": name})

    def reset(self) -> None:
        self.admin("POST", "/_emulator/reset", {})

    def inject_fault(self, method: str, fault: str, count: int = 1) -> None:
        self.admin("POST", "/_emulator/faults", {"method": method, "fault": fault, "count": count})

    def set_fault_rates(
        self,
        method: str,
        rates: Mapping[str, float],
        *,
        latency_seconds: float = 0.0,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Faults drawn per call of `method` (`*`: every method) with these probabilities, from
        an RNG seeded with `seed`, after `latency_seconds`; empty rates and no latency remove
        the rule. Returns the faults document (armed, rules, injected)."""
        result: dict[str, Any] = self.admin(
            "POST", "/_emulator/faults",
            {"method": method, "rates": dict(rates), "latency_seconds": latency_seconds,
             "seed": seed},
        )
        return result

    def faults(self) -> dict[str, Any]:
        """`{"armed": ..., "rules": ..., "injected": {method: {fault: count}}}`."""
        result: dict[str, Any] = self.admin("GET", "/_emulator/faults")
        return result

    def crash_replica(self, name: str, replica: str | None = None) -> str:
        """SIGKILL a running Vertex job's replica (default: the primary) as a dead machine
        would; returns the replica's name. See docs/emulator.md, Job faults."""
        body: dict[str, Any] = {"name": name}
        if replica is not None:
            body["replica"] = replica
        result: dict[str, Any] = self.admin("POST", "/_emulator/crash", body)
        return str(result["replica"])

    def crash_task(self, execution: str, task: int | None = None) -> int:
        """SIGKILL the running attempt of a Cloud Run task (default: the lowest running one);
        returns its index. The attempt fails and is retried as `max_retries` allows."""
        body: dict[str, Any] = {"name": execution}
        if task is not None:
            body["task"] = task
        result: dict[str, Any] = self.admin("POST", "/_emulator/crash", body)
        return int(result["task"])

    def preempt(self, name: str) -> None:
        """Reclaim a running SPOT Vertex job's VMs (see docs/emulator.md, Job faults)."""
        self.admin("POST", "/_emulator/preempt", {"name": name})

    def add_secret(self, name: str, value: str) -> str:
        """Add a version to the local secret store Cloud Run jobs read; returns its number."""
        result: dict[str, Any] = self.admin(
            "POST", "/_emulator/secrets", {"name": name, "value": value})
        return str(result["version"])

    def clear_faults(self) -> None:
        with contextlib.suppress(EmulatorError):
            self.admin("DELETE", "/_emulator/faults")


class EmulatorSettings(TypedDict, total=False):
    """`EmulatorConfig`'s fields but the data directory, as keywords."""

    host: str
    grpc_port: int
    rest_port: int
    queued_seconds: float | None
    pending_seconds: float | None
    cancel_grace_seconds: float
    pass_env: tuple[str, ...]
    allow_remote: bool
    http_timeout_seconds: float


class InProcessEmulator(EmulatorHandle):
    """`EmulatorProcess`'s settings (`EmulatorConfig`'s fields; `pass_env` stands for
    `--pass-env`) and surface, minus what only a process has: `pid`, `kill()`, `output`,
    `extra_args`, `env`. Ports are free ones unless given, as in EmulatorProcess."""

    def __init__(self, data_dir: Path, **settings: Unpack[EmulatorSettings]) -> None:
        settings.setdefault("grpc_port", 0)
        settings.setdefault("rest_port", 0)
        self.config = EmulatorConfig(data_dir=Path(data_dir), **settings)
        self._server: EmulatorServer | None = None
        self._started = False
        self.grpc_port = 0
        self.rest_port = 0

    # ------------------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 30.0) -> Self:
        """Start serving; returns once both servers listen. There is no ready line to wait
        for here: `timeout` is accepted so that either kind of emulator can be started alike."""
        if self._started:
            raise EmulatorError("this InProcessEmulator was already started; create a new one")
        if not is_loopback(self.config.host) and not self.config.allow_remote:
            raise EmulatorError(
                f"refusing to listen on {self.config.host}: it is not a loopback address, and "
                "whoever reaches the ports can run any command as this user; pass "
                "allow_remote=True to do it anyway")
        self._started = True
        # Imported here, not at the top: `process.py` shares EmulatorHandle, and a client
        # that only finds or starts an emulator process must not pay for the Google protos.
        from gcpjobs.emulator.server import EmulatorServer

        server = EmulatorServer(self.config)
        _in_own_thread(server.start)
        self._server = server
        self.grpc_port = server.grpc_port
        self.rest_port = server.rest_port
        # Job processes run in sessions of their own and would outlive an interpreter that
        # exits without stopping this emulator.
        atexit.register(self.stop)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """See EmulatorHandle.stop; each job's kill is bounded by its cancel grace, not by
        `timeout`."""
        server, self._server = self._server, None
        if server is None:
            return
        atexit.unregister(self.stop)
        server.stop()

    @property
    def started(self) -> bool:
        return self._started


def _in_own_thread(call: Callable[[], None]) -> None:
    """`call()` on a thread of its own, raising what it raised. The REST server runs an event
    loop until it listens, which asyncio refuses on a thread whose loop is running: the
    caller's, when it is an async test or application."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=run, name="emulator-start")
    thread.start()
    thread.join()
    if failures:
        raise failures[0]
