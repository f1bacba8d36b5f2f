"""The default base job templates of the `gcpjobs-vertex` and `gcpjobs-cloud-run` work pools.

Each is built from gcpjobs' own default template (`specs.default_templates`), so its variables'
types, defaults and descriptions come from the spec classes and cannot drift from them. On
top of that it speaks Prefect's dialect:

- `command`, `env`, `labels` and `name` are Prefect's own job configuration fields (the
  worker's `BaseJobConfiguration` fills them per flow run), so they sit at the top of
  `job_configuration` rather than in the job document, and take Prefect's types (`command`
  one string, `env` and `labels` mappings of strings);
- every variable of prefect-gcp's `vertex-ai` and `cloud-run-v2` pools exists here too, with
  the same name, and the same default where it means the same thing, so that a pool's or a
  deployment's variables can be copied across. Those with no field of ours of that name
  (`maximum_run_time_hours`, `service_account_name`, `scheduling`, `vpc_connector_name`,
  `env_from_secrets` ...) are top-level keys of `job_configuration`, which
  `GcpJobsJobConfiguration.to_spec` translates into our fields;
- `credentials` refers to a `GcpJobsCredentials` block, the way prefect-gcp's pools refer to
  its `GcpCredentials` block.

The rest is the job document (`job_configuration.job`): `kind` and one `{{ placeholder }}`
per field of ours.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from gcpjobs.kinds import kind_entry

__all__ = ["JOB_KEY", "PREFECT_FIELDS", "prefect_base_job_template"]

JOB_KEY = "job"
# Prefect's BaseJobConfiguration fields: filled per flow run by prepare_for_flow_run.
PREFECT_FIELDS = ("command", "env", "labels", "name")
_CREDENTIALS_DEFINITION = "GcpJobsCredentials"
_SECRET_REF_DEFINITION = "SecretRef"
_SECRET_REF = {"$ref": f"#/definitions/{_SECRET_REF_DEFINITION}"}
_DEFS_PREFIX = "#/$defs/"

_MAX_RUN_HOURS = 28 * 24  # the spec's MAX_MAXIMUM_RUN_TIME, in hours
_MAX_CLOUD_RUN_TIMEOUT_SECONDS = 168 * 3600  # prefect-gcp's 604800, and Cloud Run's limit

# Prefect's variables, the same for both kinds (their types are what BaseJobConfiguration takes).
_PREFECT_VARIABLES: dict[str, dict[str, Any]] = {
    "name": {
        "title": "Name",
        "type": "string",
        "description": "Name of the job (Vertex AI display name; Cloud Run job id, made valid "
                       "and given a unique suffix). Unset: the flow run's name. May use "
                       "{{ ctx.flow.name }} and {{ ctx.flow_run.name }}.",
    },
    "command": {
        "title": "Command",
        "type": "string",
        "description": "The command that starts the flow run, split like a shell would. Leave "
                       "it unset: the worker uses Prefect's `prefect flow-run execute`.",
    },
    "env": {
        "title": "Environment Variables",
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": "Environment variables for the job, on top of the ones Prefect sets "
                       "(PREFECT_API_URL, PREFECT__FLOW_RUN_ID ...).",
    },
    "labels": {
        "title": "Labels",
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": "Labels for the job, on top of Prefect's (prefect.io/flow-run-id ...); "
                       "all are made valid Google Cloud labels, and these win over Prefect's.",
    },
}
_JOB_WATCH_POLL_INTERVAL: dict[str, Any] = {
    "title": "Poll Interval (Seconds)",
    "type": "number",
    "exclusiveMinimum": 0,
    "description": "Seconds between checks of the jobs' states (prefect-gcp's name). gcpjobs "
                   "workers follow all the jobs of a pool with one shared watcher: one list "
                   "call per region each interval, not one get per job. Unset lets it adapt: "
                   "quick right after a change, slower while nothing happens.",
}

_ENV_NOTE = {
    "vertex": " Vertex AI has no secret references: values are sent as given (gcpjobs' "
              "previews and logs redact secret-looking ones).",
    "cloud-run": " Values are plain text; pass secrets with env_from_secrets.",
}

# Variables of prefect-gcp's pools that have no field of ours by that name, translated by
# `GcpJobsJobConfiguration.to_spec` (top-level keys of the job configuration).
_ALIASES: dict[str, dict[str, dict[str, Any]]] = {
    "vertex": {
        "maximum_run_time_hours": {
            "title": "Maximum Run Time (Hours)",
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": _MAX_RUN_HOURS,
            "description": "prefect-gcp's name for maximum_run_time, in hours (set one of "
                           "them). No default on purpose: prefect-gcp's pools default to 1 "
                           "hour, which would cancel most training jobs; unset, a job may run "
                           "for maximum_run_time (Vertex AI's own 7 days when that is unset "
                           "too).",
        },
        "scheduling": {
            "title": "Scheduling Options",
            "type": "object",
            "properties": {
                "strategy": {"type": "string",
                             "description": "STANDARD (ON_DEMAND), SPOT or FLEX_START."},
                "timeout": {"type": ["string", "number"],
                            "description": "Maximum run time: '3600s', '2h' or seconds."},
                "restart_job_on_worker_restart": {"type": "boolean"},
                "disable_retries": {"type": "boolean"},
                "max_wait_duration": {"type": ["string", "number"],
                                      "description": "FLEX_START only: '1800s', '30m' or "
                                                     "seconds; 0 waits forever."},
            },
            "additionalProperties": False,
            "description": "prefect-gcp's CustomJob Scheduling options (strategy, timeout, "
                           "restart_job_on_worker_restart, disable_retries, max_wait_duration); "
                           "each may be set here or as the variable of that name "
                           "(scheduling_strategy, maximum_run_time ...), not both with "
                           "different values.",
        },
        "service_account_name": {
            "title": "Service Account Name",
            "type": "string",
            "description": "prefect-gcp's name for service_account: the email of the service "
                           "account the job runs as (set one of them).",
        },
        "enable_dashboard_access": {
            "title": "Enable Dashboard Access",
            "type": "boolean",
            "default": False,
            "description": "prefect-gcp's dashboard access for the chief container; not "
                           "supported by gcpjobs yet, so it must stay false.",
        },
    },
    "cloud-run": {
        "service_account_name": {
            "title": "Service Account Name",
            "type": "string",
            "description": "prefect-gcp's name for service_account: the email of the service "
                           "account the job runs as (set one of them).",
        },
        "vpc_connector_name": {
            "title": "VPC Connector Name",
            "type": "string",
            "description": "prefect-gcp's name for vpc_connector (set one of them).",
        },
        "env_from_secrets": {
            "title": "Environment Variables from Secrets",
            "type": "object",
            "additionalProperties": _SECRET_REF,
            "description": "NAME: {secret: SECRET, version: latest}: environment variables "
                           "read from Secret Manager when the job starts; they replace plain "
                           "env values of the same name.",
        },
        "prefect_api_key_secret": {
            "title": "Prefect API Key Secret",
            "allOf": [_SECRET_REF],
            "description": "The Secret Manager secret holding the Prefect API key, {secret: "
                           "NAME, version: latest}; the job gets PREFECT_API_KEY from it. "
                           "Required when the worker has an API key: it is never sent as a "
                           "plain value.",
        },
        "prefect_api_auth_string_secret": {
            "title": "Prefect API Auth String Secret",
            "allOf": [_SECRET_REF],
            "description": "The Secret Manager secret holding PREFECT_API_AUTH_STRING, {secret: "
                           "NAME, version: latest}; required when the worker has one.",
        },
        "cloudsql_instances": {
            "title": "Cloud SQL Instances",
            "type": "array",
            "items": {"type": "string"},
            "description": "prefect-gcp's Cloud SQL connections; not supported by gcpjobs yet, "
                           "so it must stay empty.",
        },
    },
}

# prefect-gcp's defaults for variables that mean the same as ours (its `cpu: 1000m` is our
# `cpu: 1`; its `timeout` is our per-attempt task timeout, in seconds).
_PREFECT_GCP_DEFAULTS: dict[str, dict[str, Any]] = {
    "vertex": {"machine_type": "n1-standard-4", "boot_disk_type": "pd-ssd",
               "boot_disk_size_gb": 100, "region": "us-central1"},
    "cloud-run": {"region": "us-central1", "image": "prefecthq/prefect:3-latest",
                  "cpu": "1000m", "memory": "512Mi", "timeout": 600, "max_retries": 0,
                  "launch_stage": "BETA", "keep_job": False},
}
# Fields of ours that an alias above can also set: no default, so that "set" can be told from
# "default" (setting both to different values is an error); unset, the spec's default applies.
_NO_DEFAULT: dict[str, dict[str, str]] = {
    "vertex": {
        "maximum_run_time": " Unset: 7 days (Vertex AI's default).",
        "scheduling_strategy": " Unset: STANDARD.",
        "restart_job_on_worker_restart": " Unset: false.",
        "disable_retries": " Unset: false.",
    },
    "cloud-run": {},
}
# Extra schema keywords for some of our variables (prefect-gcp's bounds; numeric keywords do
# not constrain text, so '10m' still passes).
_EXTRA_SCHEMA: dict[str, dict[str, dict[str, Any]]] = {
    "vertex": {},
    "cloud-run": {
        "timeout": {"exclusiveMinimum": 0, "maximum": _MAX_CLOUD_RUN_TIMEOUT_SECONDS},
        "max_retries": {"minimum": 0, "maximum": 10},
    },
}
_DESCRIPTION_NOTES: dict[str, dict[str, str]] = {
    "vertex": {},
    "cloud-run": {
        "launch_stage": " One of GA, BETA, ALPHA, EARLY_ACCESS (LAUNCH_TAG_UNSPECIFIED means "
                        "unset); BETA, prefect-gcp's default, allows task timeouts over 24 h.",
        "image": " Unset: Prefect's image, as in prefect-gcp.",
    },
}
_EXTRA_WORKER_POOLS_DESCRIPTION = (
    "Worker pools 1-3 (workers, parameter servers, evaluators) for distributed training: a "
    "list of {replica_count, machine_type, accelerator_type, accelerator_count, image, "
    "command, args, env, boot_disk_type, boot_disk_size_gb}; unset fields are the primary's.")


def prefect_base_job_template(kind: str) -> dict[str, Any]:
    """The default base job template of a work pool for `kind` ("vertex" or "cloud-run"):
    `{"job_configuration": {...}, "variables": {JSON schema}}`, plain JSON data (a fresh copy
    each call). UnknownKindError (a one-line SpecError, listing the kinds) for another kind.

    The tables above hold what prefect-gcp's pools have for the built-in kinds; a kind
    without rows there (a plug-in's) gets its default template with Prefect's variables."""
    entry = kind_entry(kind)
    kind = entry.name  # an alias reads the tables under the kind's own name
    data: dict[str, Any] = entry.load("default_template")(entry.name)
    ours: dict[str, Any] = data["variables"]["properties"]
    definitions: dict[str, Any] = dict(data["variables"].get("$defs", {}))
    required = [name for name in data["variables"].get("required", [])
                if name not in _PREFECT_GCP_DEFAULTS.get(kind, {})]
    document: dict[str, Any] = dict(data["job_configuration"])

    # Feature tests, not kind names: a pool offers what its spec class can hold.
    if "extra_worker_pools" in entry.load("spec_class").model_fields:
        ours["extra_worker_pools"], definitions = _extra_worker_pools(definitions)
        document["extra_worker_pools"] = "{{ extra_worker_pools }}"
    aliases = _ALIASES.get(kind, {})
    if _SECRET_REF in _schemas_within(aliases):
        definitions.setdefault(_SECRET_REF_DEFINITION, _secret_ref_schema())

    properties: dict[str, Any] = {}
    for name, schema in ours.items():
        if name in _PREFECT_VARIABLES:
            prop = copy.deepcopy(_PREFECT_VARIABLES[name])
            if name == "env":
                prop["description"] += _ENV_NOTE.get(kind, "")
            properties[name] = prop
            continue
        prop = dict(schema)
        no_default = _NO_DEFAULT.get(kind, {})
        if name in no_default:
            prop.pop("default", None)
            prop["description"] += no_default[name]
        prefect_gcp_defaults = _PREFECT_GCP_DEFAULTS.get(kind, {})
        if name in prefect_gcp_defaults:
            prop["default"] = prefect_gcp_defaults[name]
        prop.update(_EXTRA_SCHEMA.get(kind, {}).get(name, {}))
        notes = _DESCRIPTION_NOTES.get(kind, {})
        if name in notes:
            prop["description"] += notes[name]
        properties[name] = prop
    properties.update(copy.deepcopy(aliases))
    properties["credentials"] = _credentials_variable(entry.label)
    properties["job_watch_poll_interval"] = copy.deepcopy(_JOB_WATCH_POLL_INTERVAL)
    definitions[_CREDENTIALS_DEFINITION] = _credentials_schema()

    job = {key: value for key, value in document.items() if key not in PREFECT_FIELDS}
    job_configuration: dict[str, Any] = {name: f"{{{{ {name} }}}}" for name in PREFECT_FIELDS}
    job_configuration["credentials"] = "{{ credentials }}"
    job_configuration["job_watch_poll_interval"] = "{{ job_watch_poll_interval }}"
    job_configuration.update({name: f"{{{{ {name} }}}}" for name in aliases})
    job_configuration[JOB_KEY] = job

    variables: dict[str, Any] = {
        "description": f"Job variables of a gcpjobs {entry.label} work pool; a deployment's "
                       "job_variables override them.",
        "type": "object",
        "properties": properties,
    }
    if required:
        variables["required"] = required
    variables["definitions"] = definitions
    return {"job_configuration": job_configuration, "variables": _prefect_refs(variables)}


def _schemas_within(node: Any) -> list[Any]:
    """Every mapping inside `node` (to find the references a set of variables makes)."""
    if isinstance(node, Mapping):
        return [node, *(found for value in node.values() for found in _schemas_within(value))]
    if isinstance(node, list):
        return [found for item in node for found in _schemas_within(item)]
    return []


def _credentials_variable(service: str) -> dict[str, Any]:
    return {
        "title": "gcpjobs Credentials",
        "description": f"A gcpjobs Credentials block to authenticate to {service} "
                       "(a key file, a stored key, or neither for Application Default "
                       "Credentials). Unset: Application Default Credentials; with no project "
                       "configured at all, jobs run on gcpjobs' local emulator.",
        "allOf": [{"$ref": f"#/definitions/{_CREDENTIALS_DEFINITION}"}],
    }


def _credentials_schema() -> dict[str, Any]:
    """The block's schema as Prefect's UI and server expect a block reference's definition
    (`block_type_slug`, `secret_fields` ...), keyed by its title.

    Prefect's validator accepts such a variable as `oneOf: [the block's schema, a
    {"$ref": ...} reference]`. Every field of the block is optional, so a reference would
    match both and be refused (prefect-gcp's GcpCredentials has that problem); `not
    required $ref` keeps references out of the first choice.
    """
    from gcpjobs.integrations.prefect.credentials import GcpJobsCredentials

    schema: dict[str, Any] = GcpJobsCredentials.model_json_schema()
    schema["not"] = {"required": ["$ref"]}
    return schema


def _secret_ref_schema() -> dict[str, Any]:
    from gcpjobs.specs.cloudrun import SecretRef

    schema: dict[str, Any] = SecretRef.model_json_schema()
    return schema


def _extra_worker_pools(definitions: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `extra_worker_pools` variable (not in the default template: its structure is
    better written in a job file there, but a pool is the only place a Prefect user can
    describe distributed training), read from a template generated for a VertexJob."""
    from gcpjobs.specs.templates import generate_base_job_template
    from gcpjobs.specs.vertex import VertexJob

    generated = generate_base_job_template(VertexJob(image="gcr.io/project/image"))
    prop = dict(generated["variables"]["properties"]["extra_worker_pools"])
    prop.pop("default", None)
    prop["description"] = _EXTRA_WORKER_POOLS_DESCRIPTION
    merged = {**generated["variables"].get("$defs", {}), **definitions}
    return prop, merged


def _prefect_refs(node: Any) -> Any:
    """`#/$defs/X` -> `#/definitions/X`: Prefect keeps a template's shared schemas under
    `definitions` (its server turns block definitions there into reference-or-value
    choices, and its UI resolves references there)."""
    if isinstance(node, Mapping):
        converted = {key: _prefect_refs(value) for key, value in node.items()}
        ref = converted.get("$ref")
        if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
            converted["$ref"] = "#/definitions/" + ref[len(_DEFS_PREFIX):]
        return converted
    if isinstance(node, list):
        return [_prefect_refs(item) for item in node]
    return copy.deepcopy(node)
