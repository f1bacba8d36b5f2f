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
from gcpjobs.emulator.config import Timings
from gcpjobs.emulator.errors import ServiceError, http_status_for
from gcpjobs.emulator.executor import job_dir
from gcpjobs.emulator.faults import FaultError, FaultRegistry
from gcpjobs.emulator.stats import RequestStats, snapshot
from gcpjobs.emulator.vertex.runner import JobFaultError
from gcpjobs.emulator.vertex.service import JobService

_TIMING_FIELDS = ("queued_seconds", "pending_seconds", "cancel_grace_seconds")
_HOLDABLE = ("queued_seconds", "pending_seconds")


@dataclass(frozen=True)
class AdminReply:
    status: int
    body: dict[str, Any] | str


def _error(status: int, code: str, message: str) -> AdminReply:
    return AdminReply(status, {"error": {"code": status, "message": message, "status": code}})


def _bad_request(message: str) -> AdminReply:
    return _error(400, "INVALID_ARGUMENT", message)


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
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            hint = " or null to hold jobs until advanced" if key in _HOLDABLE else ""
            raise ValueError(f"{key} must be a number of seconds >= 0{hint}, got {value!r}")
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
            document = json.loads(body) if body.strip() else {}
        except ValueError:
            return _bad_request("the body is not valid JSON")
        route = path.removeprefix("/_emulator/").rstrip("/")
        try:
            return self._route(http_method, route, document)
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
            name = document.get("name") if isinstance(document, dict) else None
            if not isinstance(name, str) or not name:
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
        return _error(404, "NOT_FOUND", f"no admin route {http_method} /_emulator/{route}")

    def _faults(self, http_method: str, document: Any) -> AdminReply:
        if http_method == "DELETE":
            self.faults.clear()
            return AdminReply(200, self._faults_document())
        if http_method == "POST":
            if not isinstance(document, dict):
                return _bad_request('send {"method": "JobService.CreateCustomJob", "fault": "reply_lost", "count": 1}')
            if "rates" in document or "latency_seconds" in document:
                return self._fault_rule(document)
            count = document.get("count", 1)
            if isinstance(count, bool) or not isinstance(count, int):
                return _bad_request(f"count must be a whole number, got {count!r}")
            try:
                self.faults.arm(str(document.get("method", "")), str(document.get("fault", "")), count)
            except FaultError as error:
                return _bad_request(str(error))
        elif http_method != "GET":
            return _error(405, "UNIMPLEMENTED", f"{http_method} is not supported on /_emulator/faults")
        return AdminReply(200, self._faults_document())

    def _faults_document(self) -> dict[str, Any]:
        return {"armed": self.faults.armed(), "rules": self.faults.rules(),
                "injected": self.faults.injected()}

    def _fault_rule(self, document: dict[str, Any]) -> AdminReply:
        rates = document.get("rates", {})
        if not isinstance(rates, dict):
            return _bad_request('rates must be a mapping such as {"unavailable": 0.05}')
        try:
            self.faults.set_rule(str(document.get("method", "")), rates,
                                 latency_seconds=document.get("latency_seconds", 0.0),
                                 seed=document.get("seed"))
        except FaultError as error:
            return _bad_request(str(error))
        return AdminReply(200, self._faults_document())

    def _job_fault(self, route: str, document: Any) -> AdminReply:
        """`crash` and `preempt`: faults of a running job rather than of an API call."""
        name = document.get("name") if isinstance(document, dict) else None
        if not isinstance(name, str) or not name:
            return _bad_request('send {"name": "projects/P/locations/L/customJobs/ID"} or a '
                                'Cloud Run execution name')
        try:
            if "/executions/" in name:
                task = document.get("task")
                if route != "crash":
                    return _bad_request("only Vertex jobs on Spot VMs are preempted")
                if task is not None and (isinstance(task, bool) or not isinstance(task, int)):
                    return _bad_request(f"task must be a task index, got {task!r}")
                runner = self.cloud_run.runner
                if not isinstance(runner, ExecutionRunner):
                    return _bad_request("this emulator's Cloud Run runner has no crash fault")
                return AdminReply(200, {"name": name, "task": runner.crash(name, task)})
            if route == "preempt":
                self.service.runner.preempt(name)
                return AdminReply(200, {"name": name})
            replica = document.get("replica")
            if replica is not None and not isinstance(replica, str):
                return _bad_request(f"replica must be a name such as workerpool0-0, got {replica!r}")
            return AdminReply(200, {"name": name, "replica": self.service.runner.crash(name, replica)})
        except (JobFaultError, TaskCrashError) as error:
            raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"Cannot {route} {name}: {error}.") from None

    def _add_secret(self, document: Any) -> AdminReply:
        name = document.get("name") if isinstance(document, dict) else None
        value = document.get("value") if isinstance(document, dict) else None
        if not isinstance(name, str) or not isinstance(value, str):
            return _bad_request('send {"name": "SECRET", "value": "the secret text"}')
        try:
            version = self.cloud_run.secrets.add(name, value)
        except SecretError as error:
            return _bad_request(str(error))
        return AdminReply(200, {"name": name, "version": str(version)})

    def _web_access(self, rest: str) -> AdminReply:
        job_id, _, replica = rest.partition("/")
        workdir = job_dir(self.service.data_dir, job_id) / "replicas" / replica
        if not job_id.isdigit() or not replica or not workdir.is_dir():
            return _error(404, "NOT_FOUND", "no such job replica")
        return AdminReply(
            200,
            f"Replica {replica} of CustomJob {job_id} runs on this host in {workdir}.\n"
            "The gcpjobs emulator offers no interactive shell; open a terminal there instead.\n",
        )
