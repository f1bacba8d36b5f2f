"""REST transport: the documented `/v1/...` (Vertex) and `/v2/...` (Cloud Run, Logging) paths
with proto3 JSON, plus the admin routes, behind a hardened HTTP front. Cloud Run's Admin API v1
(`/apis/run.googleapis.com/v1/namespaces/...`, what gcloud speaks) is `cloudrun/v1.py`, over the
same v2 methods. A request in absolute form (`GET http://us-central1-127.0.0.1:8471/apis/...`,
what a client sends to its HTTP proxy: gcloud, set up by `gcpjobs emulator env --gcloud`)
reaches the handler with that URL as its raw path: it is served for the emulator's own hosts
and refused (403) for any other, like CONNECT; the emulator forwards nothing.

Requests are parsed with `google.protobuf.json_format` (camelCase or snake_case field names,
enums as names or numbers); responses are proto3 JSON, with numeric enums when the client asks
for them (`$alt=json;enum-encoding=int`, as the GAPIC REST transport does). Errors are Google
JSON errors with the HTTP status google-api-core maps back to the same exception classes.

The HTTP front is aiohttp's server protocol (its llhttp parser) on one asyncio event loop in a
thread of its own, not the standard library's `http.server`. The standard library server had a
listen backlog of 5 (39 of 200 simultaneous GETs went unanswered for 60 s), one unbounded thread
per connection held for the connection's whole life (an idle keep-alive connection, a request
that never finishes, TLS bytes or `Content-Length: -1` each held one for ever), no timeouts,
and HTML for its own errors; fixing all of that means writing an event-driven server. aiohttp's is one: well kept,
its parser (llhttp, Node's) fuzzed for years, already in the environment (google-auth's async
transport imports it, gcsfs needs it; a core dependency now), and it adds about 20 ms to the
emulator's start-up (this module imports in ~15 ms instead of ~8). So:

- the listen backlog is 1,024, and connections cost no thread: thousands may be open;
- a connection that has not sent a whole request head within `timeout_seconds` of opening (or of
  its last answer) is closed, and so is a body that takes longer; idle keep-alive connections too;
- requests run on a bounded pool of `WORKERS` threads (the services block: SQLite, files);
  a stream (TailLogEntries) runs on a thread of its own while it is open (the Logging service
  caps open tails at 100), so streams never take a worker from unary calls;
- limits (front.py): a body over 32 MiB is refused (413) before it is read, a request line over
  64 KiB (414), a header over 16 KiB or more than 100 of them (431), JSON nested deeper than 100
  (400); every error, the parser's own included, is a Google JSON error, never HTML;
- before anything runs, `front.FrontDoor` refuses a foreign `Host` or `Origin` (403), the admin
  routes want the admin token (401), and a body must be `application/json` (400).

Streaming methods (TailLogEntries at `POST /v2/entries:tail`) answer as Google's HTTP/JSON
mapping does: 200, then one JSON array sent incrementally (`[{...},{...}]`, what
`google.api_core.rest_streaming.ResponseIterator` parses), one HTTP/1.1 chunk per response, so a
client sees each as soon as it is written (to an HTTP/1.0 client: unchunked, the connection
closed at the end). A request the service refuses (bad JSON, a bad filter,
no resource names, an injected fault) gets the usual Google JSON error instead: the service's
first step runs before anything is sent. The stream ends:

- when the client goes away: the connection is checked between polls (a closed or reset socket
  is seen by the event loop at once), and a failed write ends it too; the stream's thread then
  returns, so no thread outlives its client;
- at the request's own deadline, the `X-Server-Timeout` header (seconds, Google's system
  parameter): the array is closed (`]`) and the chunked body ended, a normal end of stream for
  the client (not an error: a tail has no natural end, the client chose how long to listen);
- when the emulator stops (the array is closed, then the connection).

A failure after the first byte can no longer change the status: it is sent as a last
`{"error": {...}}` element, as Google's front end does, and the array closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import grpc
from aiohttp import http_exceptions, web_protocol, web_request, web_response, web_server
from aiohttp.http import HttpVersion10, HttpVersion11
from google.protobuf import any_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message as ProtobufMessage

from gcpjobs.emulator.cloudrun import v1
from gcpjobs.emulator.dispatch import Dispatcher, Method
from gcpjobs.emulator.errors import ServiceError, http_status_for, internal_message
from gcpjobs.emulator.transports import front
from gcpjobs.emulator.transports.admin import Admin, AdminReply

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

_LOCATION = r"projects/[^/]+/locations/[^/]+"


@dataclass(frozen=True)
class _Route:
    http_method: str
    pattern: re.Pattern[str]
    method_key: str
    path_field: str  # the request field the captured path fills ("parent", "name", "job.name"; "": none)
    body_field: str | None = None  # the field the JSON body fills; "*": the whole request; None: no body


def _route(http_method: str, path: str, method_key: str, path_field: str,
           body_field: str | None = None) -> _Route:
    """`path`: a regular expression for the whole URL path, its captured group the resource
    name the route fills in."""
    return _Route(http_method, re.compile(f"^{path}$"), method_key, path_field, body_field)


# The resource names routes capture, each written once.
_CUSTOM_JOB = rf"{_LOCATION}/customJobs/[^/:]+"
_JOB = rf"{_LOCATION}/jobs/[^/:]+"
_EXECUTION = rf"{_JOB}/executions/[^/:]+"
_TASK = rf"{_EXECUTION}/tasks/[^/:]+"
_OPERATION = rf"{_LOCATION}/operations/[^/:]+"
_SECRETS_PARENT = r"projects/[^/]+"
_SECRET = rf"{_SECRETS_PARENT}/secrets/[^/:]+"
_SECRET_VERSION = rf"{_SECRET}/versions/[^/:]+"

_SECRET_MANAGER_ROUTES = (
    _route("POST", rf"/v1/({_SECRETS_PARENT})/secrets", "SecretManagerService.CreateSecret",
           "parent", "secret"),
    _route("GET", rf"/v1/({_SECRETS_PARENT})/secrets", "SecretManagerService.ListSecrets", "parent"),
    _route("GET", rf"/v1/({_SECRET})", "SecretManagerService.GetSecret", "name"),
    _route("DELETE", rf"/v1/({_SECRET})", "SecretManagerService.DeleteSecret", "name"),
    _route("POST", rf"/v1/({_SECRET}):addVersion", "SecretManagerService.AddSecretVersion",
           "parent", "*"),
    _route("GET", rf"/v1/({_SECRET_VERSION}):access", "SecretManagerService.AccessSecretVersion",
           "name"),
)

_ROUTES = (
    _route("POST", rf"/v1/({_LOCATION})/customJobs", "JobService.CreateCustomJob", "parent",
           "custom_job"),
    _route("GET", rf"/v1/({_LOCATION})/customJobs", "JobService.ListCustomJobs", "parent"),
    _route("GET", rf"/v1/({_CUSTOM_JOB})", "JobService.GetCustomJob", "name"),
    _route("DELETE", rf"/v1/({_CUSTOM_JOB})", "JobService.DeleteCustomJob", "name"),
    _route("POST", rf"/v1/({_CUSTOM_JOB}):cancel", "JobService.CancelCustomJob", "name"),
    # The GAPIC operations client tries the /ui/ binding first, then /v1/.
    _route("GET", rf"/(?:v1|ui)/({_OPERATION})", "Operations.GetOperation", "name"),
    _route("GET", rf"/(?:v1|ui)/({_LOCATION})/operations", "Operations.ListOperations", "name"),
    # Cloud Run Admin API v2 (the GAPIC rest_base files of google-cloud-run).
    _route("POST", rf"/v2/({_LOCATION})/jobs", "Jobs.CreateJob", "parent", "job"),
    _route("GET", rf"/v2/({_LOCATION})/jobs", "Jobs.ListJobs", "parent"),
    _route("GET", rf"/v2/({_JOB})", "Jobs.GetJob", "name"),
    _route("PATCH", rf"/v2/({_JOB})", "Jobs.UpdateJob", "job.name", "job"),
    _route("DELETE", rf"/v2/({_JOB})", "Jobs.DeleteJob", "name"),
    _route("POST", rf"/v2/({_JOB}):run", "Jobs.RunJob", "name", "*"),
    _route("GET", rf"/v2/({_JOB})/executions", "Executions.ListExecutions", "parent"),
    _route("GET", rf"/v2/({_EXECUTION})", "Executions.GetExecution", "name"),
    _route("DELETE", rf"/v2/({_EXECUTION})", "Executions.DeleteExecution", "name"),
    _route("POST", rf"/v2/({_EXECUTION}):cancel", "Executions.CancelExecution", "name", "*"),
    _route("GET", rf"/v2/({_EXECUTION})/tasks", "Tasks.ListTasks", "parent"),
    _route("GET", rf"/v2/({_TASK})", "Tasks.GetTask", "name"),
    _route("GET", rf"/v2/({_OPERATION})", "Operations.GetOperation", "name"),
    _route("DELETE", rf"/v2/({_OPERATION})", "Operations.DeleteOperation", "name"),
    _route("GET", rf"/v2/({_LOCATION})/operations", "Operations.ListOperations", "name"),
    _route("POST", rf"/v2/({_OPERATION}):wait", "Operations.WaitOperation", "name", "*"),
    # Cloud Logging v2 (the JSON API google-cloud-logging's HTTP client speaks). Tail is a
    # stream of TailLogEntriesResponse for one TailLogEntriesRequest body (the REST reference's
    # entries.tail); see the module notes for how it is sent and when it ends.
    _route("POST", r"/v2/entries:list", "LoggingServiceV2.ListLogEntries", "", "*"),
    _route("POST", r"/v2/entries:tail", "LoggingServiceV2.TailLogEntries", "", "*"),
    # Secret Manager v1 (the GAPIC rest_base of google-cloud-secret-manager).
    *_SECRET_MANAGER_ROUTES,
)
# Google's system parameter for a server-side deadline, in seconds.
_DEADLINE_HEADER = "X-Server-Timeout"
# Threads that run unary requests and admin calls (a stream has its own thread).
WORKERS = 64


def google_error(code: grpc.StatusCode, message: str,
                 http_status: int | None = None) -> tuple[int, dict[str, Any]]:
    """A Google JSON error; its HTTP status is the code's unless `http_status` says otherwise
    (413, 431: what the HTTP front refuses has statuses of its own)."""
    status = http_status if http_status is not None else http_status_for(code)
    return status, {"error": {"code": status, "message": message, "status": code.name}}


def _pb(message: Any) -> ProtobufMessage:
    if isinstance(message, ProtobufMessage):
        return message
    pb: ProtobufMessage = type(message).pb(message)
    return pb


# Fields the real Cloud Run v2 service writes even at their default values, by message type.
# Proto3 JSON leaves a default out, but clients index these: prefect-gcp's cloud-run-v2 worker
# reads `latestCreatedExecution` of a job that has never run, and an execution's
# `parallelism`, with `response[...]` (a KeyError where they are missing). The real service
# sets them (an empty ExecutionReference is `{}`), so every Job, Execution and Task has them,
# wherever it appears: on its own, in a list, in an operation's metadata or response.
_ALWAYS_PRESENT: dict[str, dict[str, Any]] = {
    "google.cloud.run.v2.Job": {
        "executionCount": 0, "latestCreatedExecution": {}, "reconciling": False,
        "satisfiesPzs": False,
    },
    "google.cloud.run.v2.Execution": {
        "parallelism": 0, "taskCount": 0, "reconciling": False, "runningCount": 0,
        "succeededCount": 0, "failedCount": 0, "cancelledCount": 0, "retriedCount": 0,
        "satisfiesPzs": False,
    },
    "google.cloud.run.v2.Task": {
        "index": 0, "retried": 0, "maxRetries": 0, "reconciling": False, "satisfiesPzs": False,
    },
}
# Only messages of these packages are walked (Vertex, Logging and Secret Manager JSON is as
# json_format writes it).
_PRESENCE_PACKAGES = ("google.cloud.run.v2.", "google.longrunning.")


def _fill_always_present(message: ProtobufMessage, document: dict[str, Any]) -> None:
    """Add `_ALWAYS_PRESENT` fields missing from `document` (the JSON of `message`), in it and
    in every message it holds."""
    name = message.DESCRIPTOR.full_name
    if not name.startswith(_PRESENCE_PACKAGES):
        return
    for key, value in _ALWAYS_PRESENT.get(name, {}).items():
        document.setdefault(key, json.loads(json.dumps(value)))  # a fresh copy
    for field, value in message.ListFields():
        child = document.get(field.json_name)
        if field.message_type is None or child is None or field.message_type.GetOptions().map_entry:
            continue
        pairs = zip(value, child, strict=True) if field.is_repeated else [(value, child)]
        for item, item_document in pairs:
            if isinstance(item, any_pb2.Any):
                item = _unpacked(item)
                if item is None:
                    continue
            if isinstance(item_document, dict):
                _fill_always_present(item, item_document)


def _unpacked(packed: any_pb2.Any) -> ProtobufMessage | None:
    """The message inside an Any (json_format writes its fields beside "@type")."""
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(packed.TypeName())
    except KeyError:
        return None
    message: ProtobufMessage = message_factory.GetMessageClass(descriptor)()
    return message if packed.Unpack(message) else None


def _to_json(message: ProtobufMessage, numeric_enums: bool) -> str:
    document = json_format.MessageToDict(message, use_integers_for_enums=numeric_enums)
    _fill_always_present(message, document)
    return json.dumps(document)


def _new_request(method: Method) -> tuple[Any, ProtobufMessage]:
    """An empty request of the method's type, and the protobuf message to parse into."""
    if isinstance(method.request_type, type) and issubclass(method.request_type, ProtobufMessage):
        request = method.request_type()
        return request, request
    request = method.request_type()
    return request, method.request_type.pb(request)


def _bad_payload(error: Exception) -> ServiceError:
    # protobuf's parse errors run over several lines (the available fields); an error is one.
    reason = " ".join(str(error).split())
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid JSON payload received. {reason}")


_QUERY_BOOLS = {"true": True, "false": False}
# Google's system parameters (https://cloud.google.com/apis/docs/system-parameters) that the
# JSON-API clients send (google-cloud-logging's HTTP client: prettyPrint=false); not fields.
_SYSTEM_PARAMETERS = frozenset({"alt", "prettyPrint", "fields", "key", "quotaUser", "callback",
                                "access_token", "upload_protocol", "uploadType"})


def _query_value(pb: ProtobufMessage, key: str, value: str) -> Any:
    """A query parameter as JSON would carry it: the GAPIC REST transport sends booleans
    (`validateOnly=true`) as text, which proto3 JSON parsing refuses for a bool field."""
    descriptor = pb.DESCRIPTOR
    field = descriptor.fields_by_camelcase_name.get(key) or descriptor.fields_by_name.get(key)
    if field is not None and field.type == FieldDescriptor.TYPE_BOOL:
        return _QUERY_BOOLS.get(value.lower(), value)
    return value


def build_request(method: Method, route: _Route, captured: str, query: str, body: bytes) -> Any:
    request, pb = _new_request(method)
    parameters = parse_qs(query, keep_blank_values=True)
    for key in ("alt", "$alt"):
        # Google's front end serves alt=json, proto and media; the emulator JSON only (with
        # its `;enum-encoding=int` option), and never answers another format in JSON.
        for value in parameters.get(key, []):
            if value.split(";", 1)[0].strip().lower() != "json":
                raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"Invalid value for system parameter {key!r}: {value[:40]!r}; "
                                   "this server answers only alt=json")
    fields: dict[str, Any] = {
        key: _query_value(pb, key, values[-1])
        for key, values in parameters.items()
        if not key.startswith("$") and key not in _SYSTEM_PARAMETERS  # such as $alt
    }
    try:
        json_format.ParseDict(fields, pb, ignore_unknown_fields=False)
    except (json_format.ParseError, ValueError, TypeError) as error:
        raise _bad_payload(error) from None
    if route.body_field is not None:
        try:
            document = front.load_json(body or b"{}")
        except front.JsonBodyError as error:
            raise _bad_payload(error) from None
        if not isinstance(document, dict):
            raise _bad_payload(ValueError("the body must be a JSON object"))
        target = pb if route.body_field == "*" else getattr(pb, route.body_field)
        try:
            json_format.ParseDict(document, target)
        except (json_format.ParseError, ValueError, TypeError, RecursionError) as error:
            raise _bad_payload(error) from None
    # The path wins over the same field in the body, as in Google's HTTP transcoding.
    if not route.path_field:
        return request
    *parents, leaf = route.path_field.split(".")
    holder = pb
    for field_name in parents:
        holder = getattr(holder, field_name)
    setattr(holder, leaf, captured)
    return request


def _deadline(header: str | None) -> float | None:
    """The `time.monotonic()` by which a stream must end, from `X-Server-Timeout`; None: none."""
    if header is None:
        return None
    try:
        seconds = float(header)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"Invalid {_DEADLINE_HEADER} header {header[:40]!r}: give a positive "
                           "number of seconds")
    return time.monotonic() + seconds


# ------------------------------------------------------------------------------ errors


def _error_bytes(code: grpc.StatusCode, message: str) -> tuple[int, bytes]:
    status, payload = google_error(code, message)
    return status, json.dumps(payload).encode()


def _json_response(status: int, data: bytes, *, close: bool = False,
                   content_type: str = "application/json") -> web_response.Response:
    response = web_response.Response(status=status, body=data, content_type=content_type,
                                     charset="UTF-8")
    if close:
        # Refused before its body was read: the rest of the stream is not worth reading.
        response.force_close()
    return response


def _error_response(code: grpc.StatusCode, message: str, *, close: bool = False,
                    http_status: int | None = None) -> web_response.Response:
    status, payload = google_error(code, message, http_status)
    return _json_response(status, json.dumps(payload).encode(), close=close)


def _parser_error(status: int, error: BaseException | None) -> tuple[int, grpc.StatusCode, str]:
    """The HTTP parser's refusals as Google's front end would put them (our own words: the
    parser's messages quote the raw request, which may hold a token)."""
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(error, http_exceptions.LineTooLong):
        limit = error.args[1] if len(error.args) > 1 else None
        if limit == front.MAX_URL_BYTES:
            return 414, invalid, f"The request URL is longer than the limit of {front.MAX_URL_BYTES} bytes"
        return 431, invalid, f"A request header is longer than the limit of {front.MAX_HEADER_BYTES} bytes"
    message = str(getattr(error, "message", "") or "")
    if "Too many headers" in message:
        return 431, invalid, f"The request has more than {front.MAX_HEADERS} headers"
    if isinstance(error, http_exceptions.BadHttpMethod):
        if "HTTPS" in message:
            return 400, invalid, ("Received TLS (https) on the emulator's plain HTTP port: "
                                  "use an http:// endpoint")
        return 501, grpc.StatusCode.UNIMPLEMENTED, "Unknown HTTP method in the request line"
    if isinstance(error, http_exceptions.BadStatusLine):
        if "Invalid HTTP version" in message:
            return 505, invalid, "HTTP version not supported: send HTTP/1.1"
        return 400, invalid, "Invalid HTTP request line"
    if isinstance(error, http_exceptions.InvalidHeader):
        return 400, invalid, "Invalid character in a request header"
    if isinstance(error, http_exceptions.InvalidURLError):
        return 400, invalid, "Invalid character in the request URL"
    if isinstance(error, http_exceptions.BadHttpMessage):
        # llhttp's reason is a fixed phrase on the first line; the raw bytes follow it.
        reason = message.split("\n", 1)[0].strip().rstrip(":.") or "malformed request"
        if "PRI" in reason:
            return 505, invalid, ("HTTP/2 is not served on the REST port: send HTTP/1.1 (gRPC "
                                  "has a port of its own)")
        if "Host" in reason:
            reason = "HTTP/1.1 requests need a Host header"
        return 400, invalid, f"Invalid HTTP request: {reason[:120]}"
    if status == 504:
        return 504, grpc.StatusCode.DEADLINE_EXCEEDED, "The request took too long"
    return 500, grpc.StatusCode.INTERNAL, "Internal error in the gcpjobs emulator's HTTP front"


class _Protocol(web_protocol.RequestHandler):
    """aiohttp's HTTP/1.1 connection protocol, with every error it answers itself (a bad request
    line, a header too long, TLS bytes) as a Google JSON error instead of text or HTML, and
    nothing logged about it (the request may carry a token)."""

    def handle_error(self, request: web_request.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web_response.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already being sent")
        if status >= 500 and exc is not None:
            _log.error("REST request failed: %s", type(exc).__name__)
        http_status, code, text = _parser_error(status, exc)
        return _error_response(code, text, close=True, http_status=http_status)


class _Server(web_server.Server):
    """aiohttp's low-level server, building connections with `_Protocol`."""

    def __call__(self) -> web_protocol.RequestHandler:
        return _Protocol(self, loop=self._loop, **self._kwargs)


# ------------------------------------------------------------------------------ streams


_END = object()  # a stream's service iterator is exhausted


@dataclass
class _Stream:
    """A streaming method's responses, the first already taken from the service (so that a
    refusal is answered as a plain error), and when the stream must end. Every step runs on the
    stream's own thread."""

    first: bytes | object | None  # serialized response, None (nothing yet) or _END
    source: Iterator[Any]  # the service's own iterator: closed when the stream ends
    deadline: float | None
    numeric_enums: bool

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def step(self) -> bytes | object | None:
        return _serialize(next(self.source, _END), self.numeric_enums)

    def close(self) -> None:
        close = getattr(self.source, "close", None)
        if close is not None:
            close()


def _serialize(response: Any, numeric_enums: bool) -> bytes | object | None:
    if response is None or response is _END:
        sentinel: object | None = response
        return sentinel
    text: str = json_format.MessageToJson(_pb(response), use_integers_for_enums=numeric_enums,
                                          indent=None)
    return text.encode()


def _client_gone(request: web_request.BaseRequest) -> bool:
    """Whether the client closed or reset the connection (the event loop sees either at once)."""
    transport = request.transport
    return transport is None or transport.is_closing()


# ------------------------------------------------------------------------------ the server


def _route_for(http_method: str, path: str) -> tuple[_Route, str]:
    """The route and the path's captured part; ServiceError (NOT_FOUND, UNIMPLEMENTED) if none."""
    known_path = False
    for route in _ROUTES:
        match = route.pattern.match(path)
        if match is None:
            continue
        known_path = True
        if route.http_method == http_method:
            return route, match.group(1) if match.groups() else ""
    if known_path:
        raise ServiceError(grpc.StatusCode.UNIMPLEMENTED,
                           f"Method {http_method} is not supported for {path[:200]}.")
    raise ServiceError(grpc.StatusCode.NOT_FOUND, f"The requested URL {path[:200]} was not found.")


def _shown_target(scheme: str, netloc: str) -> str:
    """The target of an absolute-form request in a message: quoted, short."""
    target = f"{scheme}://{netloc}" if scheme else netloc
    return json.dumps(target[:80] + ("..." if len(target) > 80 else ""))


class _BodyRefused(Exception):
    def __init__(self, response: web_response.Response) -> None:
        super().__init__()
        self.response = response


class RestServer:
    """The REST front: an asyncio loop on a thread of its own, services on `WORKERS` threads."""

    def __init__(self, dispatcher: Dispatcher, admin: Admin, *, admin_token: str,
                 timeout_seconds: float) -> None:
        self.dispatcher = dispatcher
        self.admin = admin
        self.timeout_seconds = timeout_seconds
        self._admin_token = admin_token
        self.front: front.FrontDoor | None = None
        self.v1 = v1.CloudRunV1(
            lambda key, request: dispatcher.call(dispatcher.methods[key], request),
            admin.cloud_run.locations)
        self._workers = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="rest")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._web: _Server | None = None
        self.port = 0

    # ------------------------------------------------------------------------ start / stop

    def start(self, host: str, port: int) -> int:
        """Bind (port 0 picks one; OSError if it cannot) and serve; returns the port."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            # A restarted emulator gets its port back at once (TIME_WAIT), but no other
            # process may share a port in use: no SO_REUSEPORT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host.strip("[]"), port))
        except OSError:
            sock.close()
            raise
        self.port = int(sock.getsockname()[1])
        self.front = front.FrontDoor(host, self.port, self._admin_token)
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._listen(sock))
        except BaseException:
            sock.close()
            loop.close()
            raise
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="rest", daemon=True)
        self._thread.start()
        return self.port

    async def _listen(self, sock: socket.socket) -> None:
        self._web = _Server(
            self._handle,
            keepalive_timeout=self.timeout_seconds,
            access_log=None,
            max_line_size=front.MAX_URL_BYTES,
            max_field_size=front.MAX_HEADER_BYTES,
            max_headers=front.MAX_HEADERS,
            auto_decompress=False,  # a compressed body could be a bomb; it is refused instead
            lingering_time=1.0,
        )
        # The kernel queues this many connections not yet accepted (the stdlib's was 5).
        self._listener = await asyncio.get_running_loop().create_server(
            self._web, sock=sock, backlog=1024)

    def stop(self) -> None:
        """Stop listening, close every connection, end the loop and the workers."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = None
        future = asyncio.run_coroutine_threadsafe(self._close(), loop)
        with contextlib.suppress(Exception):
            future.result(timeout=5.0)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5.0)
        if not thread.is_alive():
            loop.close()
        self._workers.shutdown(wait=False, cancel_futures=True)

    async def _close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        if self._web is not None:
            await self._web.shutdown(timeout=1.0)

    # ------------------------------------------------------------------------ requests

    async def _handle(self, request: web_request.BaseRequest) -> web_response.StreamResponse:
        try:
            return await self._answer(request)
        except _BodyRefused as refused:
            return refused.response
        except Exception as error:  # a bug must still answer, and be visible in the log
            _log.exception("REST %s failed", request.method)
            return _error_response(grpc.StatusCode.INTERNAL,
                                   internal_message(error), close=True)

    async def _run(self, function: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._workers, functools.partial(function, *args))

    async def _answer(self, request: web_request.BaseRequest) -> web_response.StreamResponse:
        assert self.front is not None
        if request.version not in (HttpVersion10, HttpVersion11):
            return _error_response(grpc.StatusCode.INVALID_ARGUMENT, "HTTP version not supported: "
                                   "send HTTP/1.1", close=True, http_status=505)
        headers = request.headers
        refusal = self.front.refusal(headers)
        if refusal is None:
            refusal = self._proxy_refusal(request)
        if refusal is not None:
            return _error_response(grpc.StatusCode.PERMISSION_DENIED, refusal, close=True)
        http_method = request.method
        url = urlsplit(request.raw_path)
        path = unquote(url.path)
        # An absolute-form request names its host in the request line, which wins over Host
        # (RFC 9112 3.2.2); both have been checked.
        host = url.netloc or headers.get("Host")
        admin = path == "/_emulator" or path.startswith("/_emulator/")
        web_access = http_method == "GET" and path.startswith("/_emulator/web-access/")
        if admin and not web_access and not self.front.admin_allowed(headers):
            response = _error_response(
                grpc.StatusCode.UNAUTHENTICATED,
                "The /_emulator/ routes need the emulator's admin token: send "
                "'Authorization: Bearer TOKEN' with the token in DATA_DIR/admin-token",
                close=True)
            response.headers["WWW-Authenticate"] = 'Bearer realm="gcpjobs emulator"'
            return response
        body = await self._read_body(request)
        if admin:
            status, data, content_type = await self._run(self._admin_reply, http_method, path, body)
            return _json_response(status, data, content_type=content_type)
        if path.startswith(v1.PREFIX):
            status, data = await self._run(self._v1_reply, http_method, path, url.query, body,
                                           self.front.region_of(host))
            return _json_response(status, data)
        try:
            route, captured = _route_for(http_method, path)
        except ServiceError as error:
            return _json_response(*_error_bytes(error.code, error.message))
        method = self.dispatcher.methods[route.method_key]
        numeric_enums = "enum-encoding=int" in unquote(url.query)
        if method.streaming:
            return await self._stream(request, method, route, captured, url.query, body, numeric_enums)
        status, data = await self._run(self._unary, method, route, captured, url.query, body,
                                       numeric_enums)
        return _json_response(status, data)

    def _proxy_refusal(self, request: web_request.BaseRequest) -> str | None:
        """Why a request meant for a proxy is refused (403), or None.

        gcloud derives regional hosts (`us-central1-127.0.0.1:8471`) that no resolver knows, so
        `gcpjobs emulator env --gcloud` makes the emulator gcloud's HTTP proxy: gcloud then sends
        absolute-form requests (`GET http://us-central1-127.0.0.1:8471/apis/... HTTP/1.1`). Those
        are served for the emulator's own hosts only; the emulator forwards nothing, anywhere.
        """
        assert self.front is not None
        if request.method == "CONNECT":
            return ("CONNECT is refused: the gcpjobs emulator is not a proxy; it serves plain "
                    "http:// requests for its own address only")
        url = urlsplit(request.raw_path)
        if not url.scheme and not url.netloc:
            return None
        if url.scheme.lower() == "http" and self.front.accepts_host(url.netloc):
            return None
        return (f"{_shown_target(url.scheme, url.netloc)} is not this emulator "
                f"({self.front.own}): the gcpjobs emulator is not a proxy; it answers only "
                "requests for its own address")

    async def _read_body(self, request: web_request.BaseRequest) -> bytes:
        """The whole body, or _BodyRefused: not JSON, compressed, over MAX_BODY_BYTES, or not
        all there within the timeout."""
        has_body = request.body_exists
        refusal = front.body_refusal(request.method, request.headers, has_body)
        if refusal is None and request.headers.get("Content-Encoding", "identity").lower() != "identity":
            refusal = "Invalid request: compressed request bodies are not taken; send plain JSON"
        if refusal is not None:
            raise _BodyRefused(_error_response(grpc.StatusCode.INVALID_ARGUMENT, refusal, close=True))
        if not has_body:
            return b""
        length = request.content_length
        if length is not None and length > front.MAX_BODY_BYTES:
            raise _BodyRefused(self._too_large(length))
        if request.headers.get("Expect", "").lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        chunks: list[bytes] = []
        size = 0

        async def read_all() -> None:
            nonlocal size
            while chunk := await request.content.read(1 << 16):
                size += len(chunk)
                if size > front.MAX_BODY_BYTES:
                    raise _BodyRefused(self._too_large(None))
                chunks.append(chunk)

        try:
            await asyncio.wait_for(read_all(), self.timeout_seconds)
        except asyncio.TimeoutError:
            raise _BodyRefused(_error_response(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"The request body did not arrive within {self.timeout_seconds:g} s",
                close=True, http_status=408)) from None
        except (http_exceptions.HttpProcessingError, web_protocol.RequestPayloadError) as error:
            raise _BodyRefused(_error_response(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Invalid request body framing ({type(error).__name__})", close=True)) from None
        return b"".join(chunks)

    @staticmethod
    def _too_large(length: int | None) -> web_response.Response:
        size = f"of {length} bytes " if length is not None else ""
        return _error_response(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Request body {size}is larger than the limit of {front.MAX_BODY_BYTES} bytes",
            close=True, http_status=413)

    # ------------------------------------------------------------------ on worker threads

    def _admin_reply(self, http_method: str, path: str, body: bytes) -> tuple[int, bytes, str]:
        try:
            reply: AdminReply = self.admin.handle(http_method, path, body)
        except Exception as error:  # a bug must still answer, and be visible in the log
            _log.exception("admin %s %s failed", http_method, path[:200])
            return (*_error_bytes(grpc.StatusCode.INTERNAL,
                                  internal_message(error)),
                    "application/json")
        if isinstance(reply.body, str):
            return reply.status, reply.body.encode(), "text/plain"
        return reply.status, json.dumps(reply.body).encode(), "application/json"

    def _unary(self, method: Method, route: _Route, captured: str, query: str, body: bytes,
               numeric_enums: bool) -> tuple[int, bytes]:
        try:
            request = build_request(method, route, captured, query, body)
            message = _pb(self.dispatcher.call(method, request))
            return 200, _to_json(message, numeric_enums).encode()
        except ServiceError as error:
            return _error_bytes(error.code, error.message)
        except Exception as error:  # a bug must still answer, and be visible in the log
            _log.exception("%s %s failed", route.http_method, captured[:200])
            return _error_bytes(grpc.StatusCode.INTERNAL,
                                internal_message(error))

    def _v1_reply(self, http_method: str, path: str, query: str, body: bytes,
                  region: str | None) -> tuple[int, bytes]:
        """A Cloud Run Admin API v1 request (cloudrun/v1.py), errors as Google's v1 endpoints
        write them."""
        try:
            try:
                document = front.load_json(body) if body.strip() else None
            except front.JsonBodyError as error:
                raise _bad_payload(error) from None
            reply = self.v1.handle(http_method, path, query, document, region)
            return reply.status, json.dumps(reply.body).encode()
        except ServiceError as error:
            return _error_bytes(error.code, error.message)
        except Exception as error:  # a bug must still answer, and be visible in the log
            _log.exception("v1 %s %s failed", http_method, path[:200])
            return _error_bytes(grpc.StatusCode.INTERNAL,
                                internal_message(error))

    def _open_stream(self, method: Method, route: _Route, captured: str, query: str, body: bytes,
                     deadline_header: str | None, numeric_enums: bool) -> _Stream:
        """Start a streaming method (a stream of one request, as over gRPC) and take its first
        step, where the service checks the request: ServiceError here is still a plain error."""
        deadline = _deadline(deadline_header)
        request = build_request(method, route, captured, query, body)
        source = iter(self.dispatcher.call(method, iter([request])))
        stream = _Stream(None, source, deadline, numeric_enums)
        try:
            stream.first = stream.step()
        except BaseException:
            stream.close()
            raise
        return stream

    # ------------------------------------------------------------------------ streaming

    async def _stream(self, request: web_request.BaseRequest, method: Method, route: _Route,
                      captured: str, query: str, body: bytes,
                      numeric_enums: bool) -> web_response.StreamResponse:
        loop = asyncio.get_running_loop()
        # One thread for the stream's life: the service's iterator is a generator that blocks
        # between polls, and it is stepped and closed on the thread that runs it.
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rest-stream")
        stream: _Stream | None = None
        try:
            try:
                stream = await loop.run_in_executor(
                    thread, self._open_stream, method, route, captured, query, body,
                    request.headers.get(_DEADLINE_HEADER), numeric_enums)
            except ServiceError as error:
                return _json_response(*_error_bytes(error.code, error.message))
            return await self._send_stream(request, stream, thread)
        finally:
            if stream is not None:
                with contextlib.suppress(Exception):
                    await loop.run_in_executor(thread, stream.close)
            thread.shutdown(wait=False)

    async def _send_stream(self, request: web_request.BaseRequest, stream: _Stream,
                           thread: ThreadPoolExecutor) -> web_response.StreamResponse:
        """200 and the responses as one chunked JSON array, until the client goes away, the
        deadline passes or the service ends the stream (the module notes say more)."""
        loop = asyncio.get_running_loop()
        response = web_response.StreamResponse(status=200)
        response.content_type = "application/json"
        response.charset = "UTF-8"
        if request.version == HttpVersion11:
            response.enable_chunked_encoding()
        else:
            response.force_close()  # an HTTP/1.0 body ends when the connection does
        elements = 0

        async def element(data: bytes) -> None:
            nonlocal elements
            await response.write((b"," if elements else b"") + data)
            elements += 1

        try:
            await response.prepare(request)
            await response.write(b"[")
            pending = stream.first
            while True:
                if pending is _END:  # the service ended it: the emulator is stopping
                    response.force_close()
                    break
                if isinstance(pending, bytes):
                    await element(pending)
                if stream.expired() or _client_gone(request):
                    break
                pending = await loop.run_in_executor(thread, stream.step)
            if not _client_gone(request):
                await response.write(b"]")
                await response.write_eof()
        except ConnectionError:  # broken pipe, reset: the client is gone
            response.force_close()
        except Exception as error:
            response.force_close()
            if isinstance(error, ServiceError):
                code, message = error.code, error.message
            else:
                _log.exception("streaming %s failed", request.method)
                code, message = (grpc.StatusCode.INTERNAL,
                                 internal_message(error))
            with contextlib.suppress(ConnectionError, RuntimeError):
                await element(json.dumps(google_error(code, message)[1]).encode())
                await response.write(b"]")
                await response.write_eof()
        return response


def start_rest_server(
    dispatcher: Dispatcher, admin: Admin, host: str, port: int, *, admin_token: str,
    timeout_seconds: float,
) -> tuple[RestServer, int]:
    """Bind (port 0 picks one; OSError if it cannot) and serve on a thread of its own."""
    server = RestServer(dispatcher, admin, admin_token=admin_token, timeout_seconds=timeout_seconds)
    return server, server.start(host, port)
