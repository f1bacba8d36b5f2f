"""HTTP framing the standard library answers itself, and request bodies it cannot trust: every
case is a Google JSON error (never an HTML page, a dropped connection or a held thread), and the
emulator keeps serving."""

from __future__ import annotations

import asyncio

import pytest

from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.corpus.support import (
    assert_google_error,
    assert_still_serving,
    call,
    request_bytes,
    send_raw,
)

JOBS = "/v1/projects/gcpjobs-test/locations/us-central1/customJobs"

# (what is wrong, request bytes builder, HTTP status, Google status)
FRAMING_CASES = [
    ("URL over 65,536 bytes", lambda e: request_bytes(e, "GET", JOBS + "?filter=" + "a" * 70_000),
     414, "INVALID_ARGUMENT"),
    ("PUT, a method no route has", lambda e: request_bytes(e, "PUT", JOBS, "{}"), 501, "UNIMPLEMENTED"),
    ("OPTIONS (a CORS preflight)", lambda e: request_bytes(e, "OPTIONS", JOBS), 501, "UNIMPLEMENTED"),
    ("TRACE", lambda e: request_bytes(e, "TRACE", JOBS), 501, "UNIMPLEMENTED"),
    ("an invented method", lambda e: request_bytes(e, "BREW", JOBS), 501, "UNIMPLEMENTED"),
    ("HTTP/9.9", lambda e: f"GET {JOBS} HTTP/9.9\r\nHost: x\r\n\r\n".encode(), 505,
     "INVALID_ARGUMENT"),
    ("a garbled version", lambda e: f"GET {JOBS} HTTX/1.1\r\nHost: x\r\n\r\n".encode(), 400,
     "INVALID_ARGUMENT"),
    ("a header line over 65,536 bytes",
     lambda e: request_bytes(e, "GET", JOBS, headers={"X-Long": "a" * 70_000}), 431,
     "INVALID_ARGUMENT"),
    ("over 100 headers",
     lambda e: request_bytes(e, "GET", JOBS, headers={f"X-H{i}": "1" for i in range(120)}), 431,
     "INVALID_ARGUMENT"),
    ("Content-Length: -1",
     lambda e: request_bytes(e, "POST", JOBS, "{}", headers={"Content-Length": "-1"}), 400,
     "INVALID_ARGUMENT"),
    ("Content-Length not a number",
     lambda e: request_bytes(e, "POST", JOBS, "{}", headers={"Content-Length": "two"}), 400,
     "INVALID_ARGUMENT"),
    ("Content-Length with a sign",
     lambda e: request_bytes(e, "POST", JOBS, "{}", headers={"Content-Length": "+2"}), 400,
     "INVALID_ARGUMENT"),
    ("a body over the 32 MiB limit announced",
     lambda e: request_bytes(e, "POST", JOBS, "{}", headers={"Content-Length": str(10**12)}), 413,
     "INVALID_ARGUMENT"),
]


@pytest.mark.parametrize(("case", "build", "http_status", "status"), FRAMING_CASES,
                         ids=[case[0] for case in FRAMING_CASES])
def test_framing_errors_are_google_json(
    emulator: EmulatorProcess, case: str, build: object, http_status: int, status: str
) -> None:
    reply = send_raw(emulator, build(emulator))  # type: ignore[operator]
    assert_google_error(reply, http_status, status)
    assert "<html" not in reply.body.decode("utf-8", "replace").lower()
    assert_still_serving(emulator)


BODY_CASES = [
    ("not JSON", "{not json"),
    ("a JSON array", "[]"),
    ("a JSON string", '"job"'),
    ("a JSON number", "42"),
    ("JSON null", "null"),
    ("an unknown field", '{"displayNam": "x"}'),
    ("a field of the wrong type", '{"displayName": 7}'),
    ("a list where an object goes", '{"jobSpec": []}'),
    ("truncated", '{"displayName": "x"'),
    ("invalid UTF-8", b'{"displayName": "\xff\xfe"}'),
]


@pytest.mark.parametrize(("case", "body"), BODY_CASES, ids=[case[0] for case in BODY_CASES])
def test_bad_bodies_are_invalid_argument(emulator: EmulatorProcess, case: str, body: str | bytes) -> None:
    reply = call(emulator, "POST", JOBS, body)
    assert_google_error(reply, 400, "INVALID_ARGUMENT")
    assert_still_serving(emulator)


def test_a_stalled_negative_length_does_not_hold_the_server(emulator: EmulatorProcess) -> None:
    """`Content-Length: -1` used to make the handler read until the client closed: the client
    waiting for an answer and the thread waiting for the body, forever."""
    reply = send_raw(emulator, request_bytes(emulator, "POST", JOBS, "{}",
                                             headers={"Content-Length": "-1"}), timeout=20)
    assert_google_error(reply, 400, "INVALID_ARGUMENT")


async def _get(host: str, port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    status_line = await reader.readline()
    await reader.read()
    writer.close()
    return status_line


def test_two_hundred_simultaneous_gets_are_all_answered(emulator: EmulatorProcess) -> None:
    """With the standard library's listen backlog of 5, 39 of 200 simultaneous GETs had no answer
    after 60 s: the kernel dropped their SYNs."""

    async def all_at_once() -> list[bytes]:
        return await asyncio.wait_for(
            asyncio.gather(*(_get(emulator.host, emulator.rest_port, JOBS + "?pageSize=1")
                             for _ in range(200))),
            timeout=45,
        )

    answers = asyncio.run(all_at_once())
    assert [line.split()[1] for line in answers] == [b"200"] * 200
