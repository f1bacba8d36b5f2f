"""TailLogEntries (bidi gRPC) with the OFFICIAL GAPIC client: lines appear as a job prints
them, each once, filtered."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from google.api_core import exceptions
from google.cloud import logging_v2

from gcpjobs.emulator.process import EmulatorProcess
from tests.conftest import grpc_client
from tests.emulator.logging.support import grpc_logging
from tests.emulator.support import PARENT, PROJECT, PYTHON, custom_job
from tests.waiting import wait_for


def test_tail_streams_new_lines_once_each(emulator: EmulatorProcess, tmp_path: Path) -> None:
    go = tmp_path / "go"
    code = ("import os, sys, time\n"
            "print('before', flush=True)\n"
            f"while not os.path.exists({str(go)!r}):\n    time.sleep(0.02)\n"
            "print('after', flush=True)\n"
            "print('bad', file=sys.stderr, flush=True)\n"
            "print('last', flush=True)\n")
    jobs = grpc_client(emulator)
    created = jobs.create_custom_job(parent=PARENT, custom_job=custom_job([PYTHON, "-c", code]))
    jobs.transport.close()
    job_id = created.name.rsplit("/", 1)[-1]
    client = grpc_logging(emulator)
    request = logging_v2.types.TailLogEntriesRequest(
        resource_names=[f"projects/{PROJECT}"],
        filter=f'resource.labels.job_id="{job_id}" resource.labels.task_name="workerpool0-0"',
    )
    stream = client.tail_log_entries(requests=iter([request]))
    received: list[Any] = []

    def read() -> None:
        with contextlib.suppress(exceptions.Cancelled):
            for response in stream:
                received.extend(response.entries)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(lambda: any(e.text_payload == "before" for e in received), timeout=15,
                 message="the first line on the tail")
        assert not any(e.text_payload == "after" for e in received)
        go.touch()
        wait_for(lambda: {"bad", "last"} <= {e.text_payload for e in received}, timeout=15,
                 message="the later lines on the tail")
    finally:
        stream.cancel()
        reader.join(5)
        client.transport.close()
    texts = [e.text_payload for e in received]
    # stdout keeps its order; stderr is another pipe
    assert [t for t in texts if t in ("before", "after", "last")] == ["before", "after", "last"]
    assert texts.count("bad") == 1
    ids = [e.insert_id for e in received]
    assert len(ids) == len(set(ids))
    assert all(e.resource.labels["task_name"] == "workerpool0-0" for e in received)
    assert not reader.is_alive()
