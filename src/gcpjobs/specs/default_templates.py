"""The job templates gcpjobs ships, and templates generated from a spec.

Types and defaults are not written down here: they are read from the spec classes' JSON
schemas and field defaults, so that a template can never drift from the spec it renders into.
What is written here is which fields a default template exposes, and the descriptions users
see (the Prefect UI shows them next to each job variable).

The schemas are loosened where a spec reads more than its JSON schema says: durations may be
numbers of seconds, a command may be one shell-like string, items of text lists and values of
text mappings may be numbers or booleans (`args: [--epochs, 3]`). The spec still validates the
rendered document, so nothing invalid gets further.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic_core import PydanticUndefined, to_jsonable_python

from gcpjobs.errors import GcpJobsError, SpecError
from gcpjobs.kinds import kind_entry
from gcpjobs.specs.secrets import holds_secret

if TYPE_CHECKING:
    from gcpjobs.specs.base import Spec

# The fields a default template exposes, in the order users meet them. Fields left out are
# the spec's defaults and cannot be set per run (Vertex's extra worker pools: a structure
# better written in a job file or a template of one's own). A kind not listed here (one
# registered with a built-in spec class) gets its spec class's list (see `_for_kind`).
TEMPLATE_FIELDS: dict[str, tuple[str, ...]] = {
    "vertex": (
        "name", "project", "region", "image", "command", "args", "env", "machine_type",
        "accelerator_type", "accelerator_count", "boot_disk_type", "boot_disk_size_gb",
        "maximum_run_time", "scheduling_strategy", "max_wait_duration",
        "restart_job_on_worker_restart", "disable_retries", "persistent_resource_id",
        "network", "reserved_ip_ranges", "service_account", "labels", "enable_web_access",
        "base_output_directory",
    ),
    "cloud-run": (
        "name", "project", "region", "image", "command", "args", "env", "cpu", "memory",
        "timeout", "max_retries", "task_count", "parallelism", "service_account",
        "vpc_connector", "vpc_egress", "network", "subnetwork", "network_tags", "labels",
        "gpu_type", "gpu_count", "keep_job", "launch_stage", "execution_environment",
    ),
}

_COMMON = {
    "name": "The job's name (Vertex AI display name, Cloud Run job id).",
    "project": "Google Cloud project id; unset uses the configured default project.",
    "region": "Google Cloud region the job runs in, e.g. us-central1.",
    "image": "Container image URI the job runs, e.g. "
             "us-docker.pkg.dev/PROJECT/REPO/trainer:1.0.",
    "command": "Entrypoint: a list of words, or one string split like a shell would. Empty "
               "keeps the image's ENTRYPOINT.",
    "args": "Arguments passed to the command (the image's CMD when empty).",
    "service_account": "Email of the service account the job runs as; unset uses the "
                       "service's default.",
    "labels": "Labels for the job (lowercase keys and values; gcpjobs adds its own).",
    "network": "VPC network the job connects to.",
}

DESCRIPTIONS: dict[str, dict[str, str]] = {
    "vertex": {
        **_COMMON,
        "env": "Environment variables for the container, NAME: value (at most 100).",
        "machine_type": "Compute Engine machine type of the primary replica, e.g. "
                        "n1-standard-4, a2-highgpu-1g.",
        "accelerator_type": "GPU/TPU type, e.g. NVIDIA_TESLA_T4; unset for none (or the "
                            "machine's bundled GPUs).",
        "accelerator_count": "Number of accelerators; unset means 1 when a type is given.",
        "boot_disk_type": "Boot disk type: pd-ssd or pd-standard.",
        "boot_disk_size_gb": "Boot disk size in GB (100 to 64000).",
        "maximum_run_time": "Longest the job may run before Vertex AI cancels it: '2h', '1d', "
                            "an ISO 8601 duration or seconds.",
        "scheduling_strategy": "STANDARD (on demand), SPOT (preemptible, cheaper) or "
                               "FLEX_START (Dynamic Workload Scheduler).",
        "max_wait_duration": "FLEX_START only: how long to wait for resources ('0' waits "
                             "forever).",
        "restart_job_on_worker_restart": "Restart the whole job when a worker restarts.",
        "disable_retries": "Fail the job instead of retrying after an internal error.",
        "persistent_resource_id": "Run on this persistent resource instead of new machines.",
        "network": "VPC network to peer with: projects/PROJECT_NUMBER/global/networks/NAME.",
        "reserved_ip_ranges": "Names of IP ranges reserved for the network, for the job's "
                              "machines.",
        "enable_web_access": "Allow interactive shell access to the running containers.",
        "base_output_directory": "gs://BUCKET/PATH for outputs (AIP_MODEL_DIR and friends).",
    },
    "cloud-run": {
        **_COMMON,
        "env": "Environment variables, NAME: value or NAME: {secret: SECRET, version: latest} "
               "for a Secret Manager secret.",
        "cpu": "CPUs per task: 1, 2, 4 or 8 (1000m style is accepted too); unset uses Cloud "
               "Run's default.",
        "memory": "Memory per task, e.g. 512Mi or 4Gi; unset uses Cloud Run's default.",
        "timeout": "Longest one task attempt may run: '10m', '1h' or seconds.",
        "max_retries": "Times a failed task is retried (0 to 10).",
        "task_count": "Number of tasks the job runs (each gets CLOUD_RUN_TASK_INDEX).",
        "parallelism": "Tasks that may run at once; 0 means as many as possible.",
        "vpc_connector": "Serverless VPC Access connector for outbound traffic.",
        "vpc_egress": "Which traffic goes through the VPC: all-traffic or "
                      "private-ranges-only.",
        "network": "VPC network for Direct VPC egress.",
        "subnetwork": "Subnetwork for Direct VPC egress.",
        "network_tags": "Network tags for Direct VPC egress.",
        "gpu_type": "GPU type, e.g. nvidia-l4; unset for none.",
        "gpu_count": "Number of GPUs per task.",
        "keep_job": "Keep the Cloud Run job after the run (re-running updates it); by default "
                    "it is deleted.",
        "launch_stage": "Launch stage (GA, BETA, ALPHA) to opt into preview features.",
        "execution_environment": "Execution environment: gen1 or gen2.",
    },
}

_SECRET_ENV_NOTE = (" No default: this job's environment holds secret-looking values, which "
                    "are not written into templates; give env per run, or use secret "
                    "references.")
# Fields whose spec reads a number as text (`cpu: 2`, a job named 2024): `--set cpu=2` is
# read as a number and must pass the schema too.
_NUMBERS_AS_TEXT = frozenset({"name", "cpu"})
_SCALAR_TYPES = ("string", "number", "boolean")
_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def spec_class(kind: str) -> type[Spec]:
    """The spec class of a kind, as the kind registry names it (imported on use, so that
    templates are read without loading every kind); SpecError (one line, listing the known
    kinds) for an unknown kind or one whose spec cannot be imported."""
    try:
        cls: type[Spec] = kind_entry(kind).load("spec_class")
    except SpecError:
        raise
    except GcpJobsError as error:  # its package is broken or missing: still a SpecError
        raise SpecError(str(error)) from None
    return cls


def _for_kind(table: Mapping[str, Any], kind: str, cls: type[Spec]) -> Any:
    """`table`'s value for `kind`, else for the kind `cls` itself is (a kind registered with
    Cloud Run's spec class reads Cloud Run's fields and descriptions); None when neither."""
    if kind in table:
        return table[kind]
    field = cls.model_fields.get("kind")
    return table.get(field.default) if field is not None else None


# -- schemas ---------------------------------------------------------------------------------


def _is_plain_text(schema: Any) -> bool:
    return isinstance(schema, Mapping) and schema.get("type") == "string" and not (
        {"enum", "const", "pattern", "format"} & set(schema))


def _scalars_as_text(schema: Any, types: tuple[str, ...] = _SCALAR_TYPES) -> Any:
    """`{type: string}` -> `{type: [string, number, boolean]}`, also inside an anyOf: for
    values the spec turns into text (`args: [--epochs, 3]`, `cpu: 2`)."""
    if _is_plain_text(schema):
        return {**schema, "type": list(types)}
    if isinstance(schema, Mapping) and isinstance(schema.get("anyOf"), list):
        return {**schema, "anyOf": [_scalars_as_text(option, types) for option in schema["anyOf"]]}
    return schema


def _loosen(schema: Any) -> Any:
    """pydantic's JSON schema, accepting what the spec's own input conversion accepts."""
    if isinstance(schema, list):
        return [_loosen(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    node = {_BOUNDS.get(key, key): _loosen(value) for key, value in schema.items()}
    if node.get("format") == "duration" and node.get("type") == "string":
        del node["format"]
        node["type"] = ["string", "number"]  # '2h', 'PT2H' or seconds
    for key in ("items", "additionalProperties"):
        if key in node:
            node[key] = _scalars_as_text(node[key])
    return node


def _variable_schema(kind: str, name: str, model_schema: Mapping[str, Any],
                     cls: type[Spec]) -> dict[str, Any]:
    prop = _loosen(model_schema["properties"][name])
    prop.pop("default", None)  # set by the caller, from the field or the spec's value
    if name == "command":
        # The spec splits one string like a shell; offer both forms.
        prop = {key: value for key, value in prop.items() if key not in ("type", "items")} | {
            "anyOf": [{"type": "array", "items": prop.get("items", {})}, {"type": "string"}]}
    elif name in _NUMBERS_AS_TEXT:
        # Booleans stay out: a job named `true` is a typo, not a value.
        prop = _scalars_as_text(prop, ("string", "number"))
    info = cls.model_fields[name]
    prop["description"] = ((_for_kind(DESCRIPTIONS, kind, cls) or {}).get(name)
                           or info.description
                           or f"The job's {name} field.")
    return dict(prop)


def _field_default(cls: type[Spec], name: str) -> Any:
    """A field's default as JSON data, or PydanticUndefined for a required field."""
    info = cls.model_fields[name]
    if info.is_required():
        return PydanticUndefined
    return to_jsonable_python(info.get_default(call_default_factory=True))


def _template(kind: str, cls: type[Spec], fields: list[str],
              defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`{job_configuration: {kind, field: "{{ field }}"...}, variables: {...}}`."""
    model_schema = cls.model_json_schema()
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name in fields:
        prop = _variable_schema(kind, name, model_schema, cls)
        default = defaults.get(name, PydanticUndefined)
        if default is PydanticUndefined:
            if cls.model_fields[name].is_required():
                required.append(name)
        elif default is not None:  # unset (None) needs no default: the key is left out
            prop["default"] = copy.deepcopy(default)
        properties[name] = prop
    variables: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        variables["required"] = required
    if "$defs" in model_schema:  # `$ref: #/$defs/...` resolve against the variables' root
        variables["$defs"] = _loosen(model_schema["$defs"])
    document: dict[str, Any] = {"kind": kind}
    document.update({name: f"{{{{ {name} }}}}" for name in fields})
    return {"job_configuration": document, "variables": variables}


def default_template_data(kind: str) -> dict[str, Any]:
    """The default template of a kind as plain data (see `templates.default_template`)."""
    cls = spec_class(kind)
    listed = _for_kind(TEMPLATE_FIELDS, kind, cls) or [name for name in cls.model_fields
                                                        if name != "kind"]
    fields = [name for name in listed if name in cls.model_fields]
    return _template(kind, cls, fields, {name: _field_default(cls, name) for name in fields})


def template_for_spec(spec: Spec) -> dict[str, Any]:
    """One variable per field of `spec`, its values as the defaults (see
    `templates.generate_base_job_template`)."""
    cls = type(spec)
    kind = str(getattr(spec, "kind"))  # noqa: B009 - a field of every job spec, not of `Spec`
    fields = [name for name in cls.model_fields if name != "kind"]
    values = spec.model_dump(mode="json")
    env = values.get("env")
    secret_env = isinstance(env, Mapping) and any(
        isinstance(value, str) and holds_secret(str(name), value) for name, value in env.items())
    if secret_env:
        values.pop("env")
    template = _template(kind, cls, fields, values)
    if secret_env:
        prop = template["variables"]["properties"]["env"]
        prop["description"] += _SECRET_ENV_NOTE
    return template
