"""Functions the step tests run as jobs. This module imports only the standard library, so a
job that imports it (plain functions are pickled by reference) starts fast."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gcpjobs.steps.remote import remote


def add(a: int, b: int = 0) -> int:
    return a + b


def echo(value: Any) -> Any:
    return value


def where_am_i() -> dict[str, Any]:
    """What the job's process sees."""
    return {
        "pid": os.getpid(),
        "run_id": os.environ.get("GCPJOBS_STEP_RUN_ID"),
        "has_key": any(name.startswith("GCPJOBS_STEP_KEY") for name in os.environ),
        "vertex_job": os.environ.get("CLOUD_ML_JOB_ID"),
        "cloud_run_execution": os.environ.get("CLOUD_RUN_EXECUTION"),
    }


def make_array(megabytes: int, seed: int) -> Any:
    import numpy as np

    return np.random.default_rng(seed).random(megabytes * 1024 * 1024 // 8)


def fail(message: str) -> None:
    raise ValueError(message)


class StepFailure(Exception):
    """A user-defined exception that carries data."""

    def __init__(self, code: int) -> None:
        super().__init__(f"step failed with code {code}")
        self.code = code


def fail_custom(code: int) -> None:
    raise StepFailure(code)


class Unrebuildable(Exception):
    """Pickles, but cannot be unpickled: its args do not fit its constructor."""

    def __init__(self, left: str, right: str) -> None:
        super().__init__(f"{left} and {right}")


def fail_unrebuildable() -> None:
    raise Unrebuildable("left", "right")


def exit_job(code: int) -> None:
    sys.exit(code)


def unpicklable_result() -> Any:
    return threading.Lock()


def kill_self() -> None:
    """Dies the way an out-of-memory kill does: SIGKILL, no outcome written."""
    os.kill(os.getpid(), signal.SIGKILL)


def sleep_for(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


def wait_for_file(path: str, timeout: float = 60.0) -> str:
    """Blocks until `path` exists (the test creates it), then returns its content."""
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.02)
    return Path(path).read_text()


def touch(path: str) -> str:
    Path(path).write_text("ran")
    return "touched"


async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


@remote(labels={"test": "decorated"})
def decorated_multiply(a: int, b: int) -> int:
    return a * b


@remote
def decorated_fail() -> None:
    raise StepFailure(7)


def traced(function: Callable[..., Any]) -> Callable[..., Any]:
    """A decorator of the user's own, put over `remote` (as Prefect's @task would be)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return wrapper


@traced
@remote
def traced_fail(code: int) -> None:
    raise StepFailure(code)
