"""Job files: YAML documents that describe a job, read into validated specs.

These shapes are accepted:

- `kind: vertex` followed by `VertexJob` fields (the gcpjobs format);
- `kind: cloud-run` followed by `CloudRunJob` fields;
- a Cloud Run v1 Job body (`apiVersion: run.googleapis.com/v1`, `kind: Job`), e.g. saved from
  `gcloud run jobs describe --format=yaml` (see `specs.cloudrun_v1`);
- a raw `CustomJobSpec`, as `gcloud ai custom-jobs create --config` takes it (`workerPoolSpecs`
  ...; camelCase or snake_case); the job is named after the file;
- a full `CustomJob` (`displayName` + `jobSpec`), e.g. saved from
  `gcloud ai custom-jobs describe --format=yaml`; output-only fields are ignored.

Every problem is one line that starts with the file's name. `kind: NAME` is looked up in
the kind registry (`gcpjobs.kinds`): a kind registered there, or by a plug-in, is readable
here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import yaml

from gcpjobs.errors import JobFileError, SpecError
from gcpjobs.kinds import KindEntry, UnknownKindError, kind_entry, known_kinds
from gcpjobs.specs.base import field_path, join_path, type_name, unknown_field_message
from gcpjobs.specs.cloudrun import CloudRunJob, suggest_job_name
from gcpjobs.specs.cloudrun_v1 import is_v1_job_body, v1_job_to_cloud_run_job
from gcpjobs.specs.labels import is_reserved_label
from gcpjobs.specs.vertex import VertexJob

JobSpec: TypeAlias = VertexJob | CloudRunJob
KindParser: TypeAlias = Callable[[Mapping[str, Any], str | None], JobSpec]
"""(document, default name) -> spec; raises SpecError with fields as the document names them."""


def parse_vertex_document(document: Mapping[str, Any], default_name: str | None) -> JobSpec:
    """A `kind: vertex` document as a VertexJob (the registry's job-file parser for it)."""
    if "name" not in document and default_name:
        document = {**document, "name": default_name}
    return VertexJob.model_validate(document)


def parse_cloud_run_document(document: Mapping[str, Any], default_name: str | None) -> JobSpec:
    """A `kind: cloud-run` document as a CloudRunJob (the registry's job-file parser for it)."""
    if "name" not in document and default_name:
        # Job ids are strict (lowercase, hyphens); a file name like `nightly_export` was not
        # written as one, so it is made valid instead of refused.
        document = {**document, "name": suggest_job_name(default_name)}
    return CloudRunJob.model_validate(document)


def _entry_parser(entry: KindEntry) -> KindParser:
    if entry.job_file_parser is not None:
        parser: KindParser = entry.load("job_file_parser")
        return parser
    spec_class = entry.load("spec_class")

    def parse(document: Mapping[str, Any], default_name: str | None) -> JobSpec:
        if "name" not in document and default_name:
            document = {**document, "name": default_name}
        spec: JobSpec = spec_class.model_validate(document)
        return spec

    return parse


class _KindParsers(MutableMapping[str, KindParser]):
    """The parser of each `kind:` a job file may name: the registry's kinds, read live, plus
    parsers set here for a kind that only job files know (kept for callers that add one)."""

    def __init__(self) -> None:
        self._set_here: dict[str, KindParser] = {}

    def __getitem__(self, kind: str) -> KindParser:
        if kind in self._set_here:
            return self._set_here[kind]
        try:
            return _entry_parser(kind_entry(kind))
        except UnknownKindError:
            raise KeyError(kind) from None

    def __setitem__(self, kind: str, parser: KindParser) -> None:
        self._set_here[kind] = parser

    def __delitem__(self, kind: str) -> None:
        del self._set_here[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*known_kinds(), *self._set_here]))

    def __len__(self) -> int:
        return len(dict.fromkeys([*known_kinds(), *self._set_here]))


KIND_PARSERS: MutableMapping[str, KindParser] = _KindParsers()


def load_job_file(path: str | Path) -> JobSpec:
    """Read and validate a job file; JobFileError/SpecError (one line, with the file name)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JobFileError(f"{file}: no such file; check the path") from None
    except IsADirectoryError:
        raise JobFileError(f"{file}: is a directory; give the path of a YAML job file") from None
    except PermissionError:
        raise JobFileError(f"{file}: cannot be read (permission denied); check its "
                           "permissions") from None
    except UnicodeDecodeError:
        raise JobFileError(f"{file}: is not UTF-8 text; save it as UTF-8 YAML") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise JobFileError(f"{file}: {_yaml_problem(exc)}") from None
    return parse_job_document(data, source=str(file), default_name=file.stem)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "cannot be parsed"
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"is not valid YAML{where}: {problem}; fix the syntax there"


def parse_job_document(
    data: Any, *, source: str, default_name: str | None = None
) -> JobSpec:
    """Validate a parsed YAML/JSON document (see the module docs for the accepted shapes).

    `source` names the document in errors; `default_name` names the job when it has none.
    """
    if data is None:
        raise JobFileError(f"{source}: is empty; describe the job, starting with `kind: vertex`")
    if not isinstance(data, Mapping):
        raise JobFileError(f"{source}: must be a mapping of fields, not {type_name(data)}; "
                           "start it with `kind: vertex`")
    try:
        if is_v1_job_body(data):
            return v1_job_to_cloud_run_job(data, default_name)
        if "kind" in data:
            # The registry chose the spec class by the kind; `kind` itself is not a field of
            # every spec class, and an alias is not the class's own name.
            fields = {key: value for key, value in data.items() if key != "kind"}
            return _parser_for(data["kind"], source)(fields, default_name)
        if _has(data, "job_spec") or _has(data, "display_name"):
            return custom_job_to_vertex_job(data, default_name)
        if _has(data, "worker_pool_specs"):
            return custom_job_spec_to_vertex_job(data, default_name)
    except JobFileError:
        raise
    except SpecError as exc:
        raise _located(exc, source) from None
    raise JobFileError(f"{source}: has no `kind`; start it with `kind: vertex` or `kind: "
                       "cloud-run`, or give a gcloud CustomJobSpec (workerPoolSpecs: ...)")


def _parser_for(kind: Any, source: str) -> KindParser:
    parser = KIND_PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is not None:
        return parser
    known = ", ".join(sorted(KIND_PARSERS))
    if kind == "Job":
        raise JobFileError(f"{source}: kind 'Job' is read as a Cloud Run v1 Job body only with "
                           "`apiVersion: run.googleapis.com/v1`; add it, or use `kind: cloud-run`")
    raise JobFileError(f"{source}: unknown kind {kind!r}; use one of: {known}")


def _located(error: SpecError, source: str) -> SpecError:
    """The same error (type, field, reason) with the document's name in front."""
    located = type(error)(error.reason, field=error.field)
    located.args = (f"{source}: {error}",)
    return located


# -- gcloud / REST documents -----------------------------------------------------------------

_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")
_OUTPUT_ONLY = frozenset({
    "name", "state", "create_time", "start_time", "end_time", "update_time", "error",
    "web_access_uris", "satisfies_pzs", "satisfies_pzi",
})
_NOT_SUPPORTED = {
    "python_package_spec": "Python package training is not supported; build a container "
                           "image and use containerSpec with imageUri",
}
_NOT_YET = frozenset({
    "nfs_mounts", "lustre_mounts", "tensorboard", "experiment", "experiment_run", "models",
    "psc_interface_config", "protected_artifact_location_id", "enable_dashboard_access",
    "encryption_spec", "reservation_affinity", "tpu_topology", "gpu_partition_size",
})

_JOB_KEYS = ("display_name", "job_spec", "labels", *_OUTPUT_ONLY)
_SPEC_KEYS = ("worker_pool_specs", "scheduling", "service_account", "network",
              "reserved_ip_ranges", "base_output_directory", "enable_web_access",
              "persistent_resource_id")
_POOL_KEYS = ("container_spec", "machine_spec", "replica_count", "disk_spec")
_CONTAINER_KEYS = ("image_uri", "command", "args", "env")
_MACHINE_KEYS = ("machine_type", "accelerator_type", "accelerator_count")
_DISK_KEYS = ("boot_disk_type", "boot_disk_size_gb")
_SCHEDULING_KEYS = ("timeout", "restart_job_on_worker_restart", "strategy", "disable_retries",
                    "max_wait_duration")
# Deprecated strategy names with a documented meaning.
_STRATEGY_ALIASES = {"STRATEGY_UNSPECIFIED": "STANDARD", "ON_DEMAND": "STANDARD"}


def _snake(key: str) -> str:
    return _CAMEL_HUMP.sub(r"_\1", key).lower()


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(word.title() for word in rest)


def _has(data: Mapping[str, Any], snake: str) -> bool:
    return snake in data or _camel(snake) in data


@dataclass
class _Section:
    """One mapping of a gcloud document: values by snake_case key, and where each was written."""

    values: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


def _section(data: Any, path: str, known: Sequence[str]) -> _Section:
    """`data` read with snake_case keys; SpecError for anything that is not in `known`."""
    if not isinstance(data, Mapping):
        raise SpecError(f"must be a mapping, not {type_name(data)}", field=path or None)
    section = _Section()
    for key, value in data.items():
        snake = _snake(str(key))
        # field_path quotes a key that is not a plain name (a newline would break the line).
        where = join_path(path, field_path([str(key)])) or field_path([str(key)])
        if snake in _NOT_SUPPORTED:
            raise SpecError(_NOT_SUPPORTED[snake], field=where)
        if snake in _NOT_YET:
            raise SpecError("is not supported by gcpjobs yet; remove it", field=where)
        if snake not in known:
            raise SpecError(unknown_field_message(str(key), map(_camel, known)), field=where)
        if snake in section:
            raise SpecError(f"is given twice (as {_camel(snake)} and {snake}); keep one",
                            field=where)
        section.values[snake] = value
        section.paths[snake] = where
    return section


class _Document:
    """VertexJob fields read from a gcloud document, and where each field came from.

    `origins` maps a VertexJob field path to the document path it was read from, so that a
    validation error names what the user wrote (`workerPoolSpecs[0].machineSpec.machineType`).
    """

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.origins: dict[str, str] = {}

    def put(self, spec_field: str, section: _Section, key: str,
            convert: Callable[[Any], Any] = lambda value: value) -> None:
        if key in section:
            self.fields[spec_field] = convert(section[key])
            self.origins[spec_field] = section.paths[key]

    def error(self, exc: SpecError) -> SpecError:
        field = exc.field or ""
        # Longest first: `extra_worker_pools[0].env` before `extra_worker_pools`.
        for spec_field in sorted(self.origins, key=len, reverse=True):
            if field == spec_field or field.startswith((f"{spec_field}.", f"{spec_field}[")):
                origin = self.origins[spec_field]
                return SpecError(exc.reason, field=origin + field[len(spec_field):])
        return exc


def custom_job_to_vertex_job(data: Mapping[str, Any], default_name: str | None) -> VertexJob:
    """A full CustomJob document (`displayName`, `jobSpec`, `labels`) as a VertexJob."""
    document = _Document()
    job = _section(data, "", _JOB_KEYS)
    if "job_spec" not in job:
        raise SpecError("is required in a CustomJob document; add the job's CustomJobSpec",
                        field="jobSpec")
    name = job.values.get("display_name") or default_name
    labels = job.values.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise SpecError(f"must be a mapping, not {type_name(labels)}", field="labels")
    # Labels gcpjobs set on an earlier submission are set afresh on this one.
    user_labels = {k: v for k, v in labels.items() if not is_reserved_label(str(k))}
    return _spec_to_vertex_job(document, job["job_spec"], job.paths["job_spec"], name,
                               user_labels)


def custom_job_spec_to_vertex_job(data: Mapping[str, Any], default_name: str | None) -> VertexJob:
    """A gcloud `--config` CustomJobSpec as a VertexJob named `default_name`."""
    return _spec_to_vertex_job(_Document(), data, "", default_name, {})


def _spec_to_vertex_job(document: _Document, data: Any, path: str, name: str | None,
                        labels: Mapping[str, Any]) -> VertexJob:
    spec = _section(data, path, _SPEC_KEYS)
    if name:
        document.fields["name"] = name
    if labels:
        document.fields["labels"] = dict(labels)
    for key in ("service_account", "network", "reserved_ip_ranges", "enable_web_access",
                "persistent_resource_id"):
        document.put(key, spec, key)
    document.put("base_output_directory", spec, "base_output_directory", _output_uri)
    if "scheduling" in spec:
        _read_scheduling(document, spec["scheduling"], spec.paths["scheduling"])
    if "worker_pool_specs" not in spec:
        raise SpecError("is required; describe at least the primary pool",
                        field=join_path(path, "workerPoolSpecs"))
    _read_pools(document, spec["worker_pool_specs"], spec.paths["worker_pool_specs"])
    try:
        return VertexJob.model_validate(document.fields)
    except SpecError as exc:
        raise document.error(exc) from None


def _output_uri(value: Any) -> Any:
    if isinstance(value, Mapping):
        prefix = value.get("outputUriPrefix", value.get("output_uri_prefix"))
        if prefix is None or len(value) != 1:
            raise SpecError("must be {outputUriPrefix: gs://BUCKET/PATH}",
                            field="baseOutputDirectory")
        return prefix
    return value


def _read_scheduling(document: _Document, data: Any, path: str) -> None:
    scheduling = _section(data, path, _SCHEDULING_KEYS)
    document.put("maximum_run_time", scheduling, "timeout")
    document.put("max_wait_duration", scheduling, "max_wait_duration")
    document.put("restart_job_on_worker_restart", scheduling, "restart_job_on_worker_restart")
    document.put("disable_retries", scheduling, "disable_retries")
    document.put("scheduling_strategy", scheduling, "strategy",
                 lambda value: _STRATEGY_ALIASES.get(value, value) if isinstance(value, str)
                 else value)


def _read_pools(document: _Document, data: Any, path: str) -> None:
    pools = [data] if isinstance(data, Mapping) else data
    if not isinstance(pools, list) or not pools:
        raise SpecError("must be a list of worker pools with the primary pool first",
                        field=path)
    for index, pool in enumerate(pools):
        where = f"{path}[{index}]" if isinstance(data, list) else path
        if not pool:  # an empty pool keeps its position (pools 1-3 only)
            if index == 0:
                raise SpecError("the primary pool must not be empty; give its containerSpec "
                                "and machineSpec", field=where)
            document.fields.setdefault("extra_worker_pools", []).append(None)
            continue
        target = "" if index == 0 else f"extra_worker_pools[{index - 1}]"
        values = _read_pool(document, pool, where, target)
        if index == 0:
            document.fields.update(values)
        else:
            document.fields.setdefault("extra_worker_pools", []).append(values)


def _read_pool(document: _Document, data: Any, path: str, target: str) -> dict[str, Any]:
    pool = _section(data, path, _POOL_KEYS)
    reader = _Document()
    if "replica_count" in pool:
        if not target and str(pool["replica_count"]) != "1":
            raise SpecError("must be 1: pool 0 is the primary replica; put more replicas in "
                            "workerPoolSpecs[1]", field=pool.paths["replica_count"])
        if target:
            reader.put("replica_count", pool, "replica_count")
    if "container_spec" in pool:
        container = _section(pool["container_spec"], pool.paths["container_spec"],
                             _CONTAINER_KEYS)
        if not target and "image_uri" not in container:
            raise SpecError("is required; give the container image URI",
                            field=join_path(pool.paths["container_spec"], "imageUri"))
        reader.put("image", container, "image_uri")
        for key in ("command", "args", "env"):
            reader.put(key, container, key)
    elif not target:
        raise SpecError("is required for the primary pool; give its imageUri",
                        field=join_path(path, "containerSpec"))
    if "machine_spec" in pool:
        machine = _section(pool["machine_spec"], pool.paths["machine_spec"], _MACHINE_KEYS)
        for key in _MACHINE_KEYS:
            reader.put(key, machine, key)
    if "disk_spec" in pool:
        disk = _section(pool["disk_spec"], pool.paths["disk_spec"], _DISK_KEYS)
        for key in _DISK_KEYS:
            reader.put(key, disk, key)
    for spec_field, origin in reader.origins.items():
        document.origins[join_path(target, spec_field) or spec_field] = origin
    return reader.fields
