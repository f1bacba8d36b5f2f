"""A background ("detached") emulator: find it, start it, stop it.

Used by `python -m gcpjobs.emulator start --detach | stop | status`, the CLI, and the client's
embedded mode. A running emulator announces itself in `DATA_DIR/emulator.json`; it counts as
running only if that process is alive AND its admin endpoint answers. Two callers racing to
start one are serialised by a file lock, so only one emulator starts. Admin calls carry the
token the emulator wrote to `DATA_DIR/admin-token` (readable by this user only).

Only the standard library and psutil are imported here: starting or finding an emulator must
not pay for the Google client libraries.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from gcpjobs.emulator.config import DEFAULT_HTTP_TIMEOUT_SECONDS, EmulatorConfig
from gcpjobs.emulator.transports.front import admin_headers, read_admin_token
from gcpjobs.errors import EmulatorError

INFO_FILE = "emulator.json"  # written by server.py
START_LOCK_FILE = "start.lock"
LOG_FILE = "emulator.log"
_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class EmulatorInfo:
    pid: int
    host: str
    grpc_port: int
    rest_port: int
    data_dir: Path

    @property
    def _client_host(self) -> str:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"[{host}]" if ":" in host else host

    @property
    def grpc_address(self) -> str:
        return f"{self._client_host}:{self.grpc_port}"

    @property
    def rest_endpoint(self) -> str:
        return f"http://{self._client_host}:{self.rest_port}"


# ------------------------------------------------------------------------------- admin calls


def admin_call(
    rest_endpoint: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    timeout: float = 10.0,
    data_dir: Path | None = None,
    token: str | None = None,
) -> Any:
    """One admin request (`/_emulator/...`); the JSON answer, or EmulatorError (one line).
    The admin token is `token`, or read from `data_dir` (the emulator's data directory)."""
    if token is None and data_dir is not None:
        token = read_admin_token(data_dir)
    data = None if body is None else json.dumps(body).encode()
    headers = admin_headers(token)
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(
        rest_endpoint.rstrip("/") + path, data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = error.reason
        raise EmulatorError(f"emulator refused {method} {path}: {message}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise EmulatorError(
            f"cannot reach the emulator at {rest_endpoint} ({reason}); is it running?"
        ) from None


# -------------------------------------------------------------------------------- discovery


def read_info(data_dir: Path) -> EmulatorInfo | None:
    """What emulator.json says, without checking it (None if missing or unreadable)."""
    try:
        document = json.loads((data_dir / INFO_FILE).read_text(encoding="utf-8"))
        return EmulatorInfo(
            pid=int(document["pid"]),
            host=str(document["host"]),
            grpc_port=int(document["grpc_port"]),
            rest_port=int(document["rest_port"]),
            data_dir=data_dir,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def running_emulator(data_dir: Path) -> EmulatorInfo | None:
    """The emulator serving this data dir, if its process lives and it answers within ~0.5 s."""
    info = read_info(data_dir)
    if info is None or not _alive(info.pid):
        return None
    try:
        admin_call(info.rest_endpoint, "GET", "/_emulator/stats", timeout=0.5, data_dir=data_dir)
    except EmulatorError:
        return None
    return info


# ----------------------------------------------------------------------------- start / stop


@contextlib.contextmanager
def _start_lock(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(data_dir / START_LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _seconds_arg(value: float | None) -> str:
    return "hold" if value is None else repr(float(value))


def start_arguments(config: EmulatorConfig) -> list[str]:
    """`python -m gcpjobs.emulator start ...` for this config (foreground)."""
    return [
        sys.executable, "-m", "gcpjobs.emulator", "start",
        "--host", config.host,
        "--grpc-port", str(config.grpc_port),
        "--rest-port", str(config.rest_port),
        "--data-dir", str(config.data_dir),
        "--queued-seconds", _seconds_arg(config.queued_seconds),
        "--pending-seconds", _seconds_arg(config.pending_seconds),
        "--cancel-grace-seconds", repr(float(config.cancel_grace_seconds)),
        *(f"--pass-env={name}" for name in config.pass_env),
        *(["--allow-remote"] if config.allow_remote else []),
        *([] if config.http_timeout_seconds == DEFAULT_HTTP_TIMEOUT_SECONDS
          else ["--http-timeout", repr(float(config.http_timeout_seconds))]),
    ]


def _last_line(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1].strip()
    return "no output"


MAX_START_SECONDS = 600.0


def start_detached(config: EmulatorConfig, timeout: float = 30.0) -> EmulatorInfo:
    """Start a background emulator for `config.data_dir`, or return the one already running.

    The server runs in its own session (a terminal's Ctrl-C does not reach it) and writes its
    output to `DATA_DIR/emulator.log`.
    """
    data_dir = config.data_dir.expanduser().resolve()
    with _start_lock(data_dir):
        existing = running_emulator(data_dir)
        if existing is not None:
            return existing
        log_path = data_dir / LOG_FILE
        arguments = start_arguments(EmulatorConfig(**{**config.__dict__, "data_dir": data_dir}))
        # 0600 from the start: this process's umask is the user's, not the emulator's.
        log_descriptor = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(log_descriptor, "ab") as log:
            child = subprocess.Popen(
                arguments,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        # `timeout` bounds a start that shows no progress: one that takes long (recovering many
        # unfinished jobs after a crash) writes a line to its log every second, and while the
        # log grows the wait goes on, up to MAX_START_SECONDS in all.
        give_up = time.monotonic() + max(timeout, MAX_START_SECONDS)
        deadline = time.monotonic() + timeout
        log_size = -1
        while time.monotonic() < min(deadline, give_up):
            with contextlib.suppress(OSError):
                size = log_path.stat().st_size
                if size != log_size:
                    log_size, deadline = size, time.monotonic() + timeout
            if child.poll() is not None:
                raise EmulatorError(
                    f"the emulator exited at start ({_last_line(log_path)}); see {log_path}"
                )
            info = read_info(data_dir)
            if info is not None and info.pid == child.pid:
                with contextlib.suppress(EmulatorError):
                    admin_call(info.rest_endpoint, "GET", "/_emulator/stats", timeout=0.5,
                               data_dir=data_dir)
                    return info
            time.sleep(_POLL_SECONDS)
        _terminate(child.pid, grace=2.0)
        raise EmulatorError(
            f"the emulator did not become ready (no progress for {timeout:g}s, or not within "
            f"{MAX_START_SECONDS:g}s); see {log_path}"
        )


def _is_emulator(pid: int) -> bool:
    """Guard against a recycled pid: only signal a process that runs gcpjobs.emulator."""
    try:
        command = psutil.Process(pid).cmdline()
    except psutil.Error:
        return False
    return any("gcpjobs.emulator" in part or part.endswith("gcpjobs") for part in command)


def _terminate(pid: int, *, grace: float) -> bool:
    try:
        process = psutil.Process(pid)
        process.send_signal(signal.SIGTERM)
    except psutil.Error:
        return False
    try:
        process.wait(grace)
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.Error):
            process.kill()
            process.wait(5.0)
    return True


def stop_detached(data_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the background emulator of this data dir; False if none was running."""
    data_dir = data_dir.expanduser().resolve()
    info = read_info(data_dir)
    if info is None or not _alive(info.pid) or not _is_emulator(info.pid):
        with contextlib.suppress(FileNotFoundError):
            (data_dir / INFO_FILE).unlink()
        return False
    _terminate(info.pid, grace=timeout)
    return True


def describe(info: EmulatorInfo) -> str:
    return (
        f"gcpjobs emulator running pid={info.pid} grpc={info.grpc_address} "
        f"rest={info.rest_endpoint} data_dir={info.data_dir}"
    )


def environment_hint(info: EmulatorInfo) -> Sequence[str]:
    return (f"export GCPJOBS_EMULATOR_HOST={info.grpc_address}",
            f"export GCPJOBS_EMULATOR_REST_HOST={info.rest_endpoint.removeprefix('http://')}")
