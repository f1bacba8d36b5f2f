"""For your own tests: a private gcpjobs emulator inside the test process, and the ways to point
gcpjobs at it.

    import gcpjobs
    from gcpjobs.testing import local_emulator

    def test_training_job(tmp_path):
        with local_emulator(tmp_path / "emulator", queued_seconds=None) as emulator:
            client = gcpjobs.VertexClient(target=emulator.target)
            ...                              # jobs wait in QUEUED until emulator.advance(name)

The emulator serves the real APIs over real sockets on free loopback ports and runs each job's
command as a process on this machine; it is stopped, and every job process with it, when the
block ends. Code that reads the environment instead of taking a target (a subprocess, the
`gcpjobs` command) gets it from `emulator.environment`, e.g. `monkeypatch.setenv(name, value)`
for each item. Settings are `InProcessEmulator`'s (docs/emulator.md, Control routes and
Faults); the control calls (`advance`, `inject_fault`, `configure`, `stats`, ...) are its too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from gcpjobs.clients.target import (
    EMULATOR_HOST_ENV,
    EMULATOR_PROJECT,
    EMULATOR_REST_HOST_ENV,
    Target,
)
from gcpjobs.emulator.inprocess import EmulatorHandle, InProcessEmulator

__all__ = ["InProcessEmulator", "LocalEmulator", "emulator_environment", "emulator_target",
           "local_emulator"]


def emulator_target(emulator: EmulatorHandle, project: str = EMULATOR_PROJECT) -> Target:
    """The `target=` for gcpjobs' clients that sends their requests to `emulator` (an
    in-process one, or an `EmulatorProcess`)."""
    return Target(kind="emulator", project=project, grpc_address=emulator.grpc_address,
                  rest_endpoint=emulator.rest_endpoint)


def emulator_environment(emulator: EmulatorHandle) -> dict[str, str]:
    """The variables that point gcpjobs at `emulator` from the environment
    (`GCPJOBS_EMULATOR_HOST`, `GCPJOBS_EMULATOR_REST_HOST`)."""
    return {EMULATOR_HOST_ENV: emulator.grpc_address,
            EMULATOR_REST_HOST_ENV: emulator.rest_endpoint.removeprefix("http://")}


class LocalEmulator(InProcessEmulator):
    """An in-process emulator that also says how to reach it: `target`, `environment`."""

    @property
    def target(self) -> Target:
        return emulator_target(self)

    @property
    def environment(self) -> dict[str, str]:
        return emulator_environment(self)


@contextlib.contextmanager
def local_emulator(
    data_dir: Path | str,
    *,
    queued_seconds: float | None = 0.0,
    pending_seconds: float | None = 0.0,
    cancel_grace_seconds: float = 1.0,
) -> Iterator[LocalEmulator]:
    """A private emulator keeping its records in `data_dir`, for the length of the block.
    `queued_seconds`/`pending_seconds`: how long jobs stay QUEUED/PENDING (None: until
    `advance`); `cancel_grace_seconds`: SIGTERM to SIGKILL when a job is stopped (short by
    default, so that tests do not wait on jobs that ignore SIGTERM)."""
    with LocalEmulator(Path(data_dir), queued_seconds=queued_seconds,
                       pending_seconds=pending_seconds,
                       cancel_grace_seconds=cancel_grace_seconds) as emulator:
        yield emulator
