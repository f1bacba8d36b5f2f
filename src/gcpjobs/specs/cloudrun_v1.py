"""Cloud Run v1 (Knative-style) Job bodies -> `CloudRunJob`.

Users have such bodies from `gcloud run jobs describe --format=yaml` and feed them to
`gcloud run jobs replace`. The translation follows reference §4.8 (google-runtime-contract.md):
v1 field -> v2 field. Anything that has no CloudRunJob field is refused with an error that
names the v1 path (`spec.template.spec.template.spec.volumes`), never dropped silently: a job
that silently lost its volume or its second container would run, and fail, differently.
Output-only parts (`status`, `metadata.uid`, annotations Cloud Run writes itself) are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from gcpjobs.errors import SpecError
from gcpjobs.specs.base import closest, field_path, join_path, type_name
from gcpjobs.specs.cloudrun import CloudRunJob, suggest_job_name
from gcpjobs.specs.labels import is_reserved_label

API_VERSION = "run.googleapis.com/v1"
KIND = "Job"

LOCATION_LABEL = "cloud.googleapis.com/location"
LAUNCH_STAGE = "run.googleapis.com/launch-stage"
EXECUTION_ENVIRONMENT = "run.googleapis.com/execution-environment"
VPC_CONNECTOR = "run.googleapis.com/vpc-access-connector"
VPC_EGRESS = "run.googleapis.com/vpc-access-egress"
NETWORK_INTERFACES = "run.googleapis.com/network-interfaces"
ACCELERATOR = "run.googleapis.com/accelerator"
GPU_LIMIT = "nvidia.com/gpu"

# Written by Cloud Run or by the client that last deployed the job; they describe the
# resource, not the job to run, and `gcloud run jobs describe` output is full of them.
_OUTPUT_ANNOTATIONS = frozenset({
    "run.googleapis.com/creator", "run.googleapis.com/lastModifier",
    "run.googleapis.com/operation-id", "run.googleapis.com/client-name",
    "run.googleapis.com/client-version", "client.knative.dev/user-image",
    "serving.knative.dev/creator", "serving.knative.dev/lastModifier",
})
_OUTPUT_METADATA = ("uid", "resource_version", "generation", "creation_timestamp", "self_link",
                    "deletion_timestamp", "owner_references")

_TOP_KEYS = ("api_version", "kind", "metadata", "spec", "status")
_METADATA_KEYS = ("name", "namespace", "labels", "annotations", *_OUTPUT_METADATA)
_JOB_SPEC_KEYS = ("template",)
_TEMPLATE_KEYS = ("metadata", "spec")
_TEMPLATE_METADATA_KEYS = ("labels", "annotations", "name", *_OUTPUT_METADATA)
_EXECUTION_SPEC_KEYS = ("parallelism", "task_count", "template")
_TASK_SPEC_KEYS = ("containers", "timeout_seconds", "service_account_name", "max_retries",
                   "node_selector")
_CONTAINER_KEYS = ("name", "image", "command", "args", "env", "resources")
_RESOURCES_KEYS = ("limits",)
_ENV_KEYS = ("name", "value", "value_from")
_NOT_TRANSLATED = {
    "volumes": "volumes cannot be translated; gcpjobs jobs have no volumes, remove them",
    "volume_mounts": "volume mounts cannot be translated; remove them",
    "start_execution_token": "cannot be translated; gcpjobs starts the execution itself, remove it",
    "run_execution_token": "cannot be translated; gcpjobs starts the execution itself, remove it",
    "requests": "resource requests cannot be translated; Cloud Run uses limits only, remove it",
}


def is_v1_job_body(document: Mapping[str, Any]) -> bool:
    """Whether `document` is a v1 Job (`apiVersion: run.googleapis.com/v1`, `kind: Job`)."""
    return document.get("apiVersion", document.get("api_version")) == API_VERSION \
        and document.get("kind") == KIND


def _key_path(path: str, key: Any) -> str:
    """`spec` + `run.googleapis.com/x` -> `spec['run.googleapis.com/x']`; plain keys dotted."""
    return join_path(path, field_path([str(key)])) or str(key)


def _snake(key: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() else char for char in key)


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(word.title() for word in rest)


class _Reader:
    """The CloudRunJob fields read from a v1 body, and the v1 path each came from."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.origins: dict[str, str] = {}

    def put(self, spec_field: str, value: Any, origin: str) -> None:
        self.fields[spec_field] = value
        self.origins[spec_field] = origin

    def error(self, exc: SpecError) -> SpecError:
        """`exc` with its CloudRunJob field replaced by the v1 path it was read from."""
        field = exc.field or ""
        for spec_field in sorted(self.origins, key=len, reverse=True):
            if field == spec_field or field.startswith((f"{spec_field}.", f"{spec_field}[")):
                return SpecError(exc.reason,
                                 field=self.origins[spec_field] + field[len(spec_field):])
        return exc


def _section(data: Any, path: str, known: Sequence[str]) -> dict[str, tuple[Any, str]]:
    """`data`'s entries by snake_case key, each with its v1 path; SpecError for unknown keys."""
    if not isinstance(data, Mapping):
        raise SpecError(f"must be a mapping, not {type_name(data)}", field=path or None)
    section: dict[str, tuple[Any, str]] = {}
    for key, value in data.items():
        snake = _snake(str(key))
        where = _key_path(path, key)
        if snake in _NOT_TRANSLATED:
            raise SpecError(_NOT_TRANSLATED[snake], field=where)
        if snake not in known:
            raise SpecError(_unknown_key_message(str(key), known), field=where)
        section[snake] = (value, where)
    return section


def _unknown_key_message(key: str, known: Sequence[str]) -> str:
    names = [_camel(name) for name in known]
    close = closest(key, names, n=1)
    if close:
        return f"is not a field gcpjobs can translate; did you mean {close[0]!r}?"
    return f"cannot be translated (gcpjobs reads only {', '.join(names)} here); remove it"


def _mapping(data: Any, path: str) -> Mapping[Any, Any]:
    if not isinstance(data, Mapping):
        raise SpecError(f"must be a mapping, not {type_name(data)}", field=path)
    return data


def v1_job_to_cloud_run_job(
    document: Mapping[str, Any], default_name: str | None = None
) -> CloudRunJob:
    """Translate a v1 Job body; SpecError naming the v1 field for what cannot be translated."""
    reader = _Reader()
    top = _section(document, "", _TOP_KEYS)
    if "metadata" in top:
        _read_metadata(reader, *top["metadata"])
    if "name" not in reader.fields and default_name:
        # A file name like `nightly_export.yaml` is not a valid job id; the user did not
        # write it as one, so it is made valid rather than refused.
        reader.fields["name"] = suggest_job_name(default_name)
    if "spec" not in top:
        raise SpecError("is required; describe the job's template", field="spec")
    job_spec = _section(*top["spec"], _JOB_SPEC_KEYS)
    if "template" not in job_spec:
        raise SpecError("is required; describe the execution template", field="spec.template")
    _read_execution_template(reader, *job_spec["template"])
    try:
        return CloudRunJob.model_validate(reader.fields)
    except SpecError as exc:
        raise reader.error(exc) from None


def _read_metadata(reader: _Reader, data: Any, path: str) -> None:
    metadata = _section(data, path, _METADATA_KEYS)
    if "name" in metadata:
        reader.put("name", *metadata["name"])
    if "namespace" in metadata:
        # The v1 namespace is the project (id or number).
        reader.put("project", *metadata["namespace"])
    if "labels" in metadata:
        labels, where = metadata["labels"]
        labels = dict(_mapping(labels, where))
        if LOCATION_LABEL in labels:
            reader.put("region", labels.pop(LOCATION_LABEL),
                       _key_path(where, LOCATION_LABEL))
        _put_labels(reader, labels, where)
    if "annotations" in metadata:
        annotations, where = metadata["annotations"]
        for key, value in _mapping(annotations, where).items():
            key_path = _key_path(where, key)
            if key == LAUNCH_STAGE:
                reader.put("launch_stage", value, key_path)
            elif key not in _OUTPUT_ANNOTATIONS:
                raise _annotation_error(key_path)


def _put_labels(reader: _Reader, labels: Mapping[Any, Any], path: str) -> None:
    """Adds labels; job and template labels become one set (gcpjobs sets both the same)."""
    merged: dict[Any, Any] = dict(reader.fields.get("labels", {}))
    for key, value in labels.items():
        if is_reserved_label(str(key)):
            continue  # set by gcpjobs on an earlier submission; set afresh on this one
        if key in merged and merged[key] != value:
            raise SpecError(f"label {key!r} is {value!r} here but {merged[key]!r} on the job; "
                            "gcpjobs gives the job and its executions the same labels, make "
                            "them agree", field=path)
        merged[key] = value
    if merged:
        reader.put("labels", merged, reader.origins.get("labels", path))


def _annotation_error(path: str) -> SpecError:
    return SpecError("this annotation cannot be translated (gcpjobs maps launch-stage, "
                     "execution-environment, vpc-access-connector, vpc-access-egress and "
                     "network-interfaces); remove it", field=path)


def _read_execution_template(reader: _Reader, data: Any, path: str) -> None:
    template = _section(data, path, _TEMPLATE_KEYS)
    if "metadata" in template:
        metadata = _section(*template["metadata"], _TEMPLATE_METADATA_KEYS)
        if "labels" in metadata:
            labels, where = metadata["labels"]
            _put_labels(reader, _mapping(labels, where), where)
        if "annotations" in metadata:
            _read_template_annotations(reader, *metadata["annotations"])
    if "spec" not in template:
        raise SpecError("is required; describe the tasks", field=join_path(path, "spec"))
    execution_data, execution_path = template["spec"]
    execution = _section(execution_data, execution_path, _EXECUTION_SPEC_KEYS)
    for key in ("parallelism", "task_count"):
        if key in execution:
            reader.put(key, *execution[key])
    if "template" not in execution:
        raise SpecError("is required; describe the task template",
                        field=join_path(execution_path, "template"))
    task_data, task_path = execution["template"]
    task_template = _section(task_data, task_path, _TEMPLATE_KEYS)
    if "metadata" in task_template and task_template["metadata"][0]:
        raise SpecError("task template metadata cannot be translated; remove it",
                        field=task_template["metadata"][1])
    if "spec" not in task_template:
        raise SpecError("is required; describe the container", field=join_path(task_path, "spec"))
    _read_task_spec(reader, *task_template["spec"])


def _read_template_annotations(reader: _Reader, data: Any, path: str) -> None:
    for key, value in _mapping(data, path).items():
        where = _key_path(path, key)
        if key == EXECUTION_ENVIRONMENT:
            reader.put("execution_environment", value, where)
        elif key == VPC_CONNECTOR:
            reader.put("vpc_connector", value, where)
        elif key == VPC_EGRESS:
            reader.put("vpc_egress", value, where)
        elif key == NETWORK_INTERFACES:
            _read_network_interfaces(reader, value, where)
        elif key not in _OUTPUT_ANNOTATIONS:
            raise _annotation_error(where)


def _read_network_interfaces(reader: _Reader, value: Any, path: str) -> None:
    """`'[{"network":"default","subnetwork":"default","tags":["a"]}]'` (JSON in a string)."""
    try:
        interfaces = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        raise SpecError("must be a JSON list like [{\"network\": \"NET\", \"subnetwork\": "
                        "\"SUBNET\"}]", field=path) from None
    if not isinstance(interfaces, list) or len(interfaces) != 1 \
            or not isinstance(interfaces[0], Mapping):
        raise SpecError("must list exactly one network interface (Cloud Run supports only "
                        "one)", field=path)
    interface = interfaces[0]
    unknown = set(interface) - {"network", "subnetwork", "tags"}
    if unknown:
        raise SpecError(f"{sorted(unknown)[0]!r} cannot be translated; give network, "
                        "subnetwork and tags only", field=path)
    for key, spec_field in (("network", "network"), ("subnetwork", "subnetwork"),
                            ("tags", "network_tags")):
        if key in interface:
            reader.put(spec_field, interface[key], path)


def _read_task_spec(reader: _Reader, data: Any, path: str) -> None:
    task = _section(data, path, _TASK_SPEC_KEYS)
    # `timeoutSeconds` is an int64, which JSON writes as text ("3600"); gcpjobs durations
    # read both 3600 and "3600" as seconds.
    for key, spec_field in (("timeout_seconds", "timeout"), ("max_retries", "max_retries"),
                            ("service_account_name", "service_account")):
        if key in task:
            reader.put(spec_field, *task[key])
    if "node_selector" in task:
        selector, where = task["node_selector"]
        for key, value in _mapping(selector, where).items():
            key_path = _key_path(where, key)
            if key != ACCELERATOR:
                raise SpecError(f"cannot be translated; only {ACCELERATOR} is supported, "
                                "remove it", field=key_path)
            reader.put("gpu_type", value, key_path)
    if "containers" not in task:
        raise SpecError("is required; give the job's container", field=join_path(path, "containers"))
    containers, where = task["containers"]
    if not isinstance(containers, list) or not containers:
        raise SpecError("must be a list with the job's container", field=where)
    if len(containers) > 1:
        raise SpecError("several containers cannot be translated; gcpjobs runs one container "
                        "per task, keep only the job's main container", field=f"{where}[1]")
    _read_container(reader, containers[0], f"{where}[0]")


def _read_container(reader: _Reader, data: Any, path: str) -> None:
    container = _section(data, path, _CONTAINER_KEYS)
    if "image" not in container:
        raise SpecError("is required; give the container image", field=join_path(path, "image"))
    for key in ("image", "command", "args"):
        if key in container:
            reader.put(key, *container[key])
    if "env" in container:
        _read_env(reader, *container["env"])
    if "resources" in container:
        resources = _section(*container["resources"], _RESOURCES_KEYS)
        if "limits" in resources:
            limits, where = resources["limits"]
            for key, value in _mapping(limits, where).items():
                key_path = _key_path(where, key)
                spec_field = {"cpu": "cpu", "memory": "memory", GPU_LIMIT: "gpu_count"}.get(key)
                if spec_field is None:
                    raise SpecError(f"cannot be translated; give cpu, memory and {GPU_LIMIT} "
                                    "limits only, remove it", field=key_path)
                reader.put(spec_field, value, key_path)


def _read_env(reader: _Reader, data: Any, path: str) -> None:
    if not isinstance(data, list):
        raise SpecError(f"must be a list of {{name, value}} entries, not {type_name(data)}",
                        field=path)
    env: dict[Any, Any] = {}
    for index, entry in enumerate(data):
        where = f"{path}[{index}]"
        item = _section(entry, where, _ENV_KEYS)
        if "name" not in item:
            raise SpecError("is required; give the variable a name", field=f"{where}.name")
        name = item["name"][0]
        if "value_from" in item:
            env[name] = _secret_ref(*item["value_from"])
        else:
            env[name] = item["value"][0] if "value" in item else ""
    reader.put("env", env, path)


def _secret_ref(data: Any, path: str) -> dict[str, Any]:
    source = _mapping(data, path)
    for key in source:
        if _snake(str(key)) != "secret_key_ref":
            raise SpecError("only secretKeyRef (a Secret Manager secret) can be translated; "
                            "give the value directly or use secretKeyRef",
                            field=_key_path(path, key))
    if not source:
        raise SpecError("is empty; give secretKeyRef: {name: SECRET, key: VERSION}", field=path)
    ref_path = join_path(path, str(next(iter(source)))) or path
    ref = _section(next(iter(source.values())), ref_path, ("name", "key"))
    if "name" not in ref:
        raise SpecError("is required; give the secret's name", field=join_path(ref_path, "name"))
    # v1's `key` is the secret version (reference §4.8).
    return {"secret": ref["name"][0], "version": ref["key"][0] if "key" in ref else "latest"}
