"""REST transport: the documented `/v1/...` (Vertex) and `/v2/...` (Cloud Run) paths with proto3
JSON, plus the admin routes.

Requests are parsed with `google.protobuf.json_format` (camelCase or snake_case field names,
enums as names or numbers); responses are proto3 JSON, with numeric enums when the client asks
for them (`$alt=json;enum-encoding=int`, as the GAPIC REST transport does). Errors are Google
JSON errors with the HTTP status google-api-core maps back to the same exception classes.
The stdlib threading HTTP server is enough here and starts in milliseconds.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
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
    # Cloud Logging v2 (the JSON API google-cloud-logging's HTTP client speaks). TailLogEntries
    # is gRPC only: REST offers no usable streaming.
    _Route("POST", re.compile(r"^/v2/entries:list$"), "LoggingServiceV2.ListLogEntries", "", "*"),
)


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
    return ServiceError(
        grpc.StatusCode.INVALID_ARGUMENT, f"Invalid JSON payload received. {error}"
    )


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

    def _handle(self, http_method: str) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if path.startswith("/_emulator/"):
            self._send_admin(self.server.admin.handle(http_method, path, body))
            return
        numeric_enums = "enum-encoding=int" in unquote(url.query)
        try:
            self._send_json(HTTPStatus.OK, self._call(http_method, path, url.query, body),
                            numeric_enums)
        except ServiceError as error:
            status, payload = google_error(error.code, error.message)
            self._send_bytes(status, json.dumps(payload).encode())
        except Exception as error:  # a bug must still answer, and be visible in the log
            _log.exception("%s %s failed", http_method, path)
            status, payload = google_error(
                grpc.StatusCode.INTERNAL, f"Internal error in the gcpjobs emulator: {error}"
            )
            self._send_bytes(status, json.dumps(payload).encode())

    def _call(self, http_method: str, path: str, query: str, body: bytes) -> ProtobufMessage:
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
            return _pb(self.server.dispatcher.call(method, request))
        if known_path:
            raise ServiceError(grpc.StatusCode.UNIMPLEMENTED,
                               f"Method {http_method} is not supported for {path}.")
        raise ServiceError(grpc.StatusCode.NOT_FOUND, f"The requested URL {path} was not found.")

    def _send_json(self, status: int, message: ProtobufMessage, numeric_enums: bool) -> None:
        text = json_format.MessageToJson(message, use_integers_for_enums=numeric_enums, indent=None)
        self._send_bytes(status, text.encode())

    def _send_admin(self, reply: AdminReply) -> None:
        if isinstance(reply.body, str):
            self._send_bytes(reply.status, reply.body.encode(), "text/plain; charset=utf-8")
        else:
            self._send_bytes(reply.status, json.dumps(reply.body).encode())

    def _send_bytes(self, status: int, data: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}" if "charset" in content_type
                         else f"{content_type}; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class RestServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # a restarted emulator gets its port back at once

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
