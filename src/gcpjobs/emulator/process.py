"""An emulator server in a child process on free ports: for tests and the client's embedded
mode. It is the real `python -m gcpjobs.emulator start`, so what is tested is what users run.

    with EmulatorProcess(tmp_path).start() as emulator:
        client = ...(emulator.grpc_address)
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from gcpjobs.emulator.config import DEFAULT_HTTP_TIMEOUT_SECONDS, EmulatorConfig
from gcpjobs.emulator.control import admin_call, start_arguments
from gcpjobs.emulator.transports.front import read_admin_token
from gcpjobs.errors import EmulatorError

_READY = re.compile(r"^gcpjobs emulator ready grpc=(\S+):(\d+) rest=(\S+):(\d+)$")


class EmulatorProcess:
    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        grpc_port: int = 0,
        rest_port: int = 0,
        queued_seconds: float | None = 0.0,
        pending_seconds: float | None = 0.0,
        cancel_grace_seconds: float = 5.0,
        http_timeout_seconds: float = DEFAULT_HTTP_TIMEOUT_SECONDS,
        allow_remote: bool = False,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = EmulatorConfig(
            host=host,
            grpc_port=grpc_port,
            rest_port=rest_port,
            data_dir=Path(data_dir),
            queued_seconds=queued_seconds,
            pending_seconds=pending_seconds,
            cancel_grace_seconds=cancel_grace_seconds,
            allow_remote=allow_remote,
            http_timeout_seconds=http_timeout_seconds,
        )
        self._extra_args = list(extra_args)
        self._env = dict(env) if env is not None else None
        self._process: subprocess.Popen[str] | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=200)
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self.grpc_port = 0
        self.rest_port = 0

    # ------------------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 30.0) -> EmulatorProcess:
        """Spawn the server and wait for its ready line."""
        if self._process is not None:
            raise EmulatorError("this EmulatorProcess was already started; create a new one")
        self.config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [*start_arguments(self.config), *self._extra_args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=None if self._env is None else {**os.environ, **self._env},
            close_fds=True,
        )
        self._reader = threading.Thread(target=self._read_output, name="emulator-output", daemon=True)
        self._reader.start()
        if not self._ready.wait(timeout) or not self.grpc_port:
            output = " | ".join(list(self._output)[-5:]) or "no output"
            self.kill()
            raise EmulatorError(f"the emulator did not start within {timeout:g}s: {output}")
        return self

    def _read_output(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            line = line.rstrip("\n")
            self._output.append(line)
            match = _READY.match(line)
            if match and not self._ready.is_set():
                self.grpc_port = int(match.group(2))
                self.rest_port = int(match.group(4))
                self._ready.set()
        self._ready.set()  # exited: wake start() so it can report the output

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (graceful: jobs are stopped and recorded), SIGKILL after `timeout`."""
        process = self._process
        if process is None or process.poll() is not None:
            self._join()
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._join()

    def kill(self) -> None:
        """SIGKILL, as a crash would; the emulator's job processes are left running."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self._join()

    def _join(self) -> None:
        if self._reader is not None:
            self._reader.join(5.0)

    def __enter__(self) -> EmulatorProcess:
        if self._process is None:
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
    def pid(self) -> int:
        if self._process is None:
            raise EmulatorError("the emulator has not been started")
        return self._process.pid

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

    @property
    def output(self) -> list[str]:
        """The server's recent output lines (for diagnosing a failed test)."""
        return list(self._output)

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
