"""VertexJob -> the `CustomJob` proto that CreateCustomJob sends, and its preview.

Pure functions: nothing here talks to a server. Only the GAPIC types package
`google.cloud.aiplatform_v1` is imported, never the slow high-level `google.cloud.aiplatform`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.cloud import aiplatform_v1
from google.protobuf import json_format

from gcpjobs.protos.preview import (
    PROJECT_PLACEHOLDER,
    PreviewFormat,
    dump_preview,
    redact_env,
)
from gcpjobs.specs.labels import (
    KIND_LABEL,
    SUBMISSION_LABEL,
    new_submission_id,
    validate_label_value,
)
from gcpjobs.specs.vertex import MAX_DISPLAY_NAME_LENGTH, ResolvedPool, VertexJob

KIND = "vertex"


def display_name_for(name: str, submission_id: str) -> str:
    """`{name}-{first 8 of submission_id}`, with `name` cut so the result fits in 128 characters.

    The suffix makes names unique between submissions of the same job. Python strings are
    sequences of code points, so cutting never splits a character.
    """
    suffix = f"-{submission_id[:8]}"
    return name[: MAX_DISPLAY_NAME_LENGTH - len(suffix)] + suffix


def parent_for(project: str, region: str) -> str:
    return f"projects/{project}/locations/{region}"


def build_custom_job(job: VertexJob, submission_id: str) -> aiplatform_v1.CustomJob:
    """The CustomJob to create for `job`, labelled with `submission_id` (see idempotent create)."""
    problem = validate_label_value(submission_id) if submission_id else "it is empty."
    if problem:
        raise ValueError(f"submission_id {submission_id!r} cannot be a label value: {problem}")
    scheduling = aiplatform_v1.Scheduling(
        timeout=job.maximum_run_time,
        restart_job_on_worker_restart=job.restart_job_on_worker_restart,
        disable_retries=job.disable_retries,
    )
    # STANDARD is what the service does when no strategy is given (STRATEGY_UNSPECIFIED
    # "will default to STANDARD"); leaving it unset keeps requests like gcloud's.
    if job.scheduling_strategy != "STANDARD":
        scheduling.strategy = aiplatform_v1.Scheduling.Strategy[job.scheduling_strategy]
    if job.max_wait_duration is not None:
        scheduling.max_wait_duration = job.max_wait_duration
    job_spec = aiplatform_v1.CustomJobSpec(
        worker_pool_specs=[_worker_pool_spec(pool) for pool in job.resolved_pools()],
        scheduling=scheduling,
        service_account=job.service_account or "",
        network=job.network or "",
        reserved_ip_ranges=list(job.reserved_ip_ranges),
        enable_web_access=job.enable_web_access,
        persistent_resource_id=job.persistent_resource_id or "",
    )
    if job.base_output_directory:
        job_spec.base_output_directory = aiplatform_v1.GcsDestination(
            output_uri_prefix=job.base_output_directory)
    return aiplatform_v1.CustomJob(
        display_name=display_name_for(job.name, submission_id),
        job_spec=job_spec,
        labels={**job.labels, SUBMISSION_LABEL: submission_id, KIND_LABEL: KIND},
    )


def _worker_pool_spec(pool: ResolvedPool | None) -> aiplatform_v1.WorkerPoolSpec:
    if pool is None:
        # "All worker pools except the first one are optional and can be skipped by
        # providing an empty value." (custom_job.proto)
        return aiplatform_v1.WorkerPoolSpec()
    machine_spec = aiplatform_v1.MachineSpec(machine_type=pool.machine_type)
    if pool.accelerator_type is not None:
        machine_spec.accelerator_type = aiplatform_v1.AcceleratorType[pool.accelerator_type]
        machine_spec.accelerator_count = pool.accelerator_count or 1
    return aiplatform_v1.WorkerPoolSpec(
        container_spec=aiplatform_v1.ContainerSpec(
            image_uri=pool.image,
            command=list(pool.command),
            args=list(pool.args),
            env=[aiplatform_v1.EnvVar(name=k, value=v) for k, v in pool.env.items()],
        ),
        machine_spec=machine_spec,
        replica_count=pool.replica_count,
        disk_spec=aiplatform_v1.DiskSpec(
            boot_disk_type=pool.boot_disk_type, boot_disk_size_gb=pool.boot_disk_size_gb),
    )


def custom_job_to_dict(custom_job: aiplatform_v1.CustomJob, *, redact: bool = True) -> dict[str, Any]:
    """The proto3 JSON form of `custom_job` (camelCase, as the REST API sees it).

    With `redact`, the values of environment variables whose names look secret are replaced
    by `<redacted>`.
    """
    data: dict[str, Any] = json_format.MessageToDict(
        aiplatform_v1.CustomJob.pb(custom_job), preserving_proto_field_name=False)
    if redact:
        redact_env(_env_entries(data))
    return data


def _env_entries(custom_job: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for pool in custom_job.get("jobSpec", {}).get("workerPoolSpecs", []):
        yield from pool.get("containerSpec", {}).get("env", [])


def preview(
    job: VertexJob,
    fmt: PreviewFormat | str = "yaml",
    *,
    submission_id: str | None = None,
    project: str | None = None,
) -> str:
    """The CreateCustomJob request for `job` as YAML or JSON, secret env values redacted.

    `project` (else the job's) fills `parent`; without either a placeholder is shown. The
    display name carries a fresh submission id unless one is given.
    """
    custom_job = build_custom_job(job, submission_id or new_submission_id())
    request = {
        "parent": parent_for(project or job.project or PROJECT_PLACEHOLDER, job.region),
        "customJob": custom_job_to_dict(custom_job, redact=True),
    }
    return dump_preview(request, fmt)
