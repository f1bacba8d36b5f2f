"""An emulator server in a child process on free ports: for tests and the client's embedded
mode. It is the real `python -m gcpjobs.emulator start`, so what is tested is what users run.

    with EmulatorProcess(tmp_path).start() as emulator:
        client = ...(emulator.grpc_address)
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from gcpjobs.emulator.config import DEFAULT_HTTP_TIMEOUT_SECONDS, EmulatorConfig
from gcpjobs.emulator.control import start_arguments
from gcpjobs.emulator.inprocess import EmulatorHandle
from gcpjobs.errors import EmulatorError

_READY = re.compile(r"^gcpjobs emulator ready grpc=(\S+):(\d+) rest=(\S+):(\d+)$")


class EmulatorProcess(EmulatorHandle):
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

    @property
    def started(self) -> bool:
        return self._process is not None

    # ------------------------------------------------------------------------------ addresses

    @property
    def pid(self) -> int:
        if self._process is None:
            raise EmulatorError("the emulator has not been started")
        return self._process.pid

    @property
    def output(self) -> list[str]:
        """The server's recent output lines (for diagnosing a failed test)."""
        return list(self._output)
