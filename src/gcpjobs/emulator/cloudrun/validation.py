"""What CreateJob, UpdateJob and RunJob refuse, with INVALID_ARGUMENT messages that name the field.

Limits (reference §4.5): task_count 1–10000; parallelism ≤ task_count (0 = as many as
possible); max_retries 0–10; task timeout > 0 and at most 168 h; CPU limits "1", "2", "4" or
"8" (or the same in millicores), 4 CPU with at least 2Gi memory and 8 CPU with at least 4Gi;
memory a Kubernetes quantity; labels follow the GCP label rules and may not use the
`run.googleapis.com`, `cloud.googleapis.com`, `serving.knative.dev` or
`autoscaling.knative.dev` namespaces (reference §4.2). Job ids follow the real service's rule
for resource names. The real message layout for several problems is not documented; the
emulator sends every problem it finds, one line, `FIELD: MESSAGE; FIELD: MESSAGE`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from google.cloud import run_v2

from gcpjobs.emulator.limits import process_problems
from gcpjobs.specs.labels import MAX_LABELS, validate_label_key, validate_label_value

MAX_TASKS = 10_000
MAX_RETRIES = 10
DEFAULT_MAX_RETRIES = 3
DEFAULT_TIMEOUT = timedelta(seconds=600)
MAX_TIMEOUT = timedelta(hours=168)
CPU_VALUES = (1, 2, 4, 8)
# CPU count → the least memory the real service accepts with it (k8s_min.proto, the CPU docs).
_MIN_MEMORY_FOR_CPU = {4: 2 * 1024**3, 8: 4 * 1024**3}
RESERVED_LABEL_NAMESPACES = (
    "run.googleapis.com", "cloud.googleapis.com", "serving.knative.dev", "autoscaling.knative.dev",
)
_JOB_ID = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?\Z")
# Executions are named JOB-xxxxx: a job id and six more characters.
_EXECUTION_ID = re.compile(r"[a-z]([a-z0-9-]{0,67}[a-z0-9])?\Z")
# Container.env: "Env vars per container: max 1000" (environment-variables doc); EnvVar.name
# "Must not exceed 32768 characters"; EnvVar.value "the maximum length is 32768 bytes".
MAX_ENV_VARS = 1000
MAX_ENV_NAME_CHARS = 32_768
MAX_ENV_VALUE_BYTES = 32_768
_MEMORY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_MEMORY_UNITS = {
    None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4,
}


@dataclass(frozen=True)
class FieldProblem:
    field: str  # "job.template.task_count"
    message: str


def format_problems(problems: list[FieldProblem]) -> str:
    return "; ".join(f"{problem.field}: {problem.message}" for problem in problems)


def job_id_problem(job_id: str) -> str | None:
    if _JOB_ID.match(job_id):
        return None
    return (
        f"Invalid job id {_show(job_id)}: a job name must use only lowercase letters, numbers and "
        "'-', must begin with a letter, cannot end with a '-', and can be at most 63 characters."
    )


def execution_id_problem(execution_id: str) -> str | None:
    if _EXECUTION_ID.match(execution_id):
        return None
    return (
        f"Invalid execution id {_show(execution_id)}: execution ids are the job's name and a "
        "five-character suffix (lowercase letters, numbers and '-', starting with a letter)."
    )


def validate_job(job: run_v2.Job) -> list[FieldProblem]:
    """Every reason the real service would refuse this job (fields under `job.`)."""
    problems = list(_labels("job.labels", job.labels))
    problems += _annotations("job.annotations", job.annotations)
    if "template" not in job:
        return [*problems, FieldProblem("job.template", "Required field is not set.")]
    template = job.template
    problems += _labels("job.template.labels", template.labels)
    problems += _annotations("job.template.annotations", template.annotations)
    problems += _counts("job.template", template.task_count or 1, template.parallelism)
    problems += _task_template("job.template.template", template.template)
    return problems


def validate_overrides(overrides: run_v2.RunJobRequest.Overrides, job: run_v2.Job) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if overrides.task_count:
        problems += _task_count("overrides.task_count", overrides.task_count)
    if "timeout" in overrides:
        problems += _timeout("overrides.timeout", overrides.timeout)
    containers = {container.name: container for container in job.template.template.containers}
    for index, override in enumerate(overrides.container_overrides):
        path = f"overrides.container_overrides[{index}]"
        if override.name and override.name not in containers:
            problems.append(FieldProblem(
                f"{path}.name", f"The job has no container named {override.name!r}.",
            ))
            continue
        problems += _env(path, override.env)
        base = containers.get(override.name) or next(iter(containers.values()), None)
        command = list(base.command) if base is not None else []
        args = [] if override.clear_args or not base else list(base.args)
        problems += _process(path, command, list(override.args) or args, override.env)
    return problems


# ---------------------------------------------------------------------------------------------


def _counts(path: str, task_count: int, parallelism: int) -> Iterator[FieldProblem]:
    yield from _task_count(f"{path}.task_count", task_count)
    if parallelism < 0:
        yield FieldProblem(f"{path}.parallelism", f"Must be 0 or more, got {parallelism}.")
    elif parallelism > task_count:
        yield FieldProblem(
            f"{path}.parallelism",
            f"Parallelism ({parallelism}) cannot be greater than the task count ({task_count}).",
        )


def _task_count(path: str, task_count: int) -> Iterator[FieldProblem]:
    if not 1 <= task_count <= MAX_TASKS:
        yield FieldProblem(path, f"Must be between 1 and {MAX_TASKS}, got {task_count}.")


def _timeout(path: str, timeout: timedelta) -> Iterator[FieldProblem]:
    if timeout <= timedelta(0):
        yield FieldProblem(path, f"The task timeout must be positive, got {timeout.total_seconds():g}s.")
    elif timeout > MAX_TIMEOUT:
        yield FieldProblem(
            path,
            f"The task timeout can be at most {MAX_TIMEOUT.total_seconds():g}s (168 hours), "
            f"got {timeout.total_seconds():g}s.",
        )


def _task_template(path: str, task: run_v2.TaskTemplate) -> Iterator[FieldProblem]:
    if "max_retries" in task and not 0 <= task.max_retries <= MAX_RETRIES:
        yield FieldProblem(
            f"{path}.max_retries", f"Must be between 0 and {MAX_RETRIES}, got {task.max_retries}."
        )
    if "timeout" in task:
        yield from _timeout(f"{path}.timeout", task.timeout)
    if not task.containers:
        yield FieldProblem(f"{path}.containers", "A job needs at least one container.")
    for index, container in enumerate(task.containers):
        yield from _container(f"{path}.containers[{index}]", container)


def _container(path: str, container: run_v2.Container) -> Iterator[FieldProblem]:
    if not container.image:
        yield FieldProblem(f"{path}.image", "Required field is not set.")
    limits = dict(container.resources.limits)
    memory: int | None = None
    if "memory" in limits:
        memory = memory_bytes(limits["memory"])
        if memory is None:
            yield FieldProblem(
                f"{path}.resources.limits.memory",
                f"Invalid value {limits['memory']!r}: use a quantity such as 512Mi or 4Gi.",
            )
    if "cpu" in limits:
        cpus = cpu_count(limits["cpu"])
        if cpus is None:
            yield FieldProblem(
                f"{path}.resources.limits.cpu",
                f"Invalid value {limits['cpu']!r}: the only supported values for CPU are "
                "'1', '2', '4', and '8'.",
            )
        elif memory is not None and memory < _MIN_MEMORY_FOR_CPU.get(cpus, 0):
            needed = _MIN_MEMORY_FOR_CPU[cpus] // 1024**3
            yield FieldProblem(
                f"{path}.resources.limits.memory",
                f"Setting {cpus} CPU requires at least {needed}Gi of memory.",
            )
    yield from _env(path, container.env)
    yield from _process(path, list(container.command), list(container.args), container.env)


def _env(path: str, env: Sequence[run_v2.EnvVar]) -> Iterator[FieldProblem]:
    if len(env) > MAX_ENV_VARS:
        yield FieldProblem(
            f"{path}.env", f"At most {MAX_ENV_VARS} environment variables are allowed per "
                           f"container; got {len(env)}.",
        )
    for index, variable in enumerate(env):
        if not variable.name:
            yield FieldProblem(f"{path}.env[{index}].name", "Required field is not set.")
        elif len(variable.name) > MAX_ENV_NAME_CHARS:
            yield FieldProblem(
                f"{path}.env[{index}].name",
                f"The name is {len(variable.name):,} characters; it must not exceed "
                f"{MAX_ENV_NAME_CHARS} characters.",
            )
        size = len(variable.value.encode("utf-8", "surrogatepass"))
        if size > MAX_ENV_VALUE_BYTES:
            yield FieldProblem(
                f"{path}.env[{index}].value",
                f"The value of {_show(variable.name)} is {size:,} bytes; the maximum length is "
                f"{MAX_ENV_VALUE_BYTES} bytes. Put large data in a file or a Secret Manager "
                "secret.",
            )
        ref = variable.value_source.secret_key_ref
        if "value_source" in variable and not ref.secret:
            yield FieldProblem(
                f"{path}.env[{index}].value_source.secret_key_ref.secret", "Required field is not set."
            )


def _process(
    path: str, command: list[str], args: list[str], env: Sequence[run_v2.EnvVar]
) -> Iterator[FieldProblem]:
    variables = ((variable.name, variable.value) for variable in env)
    for field, message in process_problems(command, args, variables):
        yield FieldProblem(f"{path}.{field}", message)


def memory_bytes(text: str) -> int | None:
    match = _MEMORY.match(text)
    if match is None:
        return None
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2)])


def cpu_count(text: str) -> int | None:
    """"2" or "2000m" → 2; anything but 1, 2, 4 or 8 CPUs → None."""
    value: float
    try:
        value = int(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        return None
    return int(value) if value in CPU_VALUES else None


def _reserved(key: str) -> bool:
    namespace = key.split("/", 1)[0] if "/" in key else ""
    return any(namespace == n or namespace.endswith("." + n) for n in RESERVED_LABEL_NAMESPACES)


def _labels(path: str, labels: Mapping[str, str]) -> Iterator[FieldProblem]:
    if len(labels) > MAX_LABELS:
        yield FieldProblem(path, f"At most {MAX_LABELS} labels are allowed; got {len(labels)}.")
    for key in sorted(labels):
        if _reserved(key):
            yield FieldProblem(path, _reserved_message("label", key))
            continue
        for problem in (validate_label_key(key), validate_label_value(labels[key])):
            if problem is not None:
                yield FieldProblem(path, problem)


def _annotations(path: str, annotations: Mapping[str, str]) -> Iterator[FieldProblem]:
    for key in sorted(annotations):
        if _reserved(key):
            yield FieldProblem(path, _reserved_message("annotation", key))


def _reserved_message(what: str, key: str) -> str:
    return (
        f"Unknown or reserved {what} {key!r}: Cloud Run API v2 does not support {what}s in the "
        f"{', '.join(RESERVED_LABEL_NAMESPACES)} namespaces; use the corresponding Job fields."
    )


def _show(text: str, limit: int = 80) -> str:
    # JSON quoting, cut short: a user's value with a newline or NUL keeps the message one line.
    return json.dumps(text if len(text) <= limit else text[: limit - 3] + "...", ensure_ascii=False)
