"""The REST port's bad-input corpus, raw bytes on the wire: HTTP framing, methods and paths,
limits, JSON bodies, content types, Host and Origin, and admin bodies of every wrong shape and
value. Every case is a Google JSON error (never an HTML page, a dropped connection, a 500 or a
held thread), and the emulator keeps serving (issue 11, findings 3 and 10)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.corpus.support import (
    RawReply,
    assert_google_error,
    assert_still_serving,
    call,
    request_bytes,
    send_raw,
)

JOBS = "/v1/projects/gcpjobs-test/locations/us-central1/customJobs"
RUN_JOBS = "/v2/projects/gcpjobs-test/locations/us-central1/jobs"
Build = Callable[[EmulatorProcess], bytes]


def _raw(text: str) -> Build:
    """A request written out by hand; `{host}` is the emulator's own address."""
    return lambda e: text.format(host=f"{e.host}:{e.rest_port}").encode("latin-1")


# (what is wrong, request bytes, HTTP status, Google status)
FRAMING_CASES: list[tuple[str, Build, int, str]] = [
    ("URL over 64 KiB", lambda e: request_bytes(e, "GET", JOBS + "?filter=" + "a" * 70_000),
     414, "INVALID_ARGUMENT"),
    ("PUT, a method no route has", lambda e: request_bytes(e, "PUT", JOBS, "{}"), 501, "UNIMPLEMENTED"),
    ("OPTIONS (a CORS preflight)", lambda e: request_bytes(e, "OPTIONS", JOBS), 501, "UNIMPLEMENTED"),
    ("TRACE", lambda e: request_bytes(e, "TRACE", JOBS), 501, "UNIMPLEMENTED"),
    ("HEAD", lambda e: request_bytes(e, "HEAD", JOBS + "/1"), 501, "UNIMPLEMENTED"),
    ("an invented method", lambda e: request_bytes(e, "BREW", JOBS), 501, "UNIMPLEMENTED"),
    ("a lower-case method", lambda e: request_bytes(e, "get", JOBS), 501, "UNIMPLEMENTED"),
    ("DELETE on a collection", lambda e: request_bytes(e, "DELETE", JOBS), 501, "UNIMPLEMENTED"),
    ("PATCH on a Vertex job", lambda e: request_bytes(e, "PATCH", JOBS + "/1", "{}"), 501,
     "UNIMPLEMENTED"),
    ("HTTP/9.9", _raw(f"GET {JOBS} HTTP/9.9\r\nHost: {{host}}\r\n\r\n"), 505, "INVALID_ARGUMENT"),
    ("HTTP/2.0 in an HTTP/1 request line", _raw(f"GET {JOBS} HTTP/2.0\r\nHost: {{host}}\r\n\r\n"),
     505, "INVALID_ARGUMENT"),
    ("a garbled version", _raw(f"GET {JOBS} HTTX/1.1\r\nHost: {{host}}\r\n\r\n"), 400,
     "INVALID_ARGUMENT"),
    ("no version (HTTP/0.9)", _raw(f"GET {JOBS}\r\n\r\n"), 505, "INVALID_ARGUMENT"),
    ("a space in the URL", _raw(f"GET {JOBS}/a b HTTP/1.1\r\nHost: {{host}}\r\n\r\n"), 400,
     "INVALID_ARGUMENT"),
    ("a control character in the URL", _raw(f"GET {JOBS}\x01 HTTP/1.1\r\nHost: {{host}}\r\n\r\n"),
     400, "INVALID_ARGUMENT"),
    ("bare LF line ends", _raw(f"GET {JOBS} HTTP/1.1\nHost: {{host}}\n\n"), 400, "INVALID_ARGUMENT"),
    ("a header without a colon", _raw(f"GET {JOBS} HTTP/1.1\r\nHost: {{host}}\r\nnonsense\r\n\r\n"),
     400, "INVALID_ARGUMENT"),
    ("a space before the colon",
     _raw(f"GET {JOBS} HTTP/1.1\r\nHost: {{host}}\r\nX-A : 1\r\n\r\n"), 400, "INVALID_ARGUMENT"),
    ("a NUL in a header value",
     _raw(f"GET {JOBS} HTTP/1.1\r\nHost: {{host}}\r\nX-A: a\x00b\r\n\r\n"), 400, "INVALID_ARGUMENT"),
    ("an obsolete folded header",
     _raw(f"GET {JOBS} HTTP/1.1\r\nHost: {{host}}\r\nX-A: a\r\n b\r\n\r\n"), 400, "INVALID_ARGUMENT"),
    ("HTTP/1.1 without Host", _raw(f"GET {JOBS} HTTP/1.1\r\nConnection: close\r\n\r\n"), 400,
     "INVALID_ARGUMENT"),
    ("two Host headers",
     _raw(f"GET {JOBS} HTTP/1.1\r\nHost: {{host}}\r\nHost: {{host}}\r\n\r\n"), 400,
     "INVALID_ARGUMENT"),
    ("a header line over 16 KiB",
     lambda e: request_bytes(e, "GET", JOBS, headers={"X-Long": "a" * 20_000}), 431,
     "INVALID_ARGUMENT"),
    ("a header name over 16 KiB",
     lambda e: request_bytes(e, "GET", JOBS, headers={"X" * 20_000: "1"}), 431, "INVALID_ARGUMENT"),
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
    ("two different Content-Lengths",
     _raw(f"POST {JOBS} HTTP/1.1\r\nHost: {{host}}\r\nContent-Type: application/json\r\n"
          "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{{}}"), 400, "INVALID_ARGUMENT"),
    ("Content-Length and chunked together (smuggling)",
     _raw(f"POST {JOBS} HTTP/1.1\r\nHost: {{host}}\r\nContent-Type: application/json\r\n"
          "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"), 400,
     "INVALID_ARGUMENT"),
    ("an unknown Transfer-Encoding",
     _raw(f"POST {JOBS} HTTP/1.1\r\nHost: {{host}}\r\nContent-Type: application/json\r\n"
          "Transfer-Encoding: rot13\r\n\r\n{{}}"), 400, "INVALID_ARGUMENT"),
    ("a bad chunk size",
     _raw(f"POST {JOBS} HTTP/1.1\r\nHost: {{host}}\r\nContent-Type: application/json\r\n"
          "Transfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"), 400, "INVALID_ARGUMENT"),
    ("a body over the 32 MiB limit announced",
     lambda e: request_bytes(e, "POST", JOBS, "{}", headers={"Content-Length": str(10**12)}), 413,
     "INVALID_ARGUMENT"),
    ("a Content-Length of 20 digits",
     lambda e: request_bytes(e, "POST", JOBS, "{}", headers={"Content-Length": "9" * 20}), 400,
     "INVALID_ARGUMENT"),
    ("a compressed body", lambda e: request_bytes(e, "POST", JOBS, "{}",
                                                  headers={"Content-Encoding": "gzip"}), 400,
     "INVALID_ARGUMENT"),
    ("TLS ClientHello bytes", lambda e: bytes.fromhex("16030100a5010000a10303") + b"\0" * 40, 400,
     "INVALID_ARGUMENT"),
    ("an HTTP/2 preface", lambda e: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "INVALID_ARGUMENT"),
    ("binary noise", lambda e: bytes(range(1, 255)) + b"\r\n\r\n", 501, "UNIMPLEMENTED"),
    ("a bad X-Server-Timeout",
     lambda e: request_bytes(e, "POST", "/v2/entries:tail", '{"resourceNames": ["projects/gcpjobs-test"]}',
                             headers={"X-Server-Timeout": "-5"}), 400, "INVALID_ARGUMENT"),
]


@pytest.mark.parametrize(("case", "build", "http_status", "status"), FRAMING_CASES,
                         ids=[case[0] for case in FRAMING_CASES])
def test_framing_errors_are_google_json(
    emulator: EmulatorProcess, case: str, build: Build, http_status: int, status: str
) -> None:
    reply = send_raw(emulator, build(emulator))
    if case == "HEAD":  # a HEAD answer has no body: the status says it
        assert reply.status == http_status and reply.headers["content-type"].startswith("application/json")
    else:
        assert_google_error(reply, http_status, status)
        assert "<html" not in reply.body.decode("utf-8", "replace").lower()
    assert_still_serving(emulator)


PATH_CASES = [
    ("/", 404, "NOT_FOUND"),
    ("/v1", 404, "NOT_FOUND"),
    ("/v1/projects/p", 404, "NOT_FOUND"),
    ("/v1/projects/gcpjobs-test/locations/us-central1/trainingPipelines", 404, "NOT_FOUND"),
    ("/v3/projects/gcpjobs-test/locations/us-central1/jobs", 404, "NOT_FOUND"),
    ("/favicon.ico", 404, "NOT_FOUND"),
    ("/index.html", 404, "NOT_FOUND"),
    ("/%00", 404, "NOT_FOUND"),
    ("/%ff%fe", 404, "NOT_FOUND"),
    ("/../../etc/passwd", 404, "NOT_FOUND"),
    ("/v1/projects/gcpjobs-test/locations/us-central1/customJobs/1/extra", 404, "NOT_FOUND"),
]


@pytest.mark.parametrize(("path", "http_status", "status"), PATH_CASES,
                         ids=[case[0] for case in PATH_CASES])
def test_unknown_paths_are_json_404(emulator: EmulatorProcess, path: str, http_status: int,
                                    status: str) -> None:
    assert_google_error(call(emulator, "GET", path), http_status, status)
    assert_still_serving(emulator)


def _nested(depth: int) -> str:
    return '{"displayName": "x", "labels": ' + "[" * depth + "]" * depth + "}"


BODY_CASES: list[tuple[str, str | bytes]] = [
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
    ("a UTF-16 body", '{"displayName": "x"}'.encode("utf-16")),
    ("trailing garbage", '{"displayName": "x"} extra'),
    ("NaN", '{"displayName": NaN}'),
    ("a 5,000-digit number", '{"displayName": ' + "9" * 5000 + "}"),
    ("nested 101 deep", _nested(101)),
    ("nested 50,000 deep", _nested(50_000)),
    ("objects nested 5,000 deep", '{"a": ' * 5000 + "1" + "}" * 5000),
    ("an enum name that does not exist",
     '{"jobSpec": {"workerPoolSpecs": [{"machineSpec": {"acceleratorType": "TPU_V99"}}]}}'),
    ("a duration that is not one", '{"jobSpec": {"scheduling": {"timeout": "forever"}}}'),
    ("a replica count too large for int64", '{"jobSpec": {"workerPoolSpecs": [{"replicaCount": "1e99"}]}}'),
]


@pytest.mark.parametrize(("case", "body"), BODY_CASES, ids=[case[0] for case in BODY_CASES])
def test_bad_bodies_are_invalid_argument(emulator: EmulatorProcess, case: str, body: str | bytes) -> None:
    reply = call(emulator, "POST", JOBS, body)
    assert_google_error(reply, 400, "INVALID_ARGUMENT")
    assert_still_serving(emulator)


def test_bad_bodies_on_cloud_run_and_logging_routes(emulator: EmulatorProcess) -> None:
    for path in (RUN_JOBS + "?jobId=x", "/v2/entries:list", "/v2/entries:tail"):
        for body in ("[", _nested(200), "[]"):
            assert_google_error(call(emulator, "POST", path, body), 400, "INVALID_ARGUMENT")
    assert_still_serving(emulator)


CONTENT_TYPE_CASES = [
    "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=b", "application/xml", "application/octet-stream",
    "application/jsonx", "",
]


@pytest.mark.parametrize("content_type", CONTENT_TYPE_CASES)
def test_bodies_that_are_not_json_typed_are_refused(emulator: EmulatorProcess, content_type: str) -> None:
    reply = call(emulator, "POST", JOBS, '{"displayName": "x"}', headers={"Content-Type": content_type})
    message = assert_google_error(reply, 400, "INVALID_ARGUMENT")
    assert "application/json" in message
    assert_still_serving(emulator)


def test_json_with_a_charset_is_taken(emulator: EmulatorProcess) -> None:
    reply = call(emulator, "POST", JOBS, '{"displayName": 7}',
                 headers={"Content-Type": "Application/JSON; charset=utf-8"})
    assert "Invalid JSON payload" in assert_google_error(reply, 400, "INVALID_ARGUMENT")


HOST_CASES = [
    ({"Host": "evil.example:{port}"}, "Host"),
    ({"Host": "evil.example"}, "Host"),
    ({"Host": "127.0.0.1:1"}, "Host"),
    ({"Host": "127.0.0.1:{port}@evil.example"}, "Host"),
    ({"Host": ""}, "Host"),
    ({"Host": "x" * 10_000}, "Host"),
    ({"Origin": "http://evil.example"}, "Origin"),
    ({"Origin": "https://127.0.0.1:{port}"}, "Origin"),
    ({"Origin": "http://127.0.0.1:{port}.evil.example"}, "Origin"),
    ({"Origin": "null"}, "Origin"),
    ({"Origin": ""}, "Origin"),
]


@pytest.mark.parametrize(("headers", "named"), HOST_CASES,
                         ids=[f"{next(iter(h))}={next(iter(h.values()))[:30]}" for h, _ in HOST_CASES])
def test_foreign_hosts_and_origins_are_refused(
    emulator: EmulatorProcess, headers: dict[str, str], named: str
) -> None:
    filled = {name: value.format(port=emulator.rest_port) for name, value in headers.items()}
    for method, path, body in (("GET", JOBS, None), ("POST", JOBS, {"displayName": "x"}),
                               ("POST", "/_emulator/reset", {})):
        reply = call(emulator, method, path, body, headers={**filled, **emulator.admin_headers})
        assert named in assert_google_error(reply, 403, "PERMISSION_DENIED")
    assert_still_serving(emulator)


# ---------------------------------------------------------------------------- admin bodies

VERTEX_JOB = "projects/gcpjobs-test/locations/us-central1/customJobs/1"
EXECUTION = "projects/gcpjobs-test/locations/us-central1/jobs/j/executions/e"
METHOD = "JobService.ListCustomJobs"

# (route, method, body as sent, fragment of the message)
ADMIN_CASES: list[tuple[str, str, Any, str]] = [
    ("config", "POST", {"queued_seconds": 1e308}, "one day"),
    ("config", "POST", {"pending_seconds": 86_401}, "one day"),
    ("config", "POST", {"cancel_grace_seconds": 1e20}, "one day"),
    ("config", "POST", {"queued_seconds": -1}, "queued_seconds"),
    ("config", "POST", {"queued_seconds": "1"}, "queued_seconds"),
    ("config", "POST", {"queued_seconds": True}, "queued_seconds"),
    ("config", "POST", {"cancel_grace_seconds": None}, "cancel_grace_seconds"),
    ("config", "POST", {"queued_seconds": [1]}, "queued_seconds"),
    ("config", "POST", {"speed": 2}, "unknown setting"),
    ("config", "POST", [], "JSON object"),
    ("config", "POST", "1e400", "JSON object"),
    ("faults", "POST", {"method": METHOD, "fault": "unavailable", "count": 10**9}, "at most"),
    ("faults", "POST", {"method": METHOD, "fault": "unavailable", "count": 10**30}, "at most"),
    ("faults", "POST", {"method": METHOD, "fault": "unavailable", "count": "5"}, "whole number"),
    ("faults", "POST", {"method": METHOD, "fault": "unavailable", "count": 1.5}, "whole number"),
    ("faults", "POST", {"method": METHOD, "fault": "unavailable", "count": True}, "whole number"),
    ("faults", "POST", {"method": METHOD, "fault": "unavailable", "count": -3}, "at least 1"),
    ("faults", "POST", {"method": METHOD, "fault": ["unavailable"]}, "fault"),
    ("faults", "POST", {"method": METHOD}, "fault"),
    ("faults", "POST", {"fault": "unavailable"}, "method"),
    ("faults", "POST", {"method": {"a": 1}, "fault": "unavailable"}, "method"),
    ("faults", "POST", {"method": "x" * 5000, "fault": "unavailable"}, "method"),
    ("faults", "POST", {"method": METHOD, "fault": "unavailable", "colour": "red"}, "unknown field"),
    ("faults", "POST", {"method": METHOD, "rates": [0.1]}, "mapping"),
    ("faults", "POST", {"method": METHOD, "rates": {"unavailable": 1e308}}, "probability"),
    ("faults", "POST", {"method": METHOD, "rates": {"unavailable": "0.1"}}, "probability"),
    ("faults", "POST", {"method": METHOD, "rates": {"unavailable": {"x": 1}}}, "probability"),
    ("faults", "POST", {"method": METHOD, "latency_seconds": 1e308}, "latency_seconds"),
    ("faults", "POST", {"method": METHOD, "latency_seconds": "1"}, "latency_seconds"),
    ("faults", "POST", {"method": METHOD, "rates": {}, "seed": 2**70}, "seed"),
    ("faults", "POST", {"method": METHOD, "rates": {}, "seed": [1]}, "seed"),
    ("faults", "POST", {"method": METHOD, "fault": "unavailable", "seed": 1}, "rule"),
    ("faults", "POST", {"method": METHOD, "fault": "unavailable", "rates": {}}, "not both"),
    ("faults", "POST", [{"method": METHOD}], "JSON object"),
    ("faults", "PUT", {}, "PUT"),
    ("advance", "POST", {}, "send"),
    ("advance", "POST", {"name": 7}, "send"),
    ("advance", "POST", {"name": ""}, "send"),
    ("advance", "POST", {"name": VERTEX_JOB, "force": True}, "unknown field"),
    ("advance", "POST", ["name"], "JSON object"),
    ("advance", "POST", {"name": "n" * 100_000}, "send"),
    ("crash", "POST", {"name": VERTEX_JOB, "task": 0}, "replica"),
    ("crash", "POST", {"name": EXECUTION, "replica": "workerpool0-0"}, "task"),
    ("crash", "POST", {"name": EXECUTION, "task": -1}, "task"),
    ("crash", "POST", {"name": EXECUTION, "task": 10**20}, "task"),
    ("crash", "POST", {"name": VERTEX_JOB, "replica": 3}, "replica"),
    ("crash", "POST", {"name": None}, "send"),
    ("preempt", "POST", {"name": VERTEX_JOB, "replica": "workerpool0-0"}, "unknown field"),
    ("preempt", "POST", "null", "JSON object"),
    ("secrets", "POST", {"name": "s"}, "send"),
    ("secrets", "POST", {"name": "s", "value": 1}, "send"),
    ("secrets", "POST", {"name": "s", "value": "v" * 70_000}, "65536"),
    ("secrets", "POST", {"name": "s", "value": "v", "version": 2}, "unknown field"),
    ("reset", "POST", {"everything": True}, "unknown field"),
    ("reset", "POST", [], "JSON object"),
    ("stats", "GET", [1], "takes no body"),
    ("config", "GET", {"queued_seconds": 1}, "takes no body"),
    ("faults", "DELETE", {"method": METHOD}, "takes no body"),
    ("config", "POST", "{", "not valid JSON"),
    ("config", "POST", "[" * 100_000 + "]" * 100_000, "nested deeper"),
    ("faults", "POST", '{"method": ' + "[" * 150 + "]" * 150 + "}", "nested deeper"),
    ("secrets", "POST", '{"name": "s", "value": ' + "1" * 6000 + "}", "not valid JSON"),
]


def _admin(emulator: EmulatorProcess, route: str, method: str, body: Any) -> RawReply:
    sent = body if isinstance(body, str) else json.dumps(body)
    return call(emulator, method, f"/_emulator/{route}", sent, headers=emulator.admin_headers)


@pytest.mark.parametrize(("route", "method", "body", "fragment"), ADMIN_CASES,
                         ids=[f"{c[0]}-{str(c[2])[:40]}" for c in ADMIN_CASES])
def test_bad_admin_bodies_are_one_line_errors(
    emulator: EmulatorProcess, route: str, method: str, body: Any, fragment: str
) -> None:
    before = emulator.admin("GET", "/_emulator/config")
    reply = _admin(emulator, route, method, body)
    http_status = 405 if method == "PUT" else 400
    message = assert_google_error(reply, http_status)
    assert fragment in message, message
    assert len(message) < 600, message
    assert emulator.admin("GET", "/_emulator/config") == before  # nothing changed
    assert emulator.faults()["rules"] == {} or route != "faults"
    assert_still_serving(emulator)


def test_a_timing_at_the_bound_is_taken_and_jobs_still_run(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    """`queued_seconds: 1e308` used to be taken, and the next job failed INTERNAL."""
    server = emulator_factory()
    assert server.configure(queued_seconds=86_400)["queued_seconds"] == 86_400
    server.configure(queued_seconds=0)
    reply = call(server, "POST", JOBS, {"displayName": "after", "jobSpec": {"workerPoolSpecs": [{
        "replicaCount": "1", "machineSpec": {"machineType": "n1-standard-4"},
        "containerSpec": {"imageUri": "img", "command": ["true"]}}]}})
    assert reply.status == 200, reply.body
