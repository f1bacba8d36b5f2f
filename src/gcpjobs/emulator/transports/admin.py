"""The emulator's own control routes under `/_emulator/` on the REST port.

    GET  /_emulator/stats      request counters per method and jobs per state
    GET  /_emulator/config     the timing settings
    POST /_emulator/config     change them: {"queued_seconds": 2, "pending_seconds": null, ...}
                               (null: hold jobs in that state until advanced)
    POST /_emulator/advance    {"name": JOB} moves a held job one state on; {"name": EXECUTION}
                               starts a held Cloud Run execution's tasks
    POST /_emulator/reset      stop every job and execution, forget all records, zero the counters
    POST /_emulator/secrets    {"name": NAME, "value": VALUE} adds a version to the local secret
                               store Cloud Run jobs read (cloudrun/secrets.py)
    GET|POST|DELETE /_emulator/faults   one-shot faults and per-method rules (rates, latency,
                               seed); GET also counts the faults injected; see faults.py
    POST /_emulator/crash      {"name": JOB, "replica": "workerpool0-0"} or {"name": EXECUTION,
                               "task": 0}: SIGKILL a running replica's or task's process tree
    POST /_emulator/preempt    {"name": JOB}: reclaim a running SPOT job's VMs
    GET  /_emulator/web-access/{job}/{replica}   what web_access_uris point at

Every route but web-access needs the admin token (`front.py`; the REST front checks it before a
request gets here). Bodies are JSON objects with exactly the fields a route names; anything else
(another JSON type, an unknown field, a value of the wrong type or out of range, nesting deeper
than `front.MAX_JSON_DEPTH`) is a one-line 400 INVALID_ARGUMENT. Timings are bounded by
`MAX_TIMING_SECONDS` (one day), one-shot fault counts by `MAX_FAULT_COUNT`, a secret's value by
Secret Manager's 64 KiB.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

import grpc

from gcpjobs.emulator.cloudrun.runner import ExecutionRunner, TaskCrashError
from gcpjobs.emulator.cloudrun.secrets import SecretError
from gcpjobs.emulator.cloudrun.service import CloudRunService
from gcpjobs.emulator.config import MAX_TIMING_SECONDS, Timings
from gcpjobs.emulator.errors import ServiceError, http_status_for
from gcpjobs.emulator.executor import job_dir
from gcpjobs.emulator.faults import FaultError, FaultRegistry
from gcpjobs.emulator.names import is_plain_segment
from gcpjobs.emulator.stats import RequestStats, snapshot
from gcpjobs.emulator.transports.front import JsonBodyError, load_json
from gcpjobs.emulator.vertex.runner import JobFaultError
from gcpjobs.emulator.vertex.service import JobService

_TIMING_FIELDS = ("queued_seconds", "pending_seconds", "cancel_grace_seconds")
_HOLDABLE = ("queued_seconds", "pending_seconds")
MAX_FAULT_COUNT = 1_000_000  # one-shot faults armed at once for a method
MAX_SECRET_BYTES = 65_536  # Secret Manager's limit on a version's payload
MAX_NAME_CHARS = 1_000  # a resource, method, fault or replica name in an admin body
# The fields each body-taking route accepts.
_FIELDS = {
    "advance": ("name",),
    "reset": (),
    "crash": ("name", "replica", "task"),
    "preempt": ("name",),
    "secrets": ("name", "value"),
    "faults": ("method", "fault", "count", "rates", "latency_seconds", "seed"),
}


@dataclass(frozen=True)
class AdminReply:
    status: int
    body: dict[str, Any] | str


def _error(status: int, code: str, message: str) -> AdminReply:
    return AdminReply(status, {"error": {"code": status, "message": message, "status": code}})


def _bad_request(message: str) -> AdminReply:
    return _error(400, "INVALID_ARGUMENT", message)


def _shown(value: Any) -> str:
    """A value in a one-line message: its JSON, cut short."""
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Refused(Exception):
    """A body that is not what its route takes; the reply is a 400 with this message."""


def _fields(route: str, document: Any) -> dict[str, Any]:
    """The body of a route that takes one: a JSON object with only its fields."""
    if not isinstance(document, dict):
        raise _Refused(f"the body of /_emulator/{route} must be a JSON object, got {_shown(document)}")
    known = _FIELDS[route]
    unknown = sorted(set(document) - set(known))
    if unknown:
        takes = f"it takes {', '.join(known)}" if known else "it takes none"
        raise _Refused(f"unknown field {_shown(unknown[0])} for /_emulator/{route}; {takes}")
    return document


def _name(value: Any, what: str, example: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_CHARS or "\x00" in value:
        raise _Refused(f"{what} must be a name such as {example}, got {_shown(value)}")
    return value


def timings_document(timings: Timings) -> dict[str, float | None]:
    return dataclasses.asdict(timings)


def parse_timings(document: Any, current: Timings) -> Timings:
    """A new Timings from a partial JSON object; ValueError with a one-line reason."""
    if not isinstance(document, dict):
        raise ValueError("the body must be a JSON object such as {\"queued_seconds\": 1.5}")
    unknown = sorted(set(document) - set(_TIMING_FIELDS))
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r}; settable: {', '.join(_TIMING_FIELDS)}")
    values = timings_document(current)
    for key, value in document.items():
        if value is None and key in _HOLDABLE:
            values[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0 <= value <= MAX_TIMING_SECONDS:
            hint = " or null to hold jobs until advanced" if key in _HOLDABLE else ""
            raise ValueError(f"{key} must be a number of seconds >= 0 and <= {MAX_TIMING_SECONDS:g} "
                             f"(one day){hint}, got {_shown(value)}")
        values[key] = float(value)
    return Timings(**values)  # type: ignore[arg-type]  # checked above


class Admin:
    def __init__(
        self,
        service: JobService,
        stats: RequestStats,
        faults: FaultRegistry,
        cloud_run: CloudRunService,
    ) -> None:
        self.service = service
        self.stats = stats
        self.faults = faults
        self.cloud_run = cloud_run

    def handle(self, http_method: str, path: str, body: bytes) -> AdminReply:
        try:
            document = load_json(body) if body.strip() else {}
        except JsonBodyError as error:
            return _bad_request(f"the body is not valid JSON: {error}")
        route = path.removeprefix("/_emulator/").rstrip("/")
        if http_method in ("GET", "DELETE") and document != {} and not route.startswith("web-access/"):
            return _bad_request(f"{http_method} /_emulator/{route} takes no body")
        try:
            if http_method == "POST" and route in _FIELDS:
                document = _fields(route, document)
            return self._route(http_method, route, document)
        except _Refused as refused:
            return _bad_request(str(refused))
        except ServiceError as error:
            return _error(http_status_for(error.code), error.code.name, error.message)

    def _route(self, http_method: str, route: str, document: Any) -> AdminReply:
        if (http_method, route) == ("GET", "stats"):
            return AdminReply(200, snapshot(self.stats, self.service.job_state_counts(),
                                            self.cloud_run.execution_counts()))
        if route == "config" and http_method == "GET":
            return AdminReply(200, timings_document(self.service.timings))
        if route == "config" and http_method == "POST":
            try:
                timings = parse_timings(document, self.service.timings)
            except ValueError as error:
                return _bad_request(str(error))
            self.service.set_timings(timings)
            self.cloud_run.timings_changed()
            return AdminReply(200, timings_document(timings))
        if (http_method, route) == ("POST", "advance"):
            name = document.get("name")
            if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS:
                return _bad_request('send {"name": "projects/P/locations/L/customJobs/ID"} '
                                    'or a Cloud Run execution name')
            if "/executions/" in name:
                self.cloud_run.advance(name)
                return AdminReply(200, {"name": name, "state": "RUNNING"})
            return AdminReply(200, {"name": name, "state": self.service.advance(name)})
        if (http_method, route) == ("POST", "reset"):
            self.cloud_run.reset()
            self.service.reset()
            self.stats.reset()
            self.faults.clear()
            return AdminReply(200, {})
        if route == "faults":
            return self._faults(http_method, document)
        if (http_method, route) in (("POST", "crash"), ("POST", "preempt")):
            return self._job_fault(route, document)
        if (http_method, route) == ("POST", "secrets"):
            return self._add_secret(document)
        if http_method == "GET" and route.startswith("web-access/"):
            return self._web_access(route.removeprefix("web-access/"))
        return _error(404, "NOT_FOUND", f"no admin route {http_method} /_emulator/{route[:200]}")

    def _faults(self, http_method: str, document: Any) -> AdminReply:
        if http_method == "DELETE":
            self.faults.clear()
            return AdminReply(200, self._faults_document())
        if http_method == "POST":
            if not isinstance(document, dict):
                return _bad_request('send {"method": "JobService.CreateCustomJob", "fault": "reply_lost", "count": 1}')
            method = _name(document.get("method"), "method", "JobService.CreateCustomJob")
            if "rates" in document or "latency_seconds" in document:
                if {"fault", "count"} & set(document):
                    return _bad_request("send either a one-shot fault (method, fault, count) or a "
                                        "rule (method, rates, latency_seconds, seed), not both")
                return self._fault_rule(method, document)
            if "seed" in document:
                return _bad_request("seed goes with a rule: send rates or latency_seconds too")
            fault = _name(document.get("fault"), "fault", "unavailable")
            count = document.get("count", 1)
            if isinstance(count, bool) or not isinstance(count, int):
                return _bad_request(f"count must be a whole number, got {_shown(count)}")
            if count > MAX_FAULT_COUNT:
                return _bad_request(f"count must be at most {MAX_FAULT_COUNT}, got {_shown(count)}")
            try:
                self.faults.arm(method, fault, count)
            except FaultError as error:
                return _bad_request(str(error))
        elif http_method != "GET":
            return _error(405, "UNIMPLEMENTED", f"{http_method} is not supported on /_emulator/faults")
        return AdminReply(200, self._faults_document())

    def _faults_document(self) -> dict[str, Any]:
        return {"armed": self.faults.armed(), "rules": self.faults.rules(),
                "injected": self.faults.injected()}

    def _fault_rule(self, method: str, document: dict[str, Any]) -> AdminReply:
        rates = document.get("rates", {})
        if not isinstance(rates, dict):
            return _bad_request('rates must be a mapping such as {"unavailable": 0.05}')
        for name in rates:
            _name(name, "a fault in rates", "unavailable")
        seed = document.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                                 or abs(seed) >= 2**64):
            return _bad_request(f"seed must be a whole number below 2**64, got {_shown(seed)}")
        try:
            self.faults.set_rule(method, rates,
                                 latency_seconds=document.get("latency_seconds", 0.0),
                                 seed=document.get("seed"))
        except FaultError as error:
            return _bad_request(str(error))
        return AdminReply(200, self._faults_document())

    def _job_fault(self, route: str, document: Any) -> AdminReply:
        """`crash` and `preempt`: faults of a running job rather than of an API call."""
        name = document.get("name")
        if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS:
            return _bad_request('send {"name": "projects/P/locations/L/customJobs/ID"} or a '
                                'Cloud Run execution name')
        try:
            if "/executions/" in name:
                if "replica" in document:
                    return _bad_request("a Cloud Run execution has tasks: send task, not replica")
                task = document.get("task")
                if route != "crash":
                    return _bad_request("only Vertex jobs on Spot VMs are preempted")
                if task is not None and (isinstance(task, bool) or not isinstance(task, int)
                                         or not 0 <= task < 1_000_000):
                    return _bad_request(f"task must be a task index, got {_shown(task)}")
                runner = self.cloud_run.runner
                if not isinstance(runner, ExecutionRunner):
                    return _bad_request("this emulator's Cloud Run runner has no crash fault")
                return AdminReply(200, {"name": name, "task": runner.crash(name, task)})
            if "task" in document:
                return _bad_request("a Vertex job has replicas: send replica, not task")
            if route == "preempt":
                self.service.runner.preempt(name)
                return AdminReply(200, {"name": name})
            replica = document.get("replica")
            if replica is not None:
                replica = _name(replica, "replica", "workerpool0-0")
            return AdminReply(200, {"name": name, "replica": self.service.runner.crash(name, replica)})
        except (JobFaultError, TaskCrashError) as error:
            raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"Cannot {route} {name}: {error}.") from None

    def _add_secret(self, document: Any) -> AdminReply:
        name = document.get("name")
        value = document.get("value")
        if not isinstance(name, str) or not isinstance(value, str) or len(name) > MAX_NAME_CHARS:
            return _bad_request('send {"name": "SECRET", "value": "the secret text"}')
        if len(value.encode("utf-8", "surrogatepass")) > MAX_SECRET_BYTES:
            return _bad_request(f"a secret's value is at most {MAX_SECRET_BYTES} bytes "
                                "(Secret Manager's limit)")
        try:
            version = self.cloud_run.secrets.add(name, value)
        except SecretError as error:
            return _bad_request(str(error))
        return AdminReply(200, {"name": name, "version": str(version)})

    def _web_access(self, rest: str) -> AdminReply:
        job_id, _, replica = rest.partition("/")
        # Both parts are checked before either becomes part of a path.
        if not job_id.isascii() or not job_id.isdigit() or not is_plain_segment(replica):
            return _error(404, "NOT_FOUND", "no such job replica")
        workdir = job_dir(self.service.data_dir, job_id) / "replicas" / replica
        if not workdir.is_dir():
            return _error(404, "NOT_FOUND", "no such job replica")
        return AdminReply(
            200,
            f"Replica {replica} of CustomJob {job_id} runs on this host in {workdir}.\n"
            "The gcpjobs emulator offers no interactive shell; open a terminal there instead.\n",
        )
