"""TailLogEntries over REST (`POST /v2/entries:tail`): a chunked JSON array read with the
OFFICIAL google-api-core `ResponseIterator` (what GAPIC REST transports use for server
streaming) over an `AuthorizedSession` response, parsed into the official
`TailLogEntriesResponse`."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from google.api_core import exceptions
from google.api_core.rest_streaming import ResponseIterator
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud import aiplatform_v1
from google.cloud.logging_v2 import types as logging_types
from google.logging.type import log_severity_pb2

from gcpjobs.emulator.process import EmulatorProcess
from tests.conftest import grpc_client
from tests.emulator.support import PARENT, PROJECT, PYTHON, custom_job
from tests.waiting import wait_for

TAIL = "/v2/entries:tail"
RESOURCES = [f"projects/{PROJECT}"]


@pytest.fixture()
def session() -> Iterator[AuthorizedSession]:
    http = AuthorizedSession(AnonymousCredentials())
    yield http
    http.close()


class Tail:
    """An open REST tail: the request has been answered (200, the stream has begun) when this
    exists; a reader thread collects entries until `done(entries)` holds, then closes."""

    def __init__(self, response: Any, done: Callable[[list[Any]], bool]) -> None:
        assert response.status_code == 200, response.text
        self.response = response
        self.entries: list[Any] = []
        self.done = done
        self.ended = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for message in ResponseIterator(self.response, logging_types.TailLogEntriesResponse):
                self.entries.extend(message.entries)
                if self.done(self.entries):
                    break
        finally:
            self.ended = True
            self.response.close()

    def texts(self) -> list[str]:
        return [entry.text_payload for entry in self.entries]


def open_tail(
    session: AuthorizedSession,
    emulator: EmulatorProcess,
    body: dict[str, Any],
    done: Callable[[list[Any]], bool],
    *,
    query: str = "",
) -> Tail:
    # The deadline is a safety net: a failing test does not leave a stream open.
    response = session.post(emulator.rest_endpoint + TAIL + query, json=body, stream=True,
                            headers={"X-Server-Timeout": "15"}, timeout=10)
    return Tail(response, done)


def create_job(emulator: EmulatorProcess, code: str) -> str:
    jobs = grpc_client(emulator)
    try:
        created = jobs.create_custom_job(parent=PARENT, custom_job=custom_job([PYTHON, "-c", code]))
    finally:
        jobs.transport.close()
    return created.name.rsplit("/", 1)[-1]


def wait_file(path: Path) -> str:
    return f"while not os.path.exists({str(path)!r}):\n    time.sleep(0.02)\n"


def listed_texts(session: AuthorizedSession, emulator: EmulatorProcess, filter_: str) -> set[str]:
    """Texts ListLogEntries (REST) has for the filter: what is already in the output files."""
    reply = session.post(emulator.rest_endpoint + "/v2/entries:list", timeout=10,
                         json={"resourceNames": RESOURCES, "filter": filter_, "pageSize": 1000})
    assert reply.status_code == 200, reply.text
    return {entry.get("textPayload", "") for entry in reply.json().get("entries", [])}


def test_rest_tail_streams_lines_while_the_job_runs_in_order_once_each(
    emulator: EmulatorProcess, session: AuthorizedSession, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    code = ("import os, sys, time\n"
            "print('before', flush=True)\n"
            + wait_file(go) +
            "print('after', flush=True)\n"
            "print('bad', file=sys.stderr, flush=True)\n"
            "print('last', flush=True)\n")
    job_id = create_job(emulator, code)
    tail = open_tail(
        session, emulator,
        {"resourceNames": RESOURCES,
         "filter": f'resource.labels.job_id="{job_id}" resource.labels.task_name="workerpool0-0"'},
        lambda entries: {"bad", "last"} <= {e.text_payload for e in entries},
        query="?$alt=json;enum-encoding=int",  # as GAPIC REST transports ask
    )
    wait_for(lambda: "before" in tail.texts(), timeout=4, message="the first line on the REST tail")
    # The job is still blocked on the file: the line came while it runs.
    assert "after" not in tail.texts()
    jobs = grpc_client(emulator)
    try:
        job = jobs.get_custom_job(name=f"{PARENT}/customJobs/{job_id}")
    finally:
        jobs.transport.close()
    assert job.state == aiplatform_v1.JobState.JOB_STATE_RUNNING
    go.touch()
    wait_for(lambda: tail.ended, timeout=4, message="the later lines on the REST tail")
    texts = tail.texts()
    # stdout keeps its order; stderr is another pipe
    assert [t for t in texts if t in ("before", "after", "last")] == ["before", "after", "last"]
    assert texts.count("bad") == 1
    ids = [e.insert_id for e in tail.entries]
    assert len(ids) == len(set(ids))
    severities = {e.text_payload: e.severity for e in tail.entries}
    assert severities["bad"] == log_severity_pb2.ERROR  # numeric enums parsed back
    assert severities["last"] == log_severity_pb2.INFO


def test_rest_tail_honours_filter_and_buffer_window(
    emulator: EmulatorProcess, session: AuthorizedSession, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    head = "import os, time\n"
    mine = create_job(emulator, head + "print('a-early', flush=True)\n" + wait_file(first)
                      + "print('a-late', flush=True)\n" + wait_file(second)
                      + "print('a-last', flush=True)\n")
    other = create_job(emulator, head + "print('b-early', flush=True)\n" + wait_file(first)
                       + "print('b-late', flush=True)\n")
    replica = 'resource.labels.task_name="workerpool0-0"'
    both = f'(resource.labels.job_id="{mine}" OR resource.labels.job_id="{other}") {replica}'
    wait_for(lambda: {"a-early", "b-early"} <= listed_texts(session, emulator, both), timeout=4,
             message="both jobs' first lines")
    # buffer_window 0: nothing written before the stream opened (the default 2 s would bring
    # "a-early"); the filter: the other job's lines never come.
    tail = open_tail(
        session, emulator,
        {"resourceNames": RESOURCES, "filter": f'resource.labels.job_id="{mine}" {replica}',
         "bufferWindow": "0s"},
        lambda entries: any(e.text_payload == "a-last" for e in entries),
    )
    first.touch()
    wait_for(lambda: "a-late" in tail.texts() and "b-late" in listed_texts(session, emulator, both),
             timeout=4, message="a-late on the tail and b-late in the files")
    second.touch()  # a-last is written after b-late: a poll that finds it has seen b-late too
    wait_for(lambda: tail.ended, timeout=4, message="a-last on the tail")
    assert tail.texts() == ["a-late", "a-last"]
    assert {e.resource.labels["job_id"] for e in tail.entries} == {mine}


@pytest.mark.parametrize(
    ("body", "headers", "fragment"),
    [
        (b'{"resourceNames": ["projects/p"', {}, "Invalid JSON payload"),
        (b'["projects/p"]', {}, "Invalid JSON payload"),
        (json.dumps({"resourceNames": RESOURCES, "noSuchField": 1}).encode(), {},
         "Invalid JSON payload"),
        (json.dumps({"resourceNames": RESOURCES, "filter": 'severity>="'}).encode(), {},
         "Invalid filter"),
        (json.dumps({"filter": "severity>=ERROR"}).encode(), {}, "resource_names is required"),
        (json.dumps({"resourceNames": ["buckets/x"]}).encode(), {}, "Invalid resource name"),
        (json.dumps({"resourceNames": RESOURCES, "bufferWindow": "61s"}).encode(), {},
         "buffer_window"),
        (json.dumps({"resourceNames": RESOURCES}).encode(), {"X-Server-Timeout": "soon"},
         "X-Server-Timeout"),
    ],
    ids=["truncated-json", "not-an-object", "unknown-field", "bad-filter", "no-resource-names",
         "bad-resource-name", "buffer-window-too-long", "bad-deadline"],
)
def test_rest_tail_refuses_bad_requests_with_a_google_error(
    emulator: EmulatorProcess, session: AuthorizedSession, body: bytes, headers: dict[str, str],
    fragment: str,
) -> None:
    response = session.post(emulator.rest_endpoint + TAIL, data=body, timeout=10,
                            headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 400, response.text
    assert "chunked" not in response.headers.get("Transfer-Encoding", "")  # not a stream
    error = response.json()["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"
    assert fragment in error["message"]
    assert isinstance(exceptions.from_http_response(response), exceptions.BadRequest)


def test_rest_tail_takes_injected_faults_and_ends_at_the_request_deadline(
    emulator: EmulatorProcess, session: AuthorizedSession
) -> None:
    method = "LoggingServiceV2.TailLogEntries"
    before = emulator.faults()["injected"].get(method, {}).get("unavailable", 0)
    emulator.inject_fault(method, "unavailable")
    body = {"resourceNames": RESOURCES, "filter": 'textPayload="no such line anywhere"'}
    refused = session.post(emulator.rest_endpoint + TAIL, json=body, timeout=10)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["status"] == "UNAVAILABLE"
    assert isinstance(exceptions.from_http_response(refused), exceptions.ServiceUnavailable)
    assert emulator.faults()["injected"][method]["unavailable"] == before + 1

    started = time.monotonic()
    response = session.post(emulator.rest_endpoint + TAIL, json=body, stream=True, timeout=10,
                            headers={"X-Server-Timeout": "0.5"})
    assert response.status_code == 200
    assert response.headers["Transfer-Encoding"] == "chunked"
    # A clean end of the array: the iterator stops (an unfinished array would raise).
    assert list(ResponseIterator(response, logging_types.TailLogEntriesResponse)) == []
    assert 0.4 <= time.monotonic() - started < 3


def test_rest_tail_thread_ends_when_the_client_goes_away(
    emulator_process_factory: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    # A private emulator with no jobs and no earlier connections: its thread count is steady.
    server = emulator_process_factory(tmp_path / "private")
    threads = psutil.Process(server.pid).num_threads
    baseline = threads()
    body = {"resourceNames": RESOURCES, "filter": 'textPayload="nothing will match"'}

    # A client that closes (FIN) while the stream has nothing to send.
    http = AuthorizedSession(AnonymousCredentials())
    response = http.post(server.rest_endpoint + TAIL, json=body, stream=True, timeout=10)
    assert response.status_code == 200
    assert threads() == baseline + 1  # the connection's handler thread, streaming
    response.close()
    http.close()
    wait_for(lambda: threads() == baseline, timeout=3,
             message=lambda: f"the streaming thread to end ({threads()} threads, {baseline} before)")

    # A client whose connection is reset (RST), speaking raw HTTP/1.1.
    payload = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=10) as raw:
        raw.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s"
                    % (TAIL.encode(), server.rest_port, len(payload), payload))
        head = b""
        while b"\r\n\r\n" not in head:
            head += raw.recv(4096)
        assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in head
        assert threads() == baseline + 1
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    wait_for(lambda: threads() == baseline, timeout=3,
             message=lambda: f"the streaming thread to end ({threads()} threads, {baseline} before)")


def test_rest_tail_to_an_http_1_0_client_is_unchunked_and_ends_by_closing(
    emulator: EmulatorProcess,
) -> None:
    payload = json.dumps({"resourceNames": RESOURCES, "filter": 'textPayload="no such line"'})
    with socket.create_connection(("127.0.0.1", emulator.rest_port), timeout=10) as raw:
        raw.sendall(b"POST %s HTTP/1.0\r\nContent-Type: application/json\r\nX-Server-Timeout: 0.3"
                    b"\r\nContent-Length: %d\r\n\r\n%s" % (TAIL.encode(), len(payload), payload.encode()))
        reply = b""
        while chunk := raw.recv(4096):  # the server closes at the deadline
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    # HTTP/1.0 or 1.1 in the status line: either is a 200 an HTTP/1.0 client reads.
    assert head.split(b" ", 2)[1] == b"200" and b"chunked" not in head
    assert body == b"[]"
