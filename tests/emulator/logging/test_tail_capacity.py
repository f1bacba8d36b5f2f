"""Open tails never starve other calls (issue 11, finding 4).

Before the fix, each open TailLogEntries stream held one of the gRPC server's 16 threads for
its life: the 17th tail, and every unary call after it, waited forever. Now the server has a
thread for every tail the Logging service allows (10 per project, Cloud Logging's documented
limit on open live-tailing sessions; 100 in all) beside its unary workers; tails past a cap are
refused with RESOURCE_EXHAUSTED (over gRPC and REST alike), and closing a tail frees its place.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import logging_v2

from gcpjobs.emulator.logging.service import MAX_OPEN_TAILS, MAX_TAILS_PER_PROJECT
from gcpjobs.emulator.process import EmulatorProcess
from tests.conftest import grpc_client
from tests.emulator.corpus.support import assert_google_error, call
from tests.emulator.logging.support import grpc_logging, list_texts
from tests.emulator.support import LOCATION, PYTHON, custom_job, process_gone
from tests.waiting import wait_for

PROJECTS = [f"tail-capacity-{index}" for index in range(MAX_OPEN_TAILS // MAX_TAILS_PER_PROJECT)]
PROMPT = 30.0  # generous: the old server never answered at all


class Tails:
    """Tails held open from threads, each counted once its first response (the job's line,
    within the 60 s buffer window) has arrived, or once it was refused."""

    def __init__(self, server: EmulatorProcess) -> None:
        self.server = server
        self.clients: dict[str, Any] = {}
        self.open: dict[str, list[Any]] = {}
        self.refused: list[BaseException] = []
        self.lock = threading.Lock()

    def client(self, project: str) -> Any:
        # One channel per project keeps each connection's concurrent streams low.
        with self.lock:
            if project not in self.clients:
                self.clients[project] = grpc_logging(self.server)
            return self.clients[project]

    def start(self, project: str) -> threading.Thread:
        thread = threading.Thread(target=self.open_one, args=(project,), daemon=True)
        thread.start()
        return thread

    def open_one(self, project: str) -> Any:
        request = logging_v2.types.TailLogEntriesRequest(
            resource_names=[f"projects/{project}"], buffer_window={"seconds": 60})
        try:
            # The GAPIC stream waits for its first response before it returns.
            stream = self.client(project).tail_log_entries(requests=iter([request]))
        except exceptions.GoogleAPICallError as error:
            with self.lock:
                self.refused.append(error)
            raise
        with self.lock:
            self.open.setdefault(project, []).append(stream)
        return stream

    def count(self) -> int:
        with self.lock:
            return sum(len(streams) for streams in self.open.values())

    def close(self, project: str) -> None:
        with self.lock:
            streams = self.open.pop(project, [])
        for stream in streams:
            stream.cancel()

    def close_all(self) -> None:
        for project in list(self.open):
            self.close(project)
        for client in self.clients.values():
            client.transport.close()


@pytest.fixture()
def server(emulator_process_factory: Callable[..., EmulatorProcess]) -> tuple[EmulatorProcess, str]:
    """A private emulator with one finished job in each project; returns it and one job's name."""
    server = emulator_process_factory()
    jobs = grpc_client(server)
    try:
        names = [jobs.create_custom_job(
            parent=f"projects/{project}/locations/{LOCATION}",
            custom_job=custom_job([PYTHON, "-c", "print('hello', flush=True)"])).name
            for project in PROJECTS]
    finally:
        jobs.transport.close()
    return server, names[0]


def test_a_hundred_open_tails_leave_unary_calls_working(server: tuple[EmulatorProcess, str]) -> None:
    emulator, job_name = server
    tails = Tails(emulator)
    try:
        for project in PROJECTS:
            for _ in range(MAX_TAILS_PER_PROJECT):
                tails.start(project)
        wait_for(lambda: tails.count() == MAX_OPEN_TAILS or tails.refused, timeout=PROMPT * 2,
                 message=lambda: f"{MAX_OPEN_TAILS} tails to open ({tails.count()} did)")
        assert not tails.refused, tails.refused[:3]

        # Unary calls answer with every tail open.
        jobs = grpc_client(emulator)
        logs = grpc_logging(emulator)
        try:
            for _ in range(5):
                assert jobs.get_custom_job(name=job_name, timeout=PROMPT).name == job_name
                texts = [entry.text_payload for entry in list_texts(
                    logs, PROJECTS[0], 'resource.labels.task_name="workerpool0-0"')]
                assert texts == ["hello"]
        finally:
            jobs.transport.close()
            logs.transport.close()

        # Past the per-project cap, and past the cap in all: RESOURCE_EXHAUSTED, at once.
        with pytest.raises(exceptions.ResourceExhausted, match="10 per Google Cloud project"):
            tails.open_one(PROJECTS[0])
        with pytest.raises(exceptions.ResourceExhausted, match="at most 100 open"):
            tails.open_one("tail-capacity-another")
        # The cap is the service's: a REST tail counts against the same places.
        reply = call(emulator, "POST", "/v2/entries:tail",
                     {"resourceNames": [f"projects/{PROJECTS[0]}"]})
        assert "live-tailing" in assert_google_error(reply, 429, "RESOURCE_EXHAUSTED")

        # Closing a project's tails frees its places.
        tails.close(PROJECTS[0])
        tails.refused.clear()

        def reopened() -> bool:
            try:
                tails.open_one(PROJECTS[0])
            except exceptions.ResourceExhausted:
                return False  # the server has not yet seen the cancellations
            return True

        wait_for(reopened, timeout=PROMPT, interval=0.2, message="a freed place to be taken")

        # SIGTERM still stops the emulator promptly with the tails open.
        os.kill(emulator.pid, signal.SIGTERM)
        wait_for(lambda: process_gone(emulator.pid), timeout=PROMPT,
                 message="the emulator to exit on SIGTERM with its tails open")
    finally:
        tails.close_all()
