"""One daemon thread per running Vertex job or Cloud Run execution, found by name, the way to
stop them all (shutdown, reset), and the timed or held wait before a run moves on. Shared by
vertex/runner.py and cloudrun/runner.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Control(Protocol):
    """What other threads ask of one run thread; guarded by `cond`."""

    cond: threading.Condition
    stop: bool


C = TypeVar("C", bound=Control)


class AdvanceError(Exception):
    """A run cannot be advanced (it is not being held)."""


class HoldControl(Control, Protocol):
    cancel: bool
    advances: int  # `POST /_emulator/advance` calls not yet taken


def hold(control: HoldControl, seconds: Callable[[], float | None]) -> bool:
    """Wait `seconds()` (None: until advanced) from now, or until advanced.

    False when the run was cancelled or the emulator is stopping meanwhile. The time is read
    again on every wake-up, so a changed setting applies to runs already waiting (notify the
    condition after changing it).
    """
    entered = time.monotonic()
    with control.cond:
        while True:
            if control.cancel or control.stop:
                return False
            if control.advances:
                control.advances -= 1
                return True
            wait = seconds()
            remaining = None if wait is None else entered + wait - time.monotonic()
            if remaining is not None and remaining <= 0:
                return True
            control.cond.wait(remaining)


class RunThreads(Generic[C]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[C, threading.Thread]] = {}
        self._stopping = False

    def start(self, name: str, control: C, target: Callable[[], None], thread_name: str) -> None:
        """Run `target` on a thread of its own; RuntimeError while everything is being stopped."""

        def body() -> None:
            try:
                target()
            finally:
                with self._lock:
                    self._runs.pop(name, None)

        thread = threading.Thread(target=body, name=thread_name, daemon=True)
        with self._lock:
            if self._stopping:
                raise RuntimeError("the emulator is stopping")
            self._runs[name] = (control, thread)
        thread.start()

    def control(self, name: str) -> C | None:
        with self._lock:
            entry = self._runs.get(name)
        return entry[0] if entry else None

    def controls(self) -> list[C]:
        with self._lock:
            return [control for control, _ in self._runs.values()]

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)

    def stop_all(self, timeout: float = 30.0, *, final: bool = True) -> None:
        """Ask every run to stop and wait for their threads; `final=False` (a reset) accepts
        new runs again afterwards."""
        with self._lock:
            self._stopping = True
            runs = list(self._runs.values())
        for control, _ in runs:
            with control.cond:
                control.stop = True
                control.cond.notify_all()
        deadline = time.monotonic() + timeout
        for _, thread in runs:
            thread.join(max(0.0, deadline - time.monotonic()))
        if not final:
            with self._lock:
                self._stopping = False
