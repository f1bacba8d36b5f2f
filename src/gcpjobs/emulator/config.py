"""How an emulator is started: where it listens, where it keeps its records, and how fast jobs
move through QUEUED and PENDING."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gcpjobs.paths import data_dir

DEFAULT_HOST = "127.0.0.1"
DEFAULT_GRPC_PORT = 8470
DEFAULT_REST_PORT = 8471
# Where a running emulator keeps the token its `/_emulator/*` routes require (0600).
ADMIN_TOKEN_FILE = "admin-token"
# The longest any timing setting may be (flags and `POST /_emulator/config`): one day.
MAX_TIMING_SECONDS = 86_400.0
# Idle keep-alive connections, and requests whose head or body has not arrived, are closed
# after this many seconds (`--http-timeout`).
DEFAULT_HTTP_TIMEOUT_SECONDS = 60.0


def default_data_dir() -> Path:
    """The emulator's part of gcpjobs' data dir: `gcpjobs.paths.data_dir() / "emulator"`."""
    return data_dir() / "emulator"


@dataclass
class EmulatorConfig:
    """Start-up settings. The three timing settings can also be changed while the emulator runs
    (`POST /_emulator/config`); `None` for a phase means "hold the job there until
    `POST /_emulator/advance`"."""

    host: str = DEFAULT_HOST
    grpc_port: int = DEFAULT_GRPC_PORT  # 0 = pick a free port
    rest_port: int = DEFAULT_REST_PORT  # 0 = pick a free port
    data_dir: Path = field(default_factory=default_data_dir)
    queued_seconds: float | None = 0.0
    pending_seconds: float | None = 0.0
    cancel_grace_seconds: float = 5.0
    # Names (or shell patterns, `AWS_*`) of the emulator's environment variables jobs also get
    # (`--pass-env`); jobs otherwise start from a small environment (executor.JobEnvironment).
    pass_env: tuple[str, ...] = ()
    # Binding a non-loopback address runs commands for whoever reaches the port: opt in.
    allow_remote: bool = False
    http_timeout_seconds: float = DEFAULT_HTTP_TIMEOUT_SECONDS


@dataclass(frozen=True)
class Timings:
    """How long Vertex jobs stay QUEUED and PENDING, and Cloud Run executions wait before their
    tasks start (`queued_seconds`); None: until advanced. And the kill grace of a cancel."""

    queued_seconds: float | None = 0.0
    pending_seconds: float | None = 0.0
    cancel_grace_seconds: float = 5.0
