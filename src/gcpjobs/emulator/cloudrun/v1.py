"""Cloud Run Admin API v1 (Knative style) for jobs, executions and tasks, over the v2 service.

`gcloud run jobs ...` and prefect-gcp's `cloud-run` worker speak v1:
`/apis/run.googleapis.com/v1/namespaces/PROJECT/{jobs,executions,tasks}[/NAME][:run|:cancel]`.
There is one store: every v1 request becomes v2 requests sent through the dispatcher (so
stats, injected faults and validation are the v2 service's own), and every v2 resource is
shown in its v1 shape. A job created through v1 is the same resource through v2, as on the
real service.

The region is not in a v1 path: it is the host's (`us-central1-run.googleapis.com`, here
`us-central1-127.0.0.1:8471`). On the global host (no region) a list spans every region that
holds resources of the project and a named resource is looked up in each (gcloud lists jobs
there when no --region is given); a create there takes the `cloud.googleapis.com/location`
label of the body.

The field mapping is reference §4.8 (google-runtime-contract.md), the one `specs/cloudrun_v1.py`
applies to job files, both ways and at the proto level: the spec translation refuses what a
gcpjobs job cannot hold and adds gcpjobs labels, while the service must keep what a client sent
(read back through v1, a body is what the client wrote; through v2 it is the same job). What v1
carries and v2 has no field for is refused with INVALID_ARGUMENT naming the v1 path, never
dropped, except gcloud's `client.knative.dev/nonce` template label, which only makes Knative
create a new revision (jobs have none) and which no v2 label key could hold.

Choices where the real service is not documented (unverified): `metadata.namespace` is the
project as the client wrote it (Google answers with the project number); `resourceVersion` is
the v2 etag without its quotes (a PUT with one is checked like an etag); executions carry the
labels `run.googleapis.com/job` and tasks `run.googleapis.com/execution`,
`run.googleapis.com/job`, `run.googleapis.com/runningState` and `run.googleapis.com/taskIndex`
(what gcloud's label selectors ask for); a condition's v2 enum reason is written in CamelCase
(`NON_ZERO_EXIT_CODE` → `NonZeroExitCode`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import grpc
from google.api import launch_stage_pb2
from google.cloud import run_v2
from google.protobuf import any_pb2, json_format

from gcpjobs.emulator import names, paging
from gcpjobs.emulator.cloudrun.tasks import task_name
from gcpjobs.emulator.errors import ServiceError, invalid
from gcpjobs.specs.cloudrun_v1 import (
    ACCELERATOR,
    API_VERSION,
    EXECUTION_ENVIRONMENT,
    LAUNCH_STAGE,
    LOCATION_LABEL,
    NETWORK_INTERFACES,
    VPC_CONNECTOR,
    VPC_EGRESS,
)

PREFIX = "/apis/run.googleapis.com/v1/namespaces/"
CLIENT_NAME = "run.googleapis.com/client-name"
CLIENT_VERSION = "run.googleapis.com/client-version"
CREATOR = "run.googleapis.com/creator"
LAST_MODIFIER = "run.googleapis.com/lastModifier"
JOB_LABEL = "run.googleapis.com/job"
EXECUTION_LABEL = "run.googleapis.com/execution"
RUNNING_STATE_LABEL = "run.googleapis.com/runningState"
TASK_INDEX_LABEL = "run.googleapis.com/taskIndex"
NONCE_LABEL = "client.knative.dev/nonce"

# A v1 call asks the v2 service through this: (dispatcher method key, request) → response.
Call = Callable[[str, Any], Any]
# The regions that hold Cloud Run resources of a project (for the global host).
Locations = Callable[[str], list[str]]

_ID = r"[^/:]+"
_PATHS = (
    ("POST", re.compile(rf"({_ID})/jobs"), "create_job"),
    ("GET", re.compile(rf"({_ID})/jobs"), "list_jobs"),
    ("GET", re.compile(rf"({_ID})/jobs/({_ID})"), "get_job"),
    ("PUT", re.compile(rf"({_ID})/jobs/({_ID})"), "replace_job"),
    ("DELETE", re.compile(rf"({_ID})/jobs/({_ID})"), "delete_job"),
    ("POST", re.compile(rf"({_ID})/jobs/({_ID}):run"), "run_job"),
    ("GET", re.compile(rf"({_ID})/executions"), "list_executions"),
    ("GET", re.compile(rf"({_ID})/executions/({_ID})"), "get_execution"),
    ("DELETE", re.compile(rf"({_ID})/executions/({_ID})"), "delete_execution"),
    ("POST", re.compile(rf"({_ID})/executions/({_ID}):cancel"), "cancel_execution"),
    ("GET", re.compile(rf"({_ID})/tasks"), "list_tasks"),
    ("GET", re.compile(rf"({_ID})/tasks/({_ID})"), "get_task"),
)
# Kubernetes list parameters gcloud sends that change nothing here.
_IGNORED_QUERY = frozenset({"alt", "prettyPrint", "$alt", "includeUninitialized",
                            "resourceVersion", "watch", "fieldSelector", "apiVersion", "kind",
                            "propagationPolicy", "force"})

_STATUS = {"CONDITION_SUCCEEDED": "True", "CONDITION_FAILED": "False"}
_SEVERITY = {"ERROR": "Error", "WARNING": "Warning", "INFO": "Info"}
_ENVIRONMENTS = {"EXECUTION_ENVIRONMENT_GEN1": "gen1", "EXECUTION_ENVIRONMENT_GEN2": "gen2"}
_EGRESS = {"ALL_TRAFFIC": "all-traffic", "PRIVATE_RANGES_ONLY": "private-ranges-only"}
_LIST_KINDS = {"jobs": "JobsList", "executions": "ExecutionsList", "tasks": "TasksList"}


def _unknown(path: str) -> ServiceError:
    # Google's words for a field its JSON parser does not know.
    return invalid(f"Invalid JSON payload received. Unknown name \"{path.rsplit('.', 1)[-1]}\" "
                    f"at '{path.rsplit('.', 1)[0]}': Cannot find field.")


def _camel_reason(enum_name: str) -> str:
    return "".join(word.title() for word in enum_name.split("_"))


def _v2_dict(message: Any) -> dict[str, Any]:
    document: dict[str, Any] = json_format.MessageToDict(type(message).pb(message))
    return document


def _unpack(packed: any_pb2.Any, cls: Any) -> Any:
    message = cls()
    packed.Unpack(type(message).pb(message))
    return message


def _without_empty(value: Any) -> Any:
    """`value` without empty strings, lists and mappings (what proto3 JSON leaves out)."""
    if isinstance(value, Mapping):
        kept = {key: _without_empty(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in ("", [], {}, None)}
    if isinstance(value, list):
        return [_without_empty(item) for item in value]
    return value


# ------------------------------------------------------------------------------ v2 → v1


def _metadata(document: Mapping[str, Any], project: str, collection: str,
              labels: Mapping[str, str], annotations: Mapping[str, str]) -> dict[str, Any]:
    name = str(document["name"]).rsplit("/", 1)[-1]
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": project,
        "selfLink": f"{PREFIX}{project}/{collection}/{name}",
        "uid": document.get("uid", ""),
        "resourceVersion": str(document.get("etag", "")).strip('"'),
        "generation": int(document.get("generation", 0)),
        "creationTimestamp": document.get("createTime", ""),
        "labels": dict(labels),
        "annotations": dict(annotations),
    }
    if "deleteTime" in document:
        metadata["deletionTimestamp"] = document["deleteTime"]
    return _without_empty(metadata)  # type: ignore[no-any-return]


def _condition(condition: Mapping[str, Any]) -> dict[str, Any]:
    reason = next((condition[key] for key in ("executionReason", "reason", "revisionReason")
                   if key in condition), None)
    v1: dict[str, Any] = {
        "type": condition.get("type", ""),
        "status": _STATUS.get(str(condition.get("state", "")), "Unknown"),
    }
    if reason is not None:
        v1["reason"] = _camel_reason(str(reason))
    if condition.get("message"):
        v1["message"] = condition["message"]
    if "lastTransitionTime" in condition:
        v1["lastTransitionTime"] = condition["lastTransitionTime"]
    if condition.get("severity") in _SEVERITY:
        v1["severity"] = _SEVERITY[condition["severity"]]
    return v1


def _container_v1(container: Mapping[str, Any]) -> dict[str, Any]:
    v1: dict[str, Any] = {key: container[key] for key in
                          ("name", "image", "command", "args", "workingDir", "ports")
                          if key in container}
    env = []
    for variable in container.get("env", []):
        entry: dict[str, Any] = {"name": variable.get("name", "")}
        ref = variable.get("valueSource", {}).get("secretKeyRef")
        if ref is not None:
            entry["valueFrom"] = {"secretKeyRef": {"name": ref.get("secret", ""),
                                                   "key": ref.get("version", "latest")}}
        elif "value" in variable:
            entry["value"] = variable["value"]
        env.append(entry)
    if env:
        v1["env"] = env
    limits = container.get("resources", {}).get("limits")
    if limits:
        v1["resources"] = {"limits": dict(limits)}
    return v1


def _seconds(duration: str) -> str:
    """A proto3 JSON Duration ("600s", "1.5s") as v1's int64 seconds, written as text."""
    return str(int(float(duration.rstrip("s") or 0)))


def _task_spec_v1(template: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [_container_v1(c) for c in template.get("containers", [])]}
    if "maxRetries" in template:
        spec["maxRetries"] = template["maxRetries"]
    if "timeout" in template:
        spec["timeoutSeconds"] = _seconds(template["timeout"])
    if template.get("serviceAccount"):
        spec["serviceAccountName"] = template["serviceAccount"]
    accelerator = template.get("nodeSelector", {}).get("accelerator")
    if accelerator:
        spec["nodeSelector"] = {ACCELERATOR: accelerator}
    return spec


def _template_annotations_v1(template: Mapping[str, Any], job: Mapping[str, Any]) -> dict[str, str]:
    """v1 puts in annotations what v2 has as task template fields."""
    annotations = dict(template.get("annotations", {}))
    for key, v2_key in ((CLIENT_NAME, "client"), (CLIENT_VERSION, "clientVersion")):
        if job.get(v2_key):
            annotations[key] = job[v2_key]
    task = template.get("template", {})
    if task.get("executionEnvironment") in _ENVIRONMENTS:
        annotations[EXECUTION_ENVIRONMENT] = _ENVIRONMENTS[task["executionEnvironment"]]
    access = task.get("vpcAccess", {})
    if access.get("connector"):
        annotations[VPC_CONNECTOR] = access["connector"]
    if access.get("egress") in _EGRESS:
        annotations[VPC_EGRESS] = _EGRESS[access["egress"]]
    if access.get("networkInterfaces"):
        annotations[NETWORK_INTERFACES] = json.dumps(access["networkInterfaces"],
                                                     separators=(",", ":"))
    return annotations


def _job_annotations_v1(job: Mapping[str, Any]) -> dict[str, str]:
    annotations = dict(job.get("annotations", {}))
    for key, v2_key in ((CLIENT_NAME, "client"), (CLIENT_VERSION, "clientVersion"),
                        (CREATOR, "creator"), (LAST_MODIFIER, "lastModifier")):
        if job.get(v2_key):
            annotations[key] = job[v2_key]
    stage = job.get("launchStage")
    if stage and stage != "LAUNCH_STAGE_UNSPECIFIED":
        annotations[LAUNCH_STAGE] = stage
    return annotations


def job_to_v1(job: run_v2.Job) -> dict[str, Any]:
    """A v2 Job in its v1 shape."""
    document = _v2_dict(job)
    project, location = _project_location(job.name)
    template = document.get("template", {})
    execution_spec: dict[str, Any] = {
        "taskCount": template.get("taskCount", 1),
        "template": {"spec": _task_spec_v1(template.get("template", {}))},
    }
    if "parallelism" in template:
        execution_spec["parallelism"] = template["parallelism"]
    execution_template = {"spec": execution_spec}
    template_metadata = _without_empty({
        "labels": template.get("labels", {}),
        "annotations": _template_annotations_v1(template, document),
    })
    if template_metadata:
        execution_template = {"metadata": template_metadata, **execution_template}
    conditions = [c for c in (document.get("terminalCondition"),) if c]
    conditions += document.get("conditions", [])
    status: dict[str, Any] = {
        "observedGeneration": int(document.get("observedGeneration", 0)),
        "conditions": [_condition(c) for c in conditions],
        "executionCount": document.get("executionCount", 0),
        "latestCreatedExecution": _execution_reference(document.get("latestCreatedExecution", {})),
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "Job",
        "metadata": _metadata(document, project, "jobs",
                              {**document.get("labels", {}), LOCATION_LABEL: location},
                              _job_annotations_v1(document)),
        "spec": {"template": execution_template},
        "status": status,
    }


def _execution_reference(reference: Mapping[str, Any]) -> dict[str, Any]:
    v1 = {"name": str(reference.get("name", "")).rsplit("/", 1)[-1],
          "creationTimestamp": reference.get("createTime", ""),
          "completionTimestamp": reference.get("completionTime", ""),
          "deletionTimestamp": reference.get("deleteTime", ""),
          "completionStatus": reference.get("completionStatus", "")}
    result: dict[str, Any] = _without_empty(v1)
    return result


def execution_to_v1(execution: run_v2.Execution) -> dict[str, Any]:
    """A v2 Execution in its v1 shape."""
    document = _v2_dict(execution)
    project, location = _project_location(execution.name)
    annotations = dict(document.get("annotations", {}))
    if document.get("creator"):
        annotations[CREATOR] = document["creator"]
    labels = {**document.get("labels", {}), LOCATION_LABEL: location, JOB_LABEL: execution.job}
    metadata = _metadata(document, project, "executions", labels, annotations)
    metadata["ownerReferences"] = [{
        "kind": "Job", "name": execution.job, "apiVersion": API_VERSION,
        "controller": True, "blockOwnerDeletion": True,
    }]
    spec: dict[str, Any] = {"taskCount": document.get("taskCount", 0),
                            "template": {"spec": _task_spec_v1(document.get("template", {}))}}
    if document.get("parallelism"):
        spec["parallelism"] = document["parallelism"]
    status: dict[str, Any] = {
        "observedGeneration": int(document.get("observedGeneration", 0)),
        "conditions": [_condition(c) for c in document.get("conditions", [])],
    }
    for key in ("runningCount", "succeededCount", "failedCount", "cancelledCount", "retriedCount"):
        status[key] = document.get(key, 0)
    for v2_key, v1_key in (("startTime", "startTime"), ("completionTime", "completionTime"),
                           ("logUri", "logUri")):
        if v2_key in document:
            status[v1_key] = document[v2_key]
    return {"apiVersion": API_VERSION, "kind": "Execution", "metadata": metadata, "spec": spec,
            "status": status}


def running_state(task: Mapping[str, Any]) -> str:
    """The `run.googleapis.com/runningState` of a task (gcloud's task list shows and filters it)."""
    completed: Mapping[str, Any] = next(
        (c for c in task.get("conditions", []) if c.get("type") == "Completed"), {})
    state = completed.get("state")
    if state == "CONDITION_SUCCEEDED":
        return "Succeeded"
    if state == "CONDITION_FAILED":
        return "Cancelled" if completed.get("executionReason") == "CANCELLED" else "Failed"
    return "Running" if "startTime" in task else "Pending"


def task_to_v1(task: run_v2.Task) -> dict[str, Any]:
    """A v2 Task in its v1 shape."""
    document = _v2_dict(task)
    project, location = _project_location(task.name)
    labels = {**document.get("labels", {}), LOCATION_LABEL: location, JOB_LABEL: task.job,
              EXECUTION_LABEL: task.execution, RUNNING_STATE_LABEL: running_state(document),
              TASK_INDEX_LABEL: str(task.index)}
    metadata = _metadata(document, project, "tasks", labels, document.get("annotations", {}))
    metadata["ownerReferences"] = [{
        "kind": "Execution", "name": task.execution, "apiVersion": API_VERSION,
        "controller": True, "blockOwnerDeletion": True,
    }]
    status: dict[str, Any] = {
        "index": task.index,
        "retried": document.get("retried", 0),
        "observedGeneration": int(document.get("observedGeneration", 0)),
        "conditions": [_condition(c) for c in document.get("conditions", [])],
    }
    for key in ("startTime", "completionTime", "logUri"):
        if key in document:
            status[key] = document[key]
    if "lastAttemptResult" in document:
        attempt = document["lastAttemptResult"]
        result: dict[str, Any] = {"status": dict(attempt.get("status", {}))}
        if "exitCode" in attempt:
            result["exitCode"] = attempt["exitCode"]
        status["lastAttemptResult"] = result
    return {"apiVersion": API_VERSION, "kind": "Task", "metadata": metadata,
            "spec": _task_spec_v1(document), "status": status}


def _project_location(name: str) -> tuple[str, str]:
    parts = name.split("/")
    return parts[1], parts[3]


# ------------------------------------------------------------------------------ v1 → v2


class _Body:
    """One v1 body being read: each key taken is known; what is left over is refused."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise invalid(f"Invalid JSON payload received. '{path}' must be an object.")
        self.data = dict(data)
        self.path = path

    def take(self, key: str, default: Any = None) -> Any:
        return self.data.pop(key, default)

    def section(self, key: str) -> _Body:
        return _Body(self.take(key) or {}, f"{self.path}.{key}")

    def mapping(self, key: str) -> dict[str, str]:
        value = self.take(key) or {}
        if not isinstance(value, Mapping):
            raise invalid(f"Invalid value at '{self.path}.{key}': must be a map of strings.")
        return {str(k): str(v) for k, v in value.items()}

    def done(self) -> None:
        for key in self.data:
            raise _unknown(f"{self.path}.{key}")


def job_from_v1(document: Any, *, location: str | None) -> tuple[str, str, str, run_v2.Job, str]:
    """A v1 Job body → (project, location, job id, v2 Job, etag); INVALID_ARGUMENT naming the
    v1 path for what cannot be translated. `location` is the host's region, if any."""
    body = _Body(document, "job")
    api_version = body.take("apiVersion", API_VERSION)
    kind = body.take("kind", "Job")
    if api_version != API_VERSION or kind != "Job":
        raise invalid(f"Invalid apiVersion/kind {api_version!r}/{kind!r}: expected "
                       f"{API_VERSION!r}/'Job'.")
    body.take("status")  # output only
    metadata = body.section("metadata")
    job_id = str(metadata.take("name", ""))
    project = str(metadata.take("namespace", ""))
    labels = metadata.mapping("labels")
    label_location = labels.pop(LOCATION_LABEL, None)
    if location is not None and label_location not in (None, location):
        raise invalid(f"Invalid label {LOCATION_LABEL!r}: {label_location!r} is not the "
                       f"region of this endpoint ({location!r}).")
    annotations = metadata.mapping("annotations")
    etag = str(metadata.take("resourceVersion", ""))
    for output_only in ("uid", "generation", "creationTimestamp", "selfLink", "deletionTimestamp",
                        "ownerReferences", "finalizers"):
        metadata.take(output_only)
    metadata.done()
    job = run_v2.Job(labels=labels)
    job.client = annotations.pop(CLIENT_NAME, "")
    job.client_version = annotations.pop(CLIENT_VERSION, "")
    stage = annotations.pop(LAUNCH_STAGE, None)
    if stage is not None:
        try:
            job.launch_stage = launch_stage_pb2.LaunchStage.Value(stage)
        except ValueError:
            raise invalid(f"Invalid value at 'job.metadata.annotations[{LAUNCH_STAGE!r}]': "
                           f"{stage!r} is not a launch stage.") from None
    for output_only in (CREATOR, LAST_MODIFIER, "run.googleapis.com/operation-id"):
        annotations.pop(output_only, None)
    job.annotations = annotations
    spec = body.section("spec")
    for token in ("startExecutionToken", "runExecutionToken"):
        if spec.take(token):
            raise invalid(f"Invalid value at 'job.spec.{token}': execution tokens are not "
                           "supported by the gcpjobs emulator; run the job with :run.")
    template = spec.section("template")
    spec.done()
    job.template = _execution_template_from_v1(template)
    body.done()
    return project, location or label_location or "", job_id, job, etag


def _execution_template_from_v1(template: _Body) -> run_v2.ExecutionTemplate:
    metadata = template.section("metadata")
    labels = metadata.mapping("labels")
    labels.pop(NONCE_LABEL, None)
    annotations = metadata.mapping("annotations")
    for key in ("name", "namespace", "uid", "generation", "creationTimestamp", "resourceVersion"):
        metadata.take(key)
    metadata.done()
    spec = template.section("spec")
    template.done()
    execution = run_v2.ExecutionTemplate(labels=labels)
    for key, field in (("parallelism", "parallelism"), ("taskCount", "task_count")):
        value = spec.take(key)
        if value is not None:
            setattr(execution, field, _integer(value, f"{spec.path}.{key}"))
    task_template = spec.section("template")
    spec.done()
    task_spec = task_template.section("spec")
    task_template.take("metadata")
    task_template.done()
    task = _task_template_from_v1(task_spec)
    # Client annotations belong to the job in v2; v1 repeats them on the template.
    annotations.pop(CLIENT_NAME, None)
    annotations.pop(CLIENT_VERSION, None)
    environment = annotations.pop(EXECUTION_ENVIRONMENT, None)
    if environment is not None:
        names_by_value = {v: k for k, v in _ENVIRONMENTS.items()}
        if environment not in names_by_value:
            raise invalid(f"Invalid value at '{template.path}.metadata.annotations"
                           f"[{EXECUTION_ENVIRONMENT!r}]': give gen1 or gen2.")
        task.execution_environment = names_by_value[environment]
    _vpc_access_from_v1(task, annotations, f"{template.path}.metadata.annotations")
    execution.annotations = annotations
    execution.template = task
    return execution


def _vpc_access_from_v1(task: run_v2.TaskTemplate, annotations: dict[str, str], path: str) -> None:
    # Templates (prefect-gcp's default job body) leave an unset connector as "": not set.
    connector = annotations.pop(VPC_CONNECTOR, None) or None
    egress = annotations.pop(VPC_EGRESS, None) or None
    interfaces = annotations.pop(NETWORK_INTERFACES, None) or None
    if connector is None and egress is None and interfaces is None:
        return
    access = run_v2.VpcAccess(connector=connector or "")
    if egress is not None:
        names_by_value = {v: k for k, v in _EGRESS.items()}
        if egress not in names_by_value:
            raise invalid(f"Invalid value at '{path}[{VPC_EGRESS!r}]': give all-traffic or "
                           "private-ranges-only.")
        access.egress = names_by_value[egress]
    if interfaces is not None:
        try:
            parsed = json.loads(interfaces)
            access.network_interfaces = [run_v2.VpcAccess.NetworkInterface(
                network=item.get("network", ""), subnetwork=item.get("subnetwork", ""),
                tags=list(item.get("tags", []))) for item in parsed]
        except (ValueError, TypeError, AttributeError):
            raise invalid(f"Invalid value at '{path}[{NETWORK_INTERFACES!r}]': give a JSON "
                           "list of {network, subnetwork, tags}.") from None
    task.vpc_access = access


def _integer(value: Any, path: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid value at '{path}' (TYPE_INT32), {json.dumps(value)}") from None


def _task_template_from_v1(spec: _Body) -> run_v2.TaskTemplate:
    task = run_v2.TaskTemplate()
    containers = spec.take("containers") or []
    if not isinstance(containers, list):
        raise invalid(f"Invalid value at '{spec.path}.containers': must be a list.")
    task.containers = [_container_from_v1(_Body(c, f"{spec.path}.containers[{i}]"))
                       for i, c in enumerate(containers)]
    retries = spec.take("maxRetries")
    if retries is not None:
        task.max_retries = _integer(retries, f"{spec.path}.maxRetries")
    timeout = spec.take("timeoutSeconds")
    if timeout is not None:
        task.timeout = timedelta(seconds=_integer(timeout, f"{spec.path}.timeoutSeconds"))
    task.service_account = str(spec.take("serviceAccountName", "") or "")
    selector = spec.mapping("nodeSelector")
    accelerator = selector.pop(ACCELERATOR, None)
    for key in selector:
        raise invalid(f"Invalid value at '{spec.path}.nodeSelector': only {ACCELERATOR!r} is "
                       f"supported, not {key!r}.")
    if accelerator:
        task.node_selector = run_v2.NodeSelector(accelerator=accelerator)
    if spec.take("volumes"):
        raise invalid(f"Invalid value at '{spec.path}.volumes': volumes are not supported by "
                       "the gcpjobs emulator (it runs the command on this host).")
    spec.done()
    return task


def _container_from_v1(container: _Body) -> run_v2.Container:
    translated = run_v2.Container(
        name=str(container.take("name", "") or ""),
        image=str(container.take("image", "") or ""),
        command=[str(item) for item in container.take("command") or []],
        args=[str(item) for item in container.take("args") or []],
        working_dir=str(container.take("workingDir", "") or ""),
    )
    translated.env = _env_from_v1(container.take("env") or [], f"{container.path}.env")
    resources = container.section("resources")
    limits = resources.mapping("limits")
    # v1's ResourceRequirements also has `requests` (prefect-gcp's `cloud-run` job template
    # sends `requests: {cpu, memory}`, often `{}`); Cloud Run takes it, but v2 has no such
    # field to hold it and the emulator enforces no resources, so it is checked, then dropped.
    resources.mapping("requests")
    resources.done()
    if limits:
        translated.resources = run_v2.ResourceRequirements(limits=limits)
    ports = container.take("ports")
    if ports:
        translated.ports = [run_v2.ContainerPort(name=p.get("name", ""),
                                                 container_port=int(p.get("containerPort", 0)))
                            for p in ports]
    if container.take("volumeMounts"):
        raise invalid(f"Invalid value at '{container.path}.volumeMounts': volumes are not "
                       "supported by the gcpjobs emulator.")
    container.done()
    return translated


def _env_from_v1(variables: Any, path: str) -> list[run_v2.EnvVar]:
    if not isinstance(variables, list):
        raise invalid(f"Invalid value at '{path}': must be a list.")
    env = []
    for index, item in enumerate(variables):
        variable = _Body(item, f"{path}[{index}]")
        name = str(variable.take("name", ""))
        source = variable.section("valueFrom")
        ref = source.section("secretKeyRef")
        value = variable.take("value")
        variable.done()
        if ref.data:
            secret = str(ref.take("name", ""))
            version = str(ref.take("key", "") or "latest")
            ref.take("optional")
            ref.done()
            source.done()
            env.append(run_v2.EnvVar(name=name, value_source=run_v2.EnvVarSource(
                secret_key_ref=run_v2.SecretKeySelector(secret=secret, version=version))))
            continue
        source.done()
        env.append(run_v2.EnvVar(name=name, value=str(value) if value is not None else ""))
    return env


def overrides_from_v1(document: Any) -> run_v2.RunJobRequest.Overrides | None:
    """A v1 RunJobRequest body's overrides (containerOverrides, taskCount, timeoutSeconds)."""
    body = _Body(document, "runJobRequest")
    overrides_data = body.take("overrides")
    body.done()
    if not overrides_data:
        return None
    overrides = _Body(overrides_data, "runJobRequest.overrides")
    result = run_v2.RunJobRequest.Overrides()
    for index, item in enumerate(overrides.take("containerOverrides") or []):
        override = _Body(item, f"runJobRequest.overrides.containerOverrides[{index}]")
        translated = run_v2.RunJobRequest.Overrides.ContainerOverride(
            name=str(override.take("name", "") or ""),
            args=[str(arg) for arg in override.take("args") or []],
            clear_args=bool(override.take("clearArgs", False)),
        )
        translated.env = _env_from_v1(override.take("env") or [], f"{override.path}.env")
        override.done()
        result.container_overrides.append(translated)
    task_count = overrides.take("taskCount")
    if task_count is not None:
        result.task_count = _integer(task_count, "runJobRequest.overrides.taskCount")
    timeout = overrides.take("timeoutSeconds")
    if timeout is not None:
        result.timeout = timedelta(seconds=_integer(timeout, "runJobRequest.overrides.timeoutSeconds"))
    overrides.done()
    return result


# ------------------------------------------------------------------------------ selectors


@dataclass(frozen=True)
class _Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator == "exists":
            return value is not None
        if self.operator == "!":
            return value is None
        if self.operator in ("=", "in"):
            return value in self.values
        return value not in self.values  # "!=", "notin": a missing label matches, as in Kubernetes


_REQUIREMENT = re.compile(
    r"\s*(?:(?P<not>!)\s*(?P<absent>[^\s,=!()]+)"
    r"|(?P<key>[^\s,=!()]+)\s*(?:(?P<op>==|=|!=)\s*(?P<value>[^\s,()]*)"
    r"|\s(?P<set>in|notin)\s*\((?P<values>[^()]*)\))?)\s*(?:,|$)")


def parse_label_selector(selector: str) -> list[_Requirement]:
    """A Kubernetes label selector (`a = b`, `a != b`, `a in (b, c)`, `a notin (b)`, `a`,
    `!a`, joined by commas); INVALID_ARGUMENT for anything else."""
    requirements: list[_Requirement] = []
    position = 0
    text = selector.strip()
    while position < len(text):
        match = _REQUIREMENT.match(text, position)
        if match is None or match.end() == position:
            raise invalid(f"Invalid labelSelector {json.dumps(selector[:200])}: unable to parse "
                           f"requirement at position {position}.")
        position = match.end()
        if match["absent"]:
            requirements.append(_Requirement(match["absent"], "!", frozenset()))
        elif match["op"]:
            operator = "!=" if match["op"] == "!=" else "="
            requirements.append(_Requirement(match["key"], operator, frozenset({match["value"]})))
        elif match["set"]:
            values = frozenset(v.strip() for v in match["values"].split(",") if v.strip())
            requirements.append(_Requirement(match["key"], match["set"], values))
        else:
            requirements.append(_Requirement(match["key"], "exists", frozenset()))
    return requirements


def _selected(requirements: list[_Requirement], resource: Mapping[str, Any]) -> bool:
    labels = resource.get("metadata", {}).get("labels", {})
    return all(requirement.matches(labels) for requirement in requirements)


def _equal_to(requirements: list[_Requirement], key: str) -> str | None:
    """The one value `key` must have, when the selector says so (to ask v2 for less)."""
    for requirement in requirements:
        if requirement.key == key and requirement.operator in ("=", "in") \
                and len(requirement.values) == 1:
            return next(iter(requirement.values))
    return None


# ------------------------------------------------------------------------------ the API


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


class CloudRunV1:
    """The v1 endpoints of one emulator, over its v2 Cloud Run service."""

    def __init__(self, call: Call, locations: Locations) -> None:
        self._call = call
        self._locations = locations

    def handle(self, http_method: str, path: str, query: str, body: Any,
               region: str | None) -> Reply:
        """Answer one v1 request (`path` under PREFIX, `body` parsed JSON or None); raises
        ServiceError for what the service refuses."""
        rest = path[len(PREFIX):]
        known_path = False
        for method, pattern, handler in _PATHS:
            match = pattern.fullmatch(rest)
            if match is None:
                continue
            known_path = True
            if method != http_method:
                continue
            parameters = {key: values[-1] for key, values in
                          parse_qs(query, keep_blank_values=True).items()
                          if key not in _IGNORED_QUERY}
            project = match.group(1)
            result: Reply = getattr(self, handler)(project, *match.groups()[1:],
                                                   region=region, query=parameters, body=body)
            return result
        if known_path:
            raise ServiceError(grpc.StatusCode.UNIMPLEMENTED,
                               f"Method {http_method} is not supported for {path[:200]}.")
        raise ServiceError(grpc.StatusCode.NOT_FOUND, f"The requested URL {path[:200]} was not found.")

    # ------------------------------------------------------------------------ helpers

    def _regions(self, project: str, region: str | None) -> list[str]:
        return [region] if region is not None else self._locations(project)

    def _find(self, project: str, region: str | None, name_in: Callable[[str], str],
              method: str, request_type: Any) -> Any:
        """Get a resource by its v1 name in the host's region or, on the global host, in the
        first region that has it."""
        regions = self._regions(project, region)
        for location in regions:
            try:
                return self._call(method, request_type(name=name_in(location)))
            except ServiceError as error:
                if error.code != grpc.StatusCode.NOT_FOUND or location == regions[-1]:
                    raise
        raise ServiceError(grpc.StatusCode.NOT_FOUND,
                           f"Resource '{name_in('-').rsplit('/', 1)[-1]}' does not exist in "
                           f"project '{project}'.")

    @staticmethod
    def _dry_run(query: dict[str, str]) -> bool:
        value = query.pop("dryRun", "")
        if value not in ("", "all"):
            raise invalid(f"Invalid dryRun {value!r}: the only value is 'all'.")
        return value == "all"

    def _all_pages(self, method: str, request: Any, field: str) -> Iterator[Any]:
        while True:
            response = self._call(method, request)
            yield from getattr(response, field)
            if not response.next_page_token:
                return
            request.page_token = response.next_page_token

    @staticmethod
    def _list(collection: str, items: list[dict[str, Any]], query: dict[str, str],
              scope: str) -> Reply:
        limit = _integer(query.pop("limit", "0") or "0", "limit")
        token = query.pop("continue", "")
        query.pop("labelSelector", None)
        for key in query:
            raise invalid(f"Invalid JSON payload received. Unknown name \"{key}\": Cannot bind "
                           "query parameter.")
        try:
            if limit == 0 and not token:
                page: paging.Page[dict[str, Any]] = paging.Page(items, "")
            else:
                page = paging.page_of(items, page_size=limit, page_token=token, scope=scope)
        except (paging.InvalidPageToken, paging.InvalidPageSize) as error:
            raise invalid(str(error)) from None
        body: dict[str, Any] = {"apiVersion": API_VERSION, "kind": _LIST_KINDS[collection],
                                "metadata": {}, "items": page.items}
        if page.next_page_token:
            body["metadata"]["continue"] = page.next_page_token
        return Reply(200, body)

    @staticmethod
    def _selector(query: Mapping[str, str]) -> list[_Requirement]:
        return parse_label_selector(query.get("labelSelector", ""))

    # ------------------------------------------------------------------------ jobs

    def create_job(self, project: str, *, region: str | None, query: dict[str, str],
                   body: Any) -> Reply:
        validate_only = self._dry_run(query)
        body_project, location, job_id, job, _ = job_from_v1(body, location=region)
        if body_project and body_project != project:
            raise invalid(f"Invalid metadata.namespace {body_project!r}: the request is for "
                           f"namespace {project!r}.")
        if not location:
            raise invalid("This is the global endpoint: create the job on a regional one "
                           f"(REGION-HOST:PORT), or give the label {LOCATION_LABEL!r}.")
        operation = self._call("Jobs.CreateJob", run_v2.CreateJobRequest(
            parent=f"projects/{project}/locations/{location}", job=job, job_id=job_id,
            validate_only=validate_only))
        return Reply(200, job_to_v1(_unpack(operation.response, run_v2.Job)))

    def list_jobs(self, project: str, *, region: str | None, query: dict[str, str],
                  body: Any) -> Reply:
        selector = self._selector(query)
        items = []
        for location in self._regions(project, region):
            request = run_v2.ListJobsRequest(parent=f"projects/{project}/locations/{location}",
                                             page_size=paging.MAX_PAGE_SIZE)
            items += [job_to_v1(job) for job in self._all_pages("Jobs.ListJobs", request, "jobs")]
        items = [item for item in items if _selected(selector, item)]
        return self._list("jobs", items, query, f"v1/{project}/jobs/{region}/"
                          f"{query.get('labelSelector', '')}")

    def get_job(self, project: str, job_id: str, *, region: str | None, query: dict[str, str],
                body: Any) -> Reply:
        job = self._find(project, region, lambda loc: f"projects/{project}/locations/{loc}/jobs/{job_id}",
                         "Jobs.GetJob", run_v2.GetJobRequest)
        return Reply(200, job_to_v1(job))

    def replace_job(self, project: str, job_id: str, *, region: str | None,
                    query: dict[str, str], body: Any) -> Reply:
        validate_only = self._dry_run(query)
        body_project, location, body_id, job, etag = job_from_v1(body, location=region)
        if body_id and body_id != job_id:
            raise invalid(f"Invalid metadata.name {body_id!r}: the request is for job {job_id!r}.")
        if not location:
            current = self._find(project, region,
                                 lambda loc: f"projects/{project}/locations/{loc}/jobs/{job_id}",
                                 "Jobs.GetJob", run_v2.GetJobRequest)
            location = _project_location(current.name)[1]
        job.name = f"projects/{body_project or project}/locations/{location}/jobs/{job_id}"
        if etag:
            job.etag = f'"{etag}"'
        operation = self._call("Jobs.UpdateJob", run_v2.UpdateJobRequest(
            job=job, validate_only=validate_only))
        return Reply(200, job_to_v1(_unpack(operation.response, run_v2.Job)))

    def delete_job(self, project: str, job_id: str, *, region: str | None,
                   query: dict[str, str], body: Any) -> Reply:
        validate_only = self._dry_run(query)
        job = self._find(project, region, lambda loc: f"projects/{project}/locations/{loc}/jobs/{job_id}",
                         "Jobs.GetJob", run_v2.GetJobRequest)
        self._call("Jobs.DeleteJob", run_v2.DeleteJobRequest(name=job.name,
                                                             validate_only=validate_only))
        return Reply(200, _success("jobs", job_id, job.uid))

    def run_job(self, project: str, job_id: str, *, region: str | None, query: dict[str, str],
                body: Any) -> Reply:
        overrides = overrides_from_v1(body or {})
        job = self._find(project, region, lambda loc: f"projects/{project}/locations/{loc}/jobs/{job_id}",
                         "Jobs.GetJob", run_v2.GetJobRequest)
        request = run_v2.RunJobRequest(name=job.name)
        if overrides is not None:
            request.overrides = overrides
        operation = self._call("Jobs.RunJob", request)
        return Reply(200, execution_to_v1(_unpack(operation.metadata, run_v2.Execution)))

    # ------------------------------------------------------------------------ executions

    @staticmethod
    def _execution_name(project: str, location: str, execution_id: str) -> str:
        job_id = execution_id.rsplit("-", 1)[0] if "-" in execution_id else execution_id
        return f"projects/{project}/locations/{location}/jobs/{job_id}/executions/{execution_id}"

    def _execution(self, project: str, execution_id: str, region: str | None) -> run_v2.Execution:
        execution: run_v2.Execution = self._find(
            project, region, lambda loc: self._execution_name(project, loc, execution_id),
            "Executions.GetExecution", run_v2.GetExecutionRequest)
        return execution

    def list_executions(self, project: str, *, region: str | None, query: dict[str, str],
                        body: Any) -> Reply:
        selector = self._selector(query)
        job_id = _equal_to(selector, JOB_LABEL) or "-"
        items = []
        for location in self._regions(project, region):
            request = run_v2.ListExecutionsRequest(
                parent=f"projects/{project}/locations/{location}/jobs/{job_id}",
                page_size=paging.MAX_PAGE_SIZE)
            items += [execution_to_v1(execution) for execution in
                      self._all_pages("Executions.ListExecutions", request, "executions")]
        items = [item for item in items if _selected(selector, item)]
        return self._list("executions", items, query,
                          f"v1/{project}/executions/{region}/{query.get('labelSelector', '')}")

    def get_execution(self, project: str, execution_id: str, *, region: str | None,
                      query: dict[str, str], body: Any) -> Reply:
        return Reply(200, execution_to_v1(self._execution(project, execution_id, region)))

    def cancel_execution(self, project: str, execution_id: str, *, region: str | None,
                         query: dict[str, str], body: Any) -> Reply:
        execution = self._execution(project, execution_id, region)
        operation = self._call("Executions.CancelExecution",
                               run_v2.CancelExecutionRequest(name=execution.name))
        return Reply(200, execution_to_v1(_unpack(operation.metadata, run_v2.Execution)))

    def delete_execution(self, project: str, execution_id: str, *, region: str | None,
                         query: dict[str, str], body: Any) -> Reply:
        validate_only = self._dry_run(query)
        execution = self._execution(project, execution_id, region)
        self._call("Executions.DeleteExecution", run_v2.DeleteExecutionRequest(
            name=execution.name, validate_only=validate_only))
        return Reply(200, _success("executions", execution_id, execution.uid))

    # ------------------------------------------------------------------------ tasks

    def list_tasks(self, project: str, *, region: str | None, query: dict[str, str],
                   body: Any) -> Reply:
        selector = self._selector(query)
        execution_id = _equal_to(selector, EXECUTION_LABEL)
        if execution_id is not None:
            try:
                executions = [self._execution(project, execution_id, region)]
            except ServiceError as error:
                if error.code != grpc.StatusCode.NOT_FOUND:
                    raise
                executions = []
        else:
            executions = []
            for location in self._regions(project, region):
                request = run_v2.ListExecutionsRequest(
                    parent=f"projects/{project}/locations/{location}/jobs/-",
                    page_size=paging.MAX_PAGE_SIZE)
                executions += list(self._all_pages("Executions.ListExecutions", request,
                                                   "executions"))
        items = []
        for execution in executions:
            request = run_v2.ListTasksRequest(parent=execution.name,
                                              page_size=paging.MAX_PAGE_SIZE)
            items += [task_to_v1(task) for task in self._all_pages("Tasks.ListTasks", request,
                                                                   "tasks")]
        items = [item for item in items if _selected(selector, item)]
        return self._list("tasks", items, query,
                          f"v1/{project}/tasks/{region}/{query.get('labelSelector', '')}")

    def get_task(self, project: str, task_id: str, *, region: str | None, query: dict[str, str],
                 body: Any) -> Reply:
        execution_id, index = names.split_task_id(task_id)
        execution = self._execution(project, execution_id, region)
        task = self._call("Tasks.GetTask", run_v2.GetTaskRequest(
            name=task_name(execution.name, index)))
        return Reply(200, task_to_v1(task))


def _success(kind: str, name: str, uid: str) -> dict[str, Any]:
    """The Kubernetes Status a v1 delete answers with."""
    return {"apiVersion": "v1", "kind": "Status", "status": "Success",
            "details": {"name": name, "group": "run.googleapis.com", "kind": kind, "uid": uid}}
