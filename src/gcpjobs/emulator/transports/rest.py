"""REST transport: the documented `/v1/...` (Vertex) and `/v2/...` (Cloud Run) paths with proto3
JSON, plus the admin routes.

Requests are parsed with `google.protobuf.json_format` (camelCase or snake_case field names,
enums as names or numbers); responses are proto3 JSON, with numeric enums when the client asks
for them (`$alt=json;enum-encoding=int`, as the GAPIC REST transport does). Errors are Google
JSON errors with the HTTP status google-api-core maps back to the same exception classes.
The stdlib threading HTTP server is enough here and starts in milliseconds.

Streaming methods (TailLogEntries at `POST /v2/entries:tail`) answer as Google's HTTP/JSON
mapping does: 200, then one JSON array sent incrementally (`[{...},{...}]`, what
`google.api_core.rest_streaming.ResponseIterator` parses), one HTTP/1.1 chunk per response, so a
client sees each as soon as it is written (to an HTTP/1.0 client: unchunked, the connection
closed at the end). A request the service refuses (bad JSON, a bad filter,
no resource names, an injected fault) gets the usual Google JSON error instead: the service's
first step runs before anything is sent. The stream ends:

- when the client goes away: the connection is checked between polls (a closed or reset socket
  reads as such at once), and a failed write ends it too; the handler thread then returns, so no
  thread outlives its client;
- at the request's own deadline, the `X-Server-Timeout` header (seconds, Google's system
  parameter): the array is closed (`]`) and the chunked body ended, a normal end of stream for
  the client (not an error: a tail has no natural end, the client chose how long to listen);
- when the emulator stops (the array is closed, then the connection).

A failure after the first byte can no longer change the status: it is sent as a last
`{"error": {...}}` element, as Google's front end does, and the array closed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message as ProtobufMessage

from gcpjobs.emulator.dispatch import Dispatcher, Method
from gcpjobs.emulator.errors import ServiceError, http_status_for
from gcpjobs.emulator.transports.admin import Admin, AdminReply

_LOCATION = r"projects/[^/]+/locations/[^/]+"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Route:
    http_method: str
    pattern: re.Pattern[str]
    method_key: str
    path_field: str  # the request field the captured path fills ("parent", "name", "job.name"; "": none)
    body_field: str | None = None  # the field the JSON body fills; "*": the whole request; None: no body


_SECRET = r"projects/[^/]+/secrets/[^/:]+"
_SECRET_MANAGER_ROUTES = (
    _Route("POST", re.compile(r"^/v1/(projects/[^/]+)/secrets$"),
           "SecretManagerService.CreateSecret", "parent", "secret"),
    _Route("GET", re.compile(r"^/v1/(projects/[^/]+)/secrets$"),
           "SecretManagerService.ListSecrets", "parent"),
    _Route("GET", re.compile(rf"^/v1/({_SECRET})$"), "SecretManagerService.GetSecret", "name"),
    _Route("DELETE", re.compile(rf"^/v1/({_SECRET})$"),
           "SecretManagerService.DeleteSecret", "name"),
    _Route("POST", re.compile(rf"^/v1/({_SECRET}):addVersion$"),
           "SecretManagerService.AddSecretVersion", "parent", "*"),
    _Route("GET", re.compile(rf"^/v1/({_SECRET}/versions/[^/:]+):access$"),
           "SecretManagerService.AccessSecretVersion", "name"),
)

_ROUTES = (
    _Route("POST", re.compile(rf"^/v1/({_LOCATION})/customJobs$"),
           "JobService.CreateCustomJob", "parent", "custom_job"),
    _Route("GET", re.compile(rf"^/v1/({_LOCATION})/customJobs$"),
           "JobService.ListCustomJobs", "parent"),
    _Route("GET", re.compile(rf"^/v1/({_LOCATION}/customJobs/[^/:]+)$"),
           "JobService.GetCustomJob", "name"),
    _Route("DELETE", re.compile(rf"^/v1/({_LOCATION}/customJobs/[^/:]+)$"),
           "JobService.DeleteCustomJob", "name"),
    _Route("POST", re.compile(rf"^/v1/({_LOCATION}/customJobs/[^/:]+):cancel$"),
           "JobService.CancelCustomJob", "name"),
    # The GAPIC operations client tries the /ui/ binding first, then /v1/.
    _Route("GET", re.compile(rf"^/(?:v1|ui)/({_LOCATION}/operations/[^/:]+)$"),
           "Operations.GetOperation", "name"),
    _Route("GET", re.compile(rf"^/(?:v1|ui)/({_LOCATION})/operations$"),
           "Operations.ListOperations", "name"),
    # Cloud Run Admin API v2 (the GAPIC rest_base files of google-cloud-run).
    _Route("POST", re.compile(rf"^/v2/({_LOCATION})/jobs$"), "Jobs.CreateJob", "parent", "job"),
    _Route("GET", re.compile(rf"^/v2/({_LOCATION})/jobs$"), "Jobs.ListJobs", "parent"),
    _Route("GET", re.compile(rf"^/v2/({_LOCATION}/jobs/[^/:]+)$"), "Jobs.GetJob", "name"),
    _Route("PATCH", re.compile(rf"^/v2/({_LOCATION}/jobs/[^/:]+)$"), "Jobs.UpdateJob",
           "job.name", "job"),
    _Route("DELETE", re.compile(rf"^/v2/({_LOCATION}/jobs/[^/:]+)$"), "Jobs.DeleteJob", "name"),
    _Route("POST", re.compile(rf"^/v2/({_LOCATION}/jobs/[^/:]+):run$"), "Jobs.RunJob", "name", "*"),
    _Route("GET", re.compile(rf"^/v2/({_LOCATION}/jobs/[^/:]+)/executions$"),
           "Executions.ListExecutions", "parent"),
    _Route("GET", re.compile(rf"^/v2/({_LOCATION}/jobs/[^/:]+/executions/[^/:]+)$"),
           "Executions.GetExecution", "name"),
    _Route("DELETE", re.compile(rf"^/v2/({_LOCATION}/jobs/[^/:]+/executions/[^/:]+)$"),
           "Executions.DeleteExecution", "name"),
    _Route("POST", re.compile(rf"^/v2/({_LOCATION}/jobs/[^/:]+/executions/[^/:]+):cancel$"),
           "Executions.CancelExecution", "name", "*"),
    _Route("GET", re.compile(rf"^/v2/({_LOCATION}/operations/[^/:]+)$"),
           "Operations.GetOperation", "name"),
    _Route("DELETE", re.compile(rf"^/v2/({_LOCATION}/operations/[^/:]+)$"),
           "Operations.DeleteOperation", "name"),
    _Route("GET", re.compile(rf"^/v2/({_LOCATION})/operations$"),
           "Operations.ListOperations", "name"),
    _Route("POST", re.compile(rf"^/v2/({_LOCATION}/operations/[^/:]+):wait$"),
           "Operations.WaitOperation", "name", "*"),
    # Cloud Logging v2 (the JSON API google-cloud-logging's HTTP client speaks). Tail is a
    # stream of TailLogEntriesResponse for one TailLogEntriesRequest body (the REST reference's
    # entries.tail); see the module notes for how it is sent and when it ends.
    _Route("POST", re.compile(r"^/v2/entries:list$"), "LoggingServiceV2.ListLogEntries", "", "*"),
    _Route("POST", re.compile(r"^/v2/entries:tail$"), "LoggingServiceV2.TailLogEntries", "", "*"),
    # Secret Manager v1 (the GAPIC rest_base of google-cloud-secret-manager).
    *_SECRET_MANAGER_ROUTES,
)
# Google's system parameter for a server-side deadline, in seconds.
_DEADLINE_HEADER = "X-Server-Timeout"
# The largest request body taken; a larger one is refused (413) before it is read.
MAX_BODY_BYTES = 32 * 1024 * 1024
# What the standard library's own errors (a bad request line, a URL over 65,536 bytes, a
# method no route has) are, as Google's front end answers them: a JSON error, never HTML.
_FRAMING_STATUS = {
    HTTPStatus.BAD_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    HTTPStatus.REQUEST_URI_TOO_LONG: grpc.StatusCode.INVALID_ARGUMENT,
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: grpc.StatusCode.INVALID_ARGUMENT,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: grpc.StatusCode.INVALID_ARGUMENT,
    HTTPStatus.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    HTTPStatus.METHOD_NOT_ALLOWED: grpc.StatusCode.UNIMPLEMENTED,
    HTTPStatus.NOT_IMPLEMENTED: grpc.StatusCode.UNIMPLEMENTED,
    HTTPStatus.HTTP_VERSION_NOT_SUPPORTED: grpc.StatusCode.INVALID_ARGUMENT,
}


def google_error(code: grpc.StatusCode, message: str) -> tuple[int, dict[str, Any]]:
    status = http_status_for(code)
    return status, {"error": {"code": status, "message": message, "status": code.name}}


def _pb(message: Any) -> ProtobufMessage:
    if isinstance(message, ProtobufMessage):
        return message
    pb: ProtobufMessage = type(message).pb(message)
    return pb


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
    fields: dict[str, Any] = {
        key: _query_value(pb, key, values[-1])
        for key, values in parse_qs(query, keep_blank_values=True).items()
        if not key.startswith("$") and key not in _SYSTEM_PARAMETERS  # such as $alt
    }
    try:
        json_format.ParseDict(fields, pb, ignore_unknown_fields=False)
    except json_format.ParseError as error:
        raise _bad_payload(error) from None
    if route.body_field is not None:
        try:
            document = json.loads(body or b"{}")
        except ValueError as error:
            raise _bad_payload(error) from None
        if not isinstance(document, dict):
            raise _bad_payload(ValueError("the body must be a JSON object"))
        target = pb if route.body_field == "*" else getattr(pb, route.body_field)
        try:
            json_format.ParseDict(document, target)
        except json_format.ParseError as error:
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
                           f"Invalid {_DEADLINE_HEADER} header {header!r}: give a positive "
                           "number of seconds")
    return time.monotonic() + seconds


@dataclass
class _Stream:
    """A streaming method's responses, the first already taken from the service (so that a
    refusal is answered as a plain error), and when the stream must end."""

    responses: Iterator[Any]  # responses, or None while the service has nothing to send
    source: Iterator[Any]  # the service's own iterator: closed when the stream ends
    deadline: float | None

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def close(self) -> None:
        close = getattr(self.source, "close", None)
        if close is not None:
            close()


class _ClientGone(Exception):
    """The client closed or reset the connection of a stream."""


class _JsonArray:
    """Writes a JSON array element by element, one HTTP/1.1 chunk each (to an HTTP/1.0 client,
    plain bytes: closing the connection ends the body)."""

    def __init__(self, handler: RestHandler, *, chunked: bool) -> None:
        self._handler = handler
        self._chunked = chunked
        self._opened = False
        self._elements = 0

    def open(self) -> None:
        self._write(b"[")
        self._opened = True

    def element(self, data: bytes) -> None:
        self._write((b"," if self._elements else b"") + data)
        self._elements += 1

    def end(self) -> None:
        """Close the array (opening it first if need be) and end the chunked body."""
        self._write(b"]" if self._opened else b"[]")
        if self._chunked:
            self._handler.wfile.write(b"0\r\n\r\n")

    def _write(self, data: bytes) -> None:
        try:
            self._handler.wfile.write(b"%X\r\n%s\r\n" % (len(data), data) if self._chunked else data)
        except (ConnectionError, TimeoutError) as error:  # broken pipe, reset, aborted
            raise _ClientGone from error


class RestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the REST clients reuse connections
    # Headers and body go out in two writes; with Nagle on, a kept-alive connection waits for
    # the client's delayed ACK (~40 ms) on every response.
    disable_nagle_algorithm = True
    server: RestServer

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one stderr line per request would cost more than the request itself."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's framing errors as Google JSON (it would send an HTML page).
        The connection is closed: after a framing error the rest of the stream cannot be trusted."""
        status = HTTPStatus(code)
        grpc_code = _FRAMING_STATUS.get(status, grpc.StatusCode.INVALID_ARGUMENT)
        text = " ".join(part for part in (message or status.phrase, explain) if part)
        payload = {"error": {"code": int(status), "message": " ".join(text.split()),
                             "status": grpc_code.name}}
        self.close_connection = True
        # A request line the server could not read leaves HTTP/0.9 framing (a bare body, no
        # status line); no client speaks 0.9, and a status line lets every one see the error.
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        data = b"" if getattr(self, "command", None) == "HEAD" else json.dumps(payload).encode()
        with contextlib.suppress(OSError):
            self._send_bytes(int(status), data, connection_close=True)

    def _body_length(self) -> int | None:
        """Content-Length as a number of bytes to read; None (after answering) when it is not
        one, or too large: a negative or garbled length would otherwise read until the client
        closes, holding this thread."""
        header = self.headers.get("Content-Length")
        if header is None or not header.strip():
            return 0
        if not header.strip().isdigit():
            self.send_error(HTTPStatus.BAD_REQUEST,
                            f"Invalid Content-Length header {header[:40]!r}: give a whole number of bytes")
            return None
        length = int(header)
        if length > MAX_BODY_BYTES:
            self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                            f"Request body of {length} bytes is larger than the limit of "
                            f"{MAX_BODY_BYTES} bytes")
            return None
        return length

    def _handle(self, http_method: str) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        length = self._body_length()
        if length is None:
            return
        body = self.rfile.read(length) if length else b""
        if path.startswith("/_emulator/"):
            self._send_admin(self.server.admin.handle(http_method, path, body))
            return
        numeric_enums = "enum-encoding=int" in unquote(url.query)
        try:
            result = self._call(http_method, path, url.query, body)
            if isinstance(result, _Stream):
                self._send_stream(result, numeric_enums)  # answers its own errors: 200 is sent
            else:
                self._send_json(HTTPStatus.OK, result, numeric_enums)
        except ServiceError as error:
            status, payload = google_error(error.code, error.message)
            self._send_bytes(status, json.dumps(payload).encode())
        except Exception as error:  # a bug must still answer, and be visible in the log
            _log.exception("%s %s failed", http_method, path)
            status, payload = google_error(
                grpc.StatusCode.INTERNAL, f"Internal error in the gcpjobs emulator: {error}"
            )
            self._send_bytes(status, json.dumps(payload).encode())

    def _call(self, http_method: str, path: str, query: str, body: bytes) -> ProtobufMessage | _Stream:
        known_path = False
        for route in _ROUTES:
            match = route.pattern.match(path)
            if match is None:
                continue
            known_path = True
            if route.http_method != http_method:
                continue
            method = self.server.dispatcher.methods[route.method_key]
            captured = match.group(1) if match.groups() else ""
            request = build_request(method, route, captured, query, body)
            if method.streaming:
                return self._open_stream(method, request)
            return _pb(self.server.dispatcher.call(method, request))
        if known_path:
            raise ServiceError(grpc.StatusCode.UNIMPLEMENTED,
                               f"Method {http_method} is not supported for {path}.")
        raise ServiceError(grpc.StatusCode.NOT_FOUND, f"The requested URL {path} was not found.")

    def _open_stream(self, method: Method, request: Any) -> _Stream:
        """Start a streaming method (a stream of one request, as over gRPC) and take its first
        step, where the service checks the request: ServiceError here is still a plain error."""
        deadline = _deadline(self.headers.get(_DEADLINE_HEADER))
        source = iter(self.server.dispatcher.call(method, iter([request])))
        try:
            first = next(source)
        except StopIteration:
            return _Stream(iter(()), source, deadline)
        return _Stream(itertools.chain([first], source), source, deadline)

    def _send_stream(self, stream: _Stream, numeric_enums: bool) -> None:
        """200 and the responses as one chunked JSON array, until the client goes away, the
        deadline passes or the service ends the stream (the module notes say more)."""
        chunked = self.request_version != "HTTP/1.0"
        array = _JsonArray(self, chunked=chunked)
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            array.open()
            for response in stream.responses:
                if response is not None:
                    text = json_format.MessageToJson(
                        _pb(response), use_integers_for_enums=numeric_enums, indent=None)
                    array.element(text.encode())
                if stream.expired():
                    break
                if self._client_gone():
                    raise _ClientGone
            else:  # the service ended it: the emulator is stopping
                self.close_connection = True
            array.end()
        except (_ClientGone, ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as error:
            self.close_connection = True
            if isinstance(error, ServiceError):
                code, message = error.code, error.message
            else:
                _log.exception("streaming %s failed", self.path)
                code, message = (grpc.StatusCode.INTERNAL,
                                 f"Internal error in the gcpjobs emulator: {error}")
            with contextlib.suppress(_ClientGone, ConnectionError, TimeoutError):
                array.element(json.dumps(google_error(code, message)[1]).encode())
                array.end()
        finally:
            stream.close()

    def _client_gone(self) -> bool:
        """Whether the client closed or reset the connection: a peek that does not wait (the
        client sends nothing while it reads a stream, so a readable socket with no data is the
        end of the connection)."""
        connection = self.connection
        timeout = connection.gettimeout()
        try:
            connection.settimeout(0)
            return not connection.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False  # nothing to read: still connected
        except OSError:
            return True  # reset, or the socket is gone
        finally:
            with contextlib.suppress(OSError):
                connection.settimeout(timeout)

    def _send_json(self, status: int, message: ProtobufMessage, numeric_enums: bool) -> None:
        text = json_format.MessageToJson(message, use_integers_for_enums=numeric_enums, indent=None)
        self._send_bytes(status, text.encode())

    def _send_admin(self, reply: AdminReply) -> None:
        if isinstance(reply.body, str):
            self._send_bytes(reply.status, reply.body.encode(), "text/plain; charset=utf-8")
        else:
            self._send_bytes(reply.status, json.dumps(reply.body).encode())

    def _send_bytes(self, status: int, data: bytes, content_type: str = "application/json",
                    *, connection_close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}" if "charset" in content_type
                         else f"{content_type}; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        if connection_close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


class RestServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # a restarted emulator gets its port back at once
    # The standard library's default backlog of 5 left 541 of 1,000 simultaneous clients
    # unanswered after 60 s (their SYNs dropped and retried with backoff).
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], dispatcher: Dispatcher, admin: Admin) -> None:
        self.dispatcher = dispatcher
        self.admin = admin
        super().__init__(address, RestHandler)


def start_rest_server(
    dispatcher: Dispatcher, admin: Admin, host: str, port: int
) -> tuple[RestServer, int]:
    """Bind (port 0 picks one) and serve on a daemon thread."""
    server_class = _RestServerV6 if ":" in host else RestServer
    server = server_class((host, port), dispatcher, admin)
    threading.Thread(target=server.serve_forever, name="rest", daemon=True).start()
    return server, int(server.server_address[1])


class _RestServerV6(RestServer):
    address_family = socket.AF_INET6
