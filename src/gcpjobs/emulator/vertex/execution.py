"""The Vertex rules for one run of a CustomJob's replicas: which exit decides the job.

executor.py starts, watches and kills process trees and knows nothing of Vertex; this module
holds what Vertex decides from their exits (runner.py moves the job through its states).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gcpjobs.emulator.executor import (
    LaunchError,
    ReplicaExit,
    ReplicaLaunch,
    ReplicaProcess,
    forget_pids,
    record_pids,
    stop_all,
)


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    failed: ReplicaExit | None = None  # the first replica that failed


class JobExecution:
    """All replicas of one job. The job's result follows the Vertex rules:

    * the primary replica (the first launch, `workerpool0-0`) decides success: when it exits 0
      the job has succeeded, and replicas still running (parameter servers, say) are stopped;
    * any replica exiting non-zero fails the job (Vertex treats it as a permanent error and
      shuts the whole job down), and the first such exit is the one reported.
    """

    def __init__(self, job_path: Path, launches: Sequence[ReplicaLaunch], wake: threading.Condition):
        if not launches:
            raise ValueError("a job needs at least one replica")
        self._job_path = job_path
        self._wake = wake
        self._replicas = [ReplicaProcess(launch, wake) for launch in launches]

    @property
    def primary(self) -> str:
        return self._replicas[0].launch.name

    def start(self) -> None:
        """Start every replica; on a launch error, stop those already started and re-raise."""
        started: list[ReplicaProcess] = []
        try:
            for replica in self._replicas:
                replica.start()
                started.append(replica)
                record_pids(self._job_path, started)
        except LaunchError:
            for replica in self._replicas:
                if replica in started:
                    replica.kill(grace=0.5)
                replica.close()
            raise

    def outcome(self) -> Outcome | None:
        """The job's result if it is decided, else None. Call with the wake condition held."""
        exits = [r.exit for r in self._replicas if r.exit is not None]
        failures = sorted((e for e in exits if e.returncode != 0), key=lambda e: e.at)
        if failures:
            return Outcome(succeeded=False, failed=failures[0])
        primary = self._replicas[0].exit
        if primary is not None and primary.returncode == 0:
            return Outcome(succeeded=True)
        return None

    def replica_names(self) -> list[str]:
        return [replica.launch.name for replica in self._replicas]

    def crash(self, replica: str) -> bool:
        """SIGKILL one replica's tree (the `/_emulator/crash` fault); False if it had exited."""
        for candidate in self._replicas:
            if candidate.launch.name == replica:
                return candidate.crash()
        raise KeyError(replica)

    def stop(self, grace: float) -> None:
        """Kill every replica's tree (in parallel, so the grace period is paid once)."""
        stop_all(self._replicas, grace)
        forget_pids(self._job_path)
