"""CloudRunJob -> the `run_v2` CreateJob request, job ids, and its preview.

Pure functions: nothing here talks to a server. Only the GAPIC types package
`google.cloud.run_v2` is imported (about 0.25 s), never `requests.vertex`, which would load
`google.cloud.aiplatform_v1` for nothing.
"""

from __future__ import annotations

from typing import Any

from google.api import launch_stage_pb2
from google.cloud import run_v2
from google.protobuf import json_format

from gcpjobs.errors import SpecError
from gcpjobs.protos.preview import (
    PROJECT_PLACEHOLDER,
    PreviewFormat,
    dump_preview,
    redact_env,
)
from gcpjobs.specs.cloudrun import KIND, MAX_JOB_NAME_LENGTH, CloudRunJob, SecretRef
from gcpjobs.specs.labels import (
    KIND_LABEL,
    SUBMISSION_LABEL,
    new_submission_id,
    validate_label_value,
)

DEFAULT_JOB_NAME = "gcpjobs-job"
SUBMISSION_SUFFIX_LENGTH = 8
GPU_LIMIT = "nvidia.com/gpu"

_EGRESS = {"all-traffic": run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC,
           "private-ranges-only": run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY}
_ENVIRONMENTS = {"gen1": run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN1,
                 "gen2": run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN2}


def job_id_for(job: CloudRunJob, submission_id: str) -> str:
    """The Cloud Run job id CreateJob gets for this submission.

    Without `keep_job`, every submission gets its own job, `{name}-{first 8 of
    submission_id}`, so concurrent runs of one spec never collide and the job can be deleted
    once it has run. With `keep_job`, the job is the named one, so a resubmission updates it.
    """
    if job.keep_job:
        if not job.name:
            raise SpecError("is required with keep_job: true (the job to create or update); "
                            "give the job a name", field="name")
        return job.name
    suffix = f"-{submission_id[:SUBMISSION_SUFFIX_LENGTH]}"
    base = (job.name or DEFAULT_JOB_NAME)[: MAX_JOB_NAME_LENGTH - len(suffix)]
    # A cut may end on a hyphen; "name--suffix" is valid but reads like a typo.
    return base.rstrip("-") + suffix


def parent_for(project: str, region: str) -> str:
    return f"projects/{project}/locations/{region}"


def connector_path(connector: str, project: str | None, region: str) -> str:
    """A connector's full name; a bare name is in the job's project and region (like gcloud).

    Without a project the bare name is kept: the client fills in the project when it sends.
    """
    if connector.startswith("projects/") or project is None:
        return connector
    return f"projects/{project}/locations/{region}/connectors/{connector}"


def build_job(
    job: CloudRunJob, submission_id: str, *, project: str | None = None
) -> run_v2.Job:
    """The Job to create for `job`, labelled with `submission_id` (see idempotent create).

    `name` stays empty: CreateJob takes the id as `job_id`. The gcpjobs labels go on the Job
    and on its execution template, so that every execution carries them too.
    """
    problem = validate_label_value(submission_id) if submission_id else "it is empty."
    if problem:
        raise ValueError(f"submission_id {submission_id!r} cannot be a label value: {problem}")
    labels = {**job.labels, SUBMISSION_LABEL: submission_id, KIND_LABEL: KIND}
    task = run_v2.TaskTemplate(
        containers=[_container(job)],
        # In a oneof, so an explicit 0 ("never retry") is sent rather than read as the default 3.
        max_retries=job.max_retries,
        timeout=job.timeout,
        service_account=job.service_account or "",
    )
    if job.execution_environment is not None:
        task.execution_environment = _ENVIRONMENTS[job.execution_environment]
    vpc_access = _vpc_access(job, project or job.project)
    if vpc_access is not None:
        task.vpc_access = vpc_access
    if job.gpu_type is not None:
        task.node_selector = run_v2.NodeSelector(accelerator=job.gpu_type)
    cloud_run_job = run_v2.Job(
        labels=labels,
        template=run_v2.ExecutionTemplate(
            labels=labels,
            parallelism=job.parallelism,
            task_count=job.task_count,
            template=task,
        ),
    )
    if job.launch_stage is not None:
        cloud_run_job.launch_stage = launch_stage_pb2.LaunchStage.Value(job.launch_stage)
    return cloud_run_job


def _container(job: CloudRunJob) -> run_v2.Container:
    container = run_v2.Container(
        image=job.image,
        command=list(job.command),
        args=list(job.args),
        env=[_env_var(name, value) for name, value in job.env.items()],
    )
    limits: dict[str, str] = {}
    if job.cpu is not None:
        limits["cpu"] = job.cpu
    if job.memory is not None:
        limits["memory"] = job.memory
    if job.gpu_type is not None:
        limits[GPU_LIMIT] = str(job.gpu_count or 1)
    if limits:
        container.resources = run_v2.ResourceRequirements(limits=limits)
    return container


def _env_var(name: str, value: str | SecretRef) -> run_v2.EnvVar:
    if isinstance(value, SecretRef):
        return run_v2.EnvVar(name=name, value_source=run_v2.EnvVarSource(
            secret_key_ref=run_v2.SecretKeySelector(secret=value.secret, version=value.version)))
    return run_v2.EnvVar(name=name, value=value)


def _vpc_access(job: CloudRunJob, project: str | None) -> run_v2.VpcAccess | None:
    if job.vpc_connector is None and job.network is None and job.subnetwork is None:
        return None
    access = run_v2.VpcAccess()
    if job.vpc_connector is not None:
        access.connector = connector_path(job.vpc_connector, project, job.region)
    else:
        # Direct VPC egress: "only single network interface is supported".
        access.network_interfaces = [run_v2.VpcAccess.NetworkInterface(
            network=job.network or "", subnetwork=job.subnetwork or "",
            tags=list(job.network_tags))]
    if job.vpc_egress is not None:
        access.egress = _EGRESS[job.vpc_egress]
    return access


def build_create_request(
    job: CloudRunJob, project: str, submission_id: str
) -> run_v2.CreateJobRequest:
    """The CreateJob request for `job` in `project` (the job's region)."""
    return run_v2.CreateJobRequest(
        parent=parent_for(project, job.region),
        job=build_job(job, submission_id, project=project),
        job_id=job_id_for(job, submission_id),
    )


def request_to_dict(
    request: run_v2.CreateJobRequest, *, redact: bool = True
) -> dict[str, Any]:
    """The proto3 JSON form of `request` (camelCase, as the REST API sees it).

    With `redact`, plain values of variables whose names look secret become `<redacted>`.
    Secret Manager references stay: they name a secret, they do not hold it.
    """
    data: dict[str, Any] = json_format.MessageToDict(
        run_v2.CreateJobRequest.pb(request), preserving_proto_field_name=False)
    if redact:
        containers = data.get("job", {}).get("template", {}).get("template", {}).get(
            "containers", [])
        for container in containers:
            redact_env(container.get("env", []))
    return data


def preview(
    job: CloudRunJob,
    fmt: PreviewFormat | str = "yaml",
    *,
    project: str | None = None,
    submission_id: str | None = None,
) -> str:
    """The CreateJob request for `job` as YAML or JSON, secret env values redacted.

    `project` (else the job's) fills `parent`; without either a placeholder is shown. The job
    id carries a fresh submission id unless one is given (or `keep_job` is set).
    """
    request = build_create_request(
        job, project or job.project or PROJECT_PLACEHOLDER, submission_id or new_submission_id())
    return dump_preview(request_to_dict(request, redact=True), fmt)
