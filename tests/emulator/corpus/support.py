"""Raw wire access for the bad-input corpus: bytes in, status and Google JSON error out.

Every corpus case sends something wrong and asserts two things: the answer is a Google-shaped
error (`{"error": {"code": N, "message": "...", "status": "NAME"}}`, JSON, the HTTP status
google-api-core maps back to that status), and the emulator still answers a normal call
afterwards (`assert_still_serving`).
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any

from gcpjobs.emulator.process import EmulatorProcess


@dataclass
class RawReply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


def send_raw(emulator: EmulatorProcess, data: bytes, *, timeout: float = 15.0) -> RawReply:
    """Send `data` as it is on a fresh connection to the REST port; read one HTTP response."""
    with socket.create_connection((emulator.host, emulator.rest_port), timeout=timeout) as sock:
        sock.sendall(data)
        reader = sock.makefile("rb")
        status_line = reader.readline()
        if not status_line:
            raise AssertionError("the emulator closed the connection without answering")
        parts = status_line.decode("latin-1").split(" ", 2)
        status = int(parts[1])
        headers: dict[str, str] = {}
        while True:
            line = reader.readline().decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        body = reader.read(length) if length else b""
        return RawReply(status, headers, body)


def request_bytes(
    emulator: EmulatorProcess,
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A well-formed HTTP/1.1 request with the headers a real client sends (Host of the emulator,
    JSON content type, Connection: close), overridden or extended by `headers`."""
    payload = body.encode() if isinstance(body, str) else (body or b"")
    merged = {"Host": f"{emulator.host}:{emulator.rest_port}", "Connection": "close"}
    if body is not None:
        merged["Content-Type"] = "application/json"
        merged["Content-Length"] = str(len(payload))
    merged.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in merged.items()
    )
    return head.encode("latin-1") + b"\r\n" + payload


def call(
    emulator: EmulatorProcess,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> RawReply:
    """`request_bytes` + `send_raw`; a dict or list body is sent as JSON."""
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    return send_raw(emulator, request_bytes(emulator, method, path, body, headers))


def assert_google_error(reply: RawReply, http_status: int, status: str | None = None) -> str:
    """The reply is a Google JSON error with this HTTP status (and gRPC status name, if given);
    returns its message (one line, not empty)."""
    assert reply.status == http_status, (reply.status, reply.body[:300])
    assert reply.headers.get("content-type", "").startswith("application/json"), reply.headers
    document = reply.json()
    error = document["error"]
    assert error["code"] == http_status, document
    if status is not None:
        assert error["status"] == status, document
    message = error["message"]
    assert isinstance(message, str) and message.strip() and "\n" not in message.strip(), document
    return message


def assert_still_serving(emulator: EmulatorProcess) -> None:
    """A normal read still answers 200 after the bad input."""
    reply = call(emulator, "GET", "/v1/projects/gcpjobs-test/locations/us-central1/customJobs?pageSize=1")
    assert reply.status == 200, (reply.status, reply.body[:300])
