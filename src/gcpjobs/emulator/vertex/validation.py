"""What CreateCustomJob refuses, and the INVALID_ARGUMENT text the real service sends for it.

The real service lists every problem it finds in one message:

    List of found errors:\t1.Field: job_spec.worker_pool_specs[0].machine_spec.accelerator_type;
    Message: Both `accelerator_type` and `accelerator_count` should be specified or none. \t

(one line; reference/google-runtime-contract.md §1.5: the heading, its tab, the numbering and
the space after the message are observed; the tab after each item is our reading, as the
observed copy is cut off there). `validate_custom_job` returns the problems in a stable order (the order of the
fields in custom_job.proto, pools by index) and `format_found_errors` lays them out that way.

Wording: the accelerator messages come from `specs.machines.accelerator_problem`, which uses
the observed real texts ("Both `accelerator_type` and `accelerator_count` should be specified
or none.", `Accelerator "X" is not supported for machine type "Y"`). "Required field is not
set." is the text Google's field validation is remembered to use for REQUIRED fields
(unverified). Every other message is ours, written to read like the real ones and to say how
to fix the request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from gcpjobs.emulator.limits import process_problems
from gcpjobs.specs.labels import MAX_LABELS, validate_label_key, validate_label_value
from gcpjobs.specs.machines import (
    BOOT_DISK_SIZE_GB_RANGE,
    BOOT_DISK_TYPES,
    MACHINE_TYPES,
    accelerator_problem,
)

if TYPE_CHECKING:
    from google.cloud import aiplatform_v1

REQUIRED = "Required field is not set."
MAX_DISPLAY_NAME_CHARS = 128
MAX_ENV_VARS = 100  # custom_job.proto, ContainerSpec.env: "Maximum limit is 100."


@dataclass(frozen=True)
class FieldProblem:
    field: str  # "job_spec.worker_pool_specs[0].machine_spec.accelerator_type"
    message: str


def validate_custom_job(custom_job: aiplatform_v1.CustomJob) -> list[FieldProblem]:
    """Every reason the real service (or, where marked, the emulator) would refuse this job."""
    problems = list(_display_name(custom_job.display_name))
    if "job_spec" not in custom_job:
        problems.append(FieldProblem("job_spec", REQUIRED))
    else:
        problems += _job_spec(custom_job.job_spec)
    problems += _labels(custom_job.labels)
    return problems


def format_found_errors(problems: Sequence[FieldProblem]) -> str:
    """The INVALID_ARGUMENT message for these problems, in the real service's layout."""
    items = "".join(
        f"{number}.Field: {_one_line(problem.field)}; Message: {_one_line(problem.message)} \t"
        for number, problem in enumerate(problems, start=1)
    )
    return f"List of found errors:\t{items}"


# ---------------------------------------------------------------------------------------------


def _display_name(display_name: str) -> Iterator[FieldProblem]:
    if not display_name:
        yield FieldProblem("display_name", REQUIRED)
    elif len(display_name) > MAX_DISPLAY_NAME_CHARS:
        yield FieldProblem(
            "display_name",
            f"The display name can be at most {MAX_DISPLAY_NAME_CHARS} characters long; it has "
            f"{len(display_name)}.",
        )


def _job_spec(spec: aiplatform_v1.CustomJobSpec) -> Iterator[FieldProblem]:
    pools = list(spec.worker_pool_specs)
    if not pools:
        yield FieldProblem("job_spec.worker_pool_specs", REQUIRED)
    for index, pool in enumerate(pools):
        yield from _worker_pool(f"job_spec.worker_pool_specs[{index}]", index, pool)

    if "scheduling" in spec:
        timeout: timedelta = spec.scheduling.timeout
        if timeout < timedelta(0):
            yield FieldProblem(
                "job_spec.scheduling.timeout",
                f"The timeout must not be negative; got {_seconds(timeout)}.",
            )
    if spec.reserved_ip_ranges and not spec.network:
        yield FieldProblem(
            "job_spec.reserved_ip_ranges",
            "Reserved IP ranges can only be used with a VPC network; set `network` too or "
            "remove `reserved_ip_ranges`.",
        )
    if "base_output_directory" in spec:
        prefix: str = spec.base_output_directory.output_uri_prefix
        field = "job_spec.base_output_directory.output_uri_prefix"
        if not prefix:
            yield FieldProblem(field, REQUIRED)
        elif not prefix.startswith("gs://"):
            yield FieldProblem(
                field,
                f"The output URI prefix must be a Cloud Storage URI (gs://...); got "
                f"{_show(prefix)}.",
            )
    # SPOT (or FLEX_START) together with persistent_resource_id is not refused: no document
    # read says the real service refuses it, and an emulator stricter than the service would
    # reject jobs that run in production.


def _worker_pool(
    path: str, index: int, pool: aiplatform_v1.WorkerPoolSpec
) -> Iterator[FieldProblem]:
    # custom_job.proto: "All worker pools except the first one are optional and can be skipped
    # by providing an empty value."
    if _is_empty(pool):
        if index == 0:
            # Our wording; the real message for an empty first pool is not documented.
            yield FieldProblem(path, "The first worker pool must be specified; only the pools "
                                     "after it can be left empty.")
        return

    if "container_spec" in pool:
        yield from _container(f"{path}.container_spec", pool.container_spec)
    elif "python_package_spec" in pool:
        # The real service accepts it; the emulator cannot install and run a Python package.
        yield FieldProblem(
            f"{path}.python_package_spec",
            "python_package_spec is not supported by the gcpjobs emulator; use container_spec.",
        )
    else:
        yield FieldProblem(
            f"{path}.container_spec",
            "Either `container_spec` or `python_package_spec` should be specified.",
        )

    yield from _machine(f"{path}.machine_spec", pool.machine_spec)

    replicas: int = pool.replica_count
    if index == 0 and replicas != 1:
        # Our wording; the real service refuses it, its exact text is not documented.
        yield FieldProblem(
            f"{path}.replica_count",
            f"The first worker pool (the primary replica) must have exactly 1 replica; got "
            f"{replicas}. Put more replicas in worker_pool_specs[1].",
        )
    elif index > 0 and replicas < 1:
        yield FieldProblem(
            f"{path}.replica_count",
            f"A worker pool that is specified must have at least 1 replica; got {replicas}. "
            "Leave the pool empty to skip it.",
        )

    if "disk_spec" in pool:
        yield from _disk(f"{path}.disk_spec", pool.disk_spec)


def _container(path: str, container: aiplatform_v1.ContainerSpec) -> Iterator[FieldProblem]:
    if not container.image_uri:
        yield FieldProblem(f"{path}.image_uri", REQUIRED)
    env = list(container.env)
    if len(env) > MAX_ENV_VARS:
        yield FieldProblem(
            f"{path}.env",
            f"At most {MAX_ENV_VARS} environment variables are allowed; got {len(env)}.",
        )
    for number, variable in enumerate(env):
        if not variable.name:
            yield FieldProblem(f"{path}.env[{number}].name", REQUIRED)
    variables = ((variable.name, variable.value) for variable in env)
    for field, message in process_problems(container.command, container.args, variables):
        yield FieldProblem(f"{path}.{field}", message)


def _machine(path: str, machine: aiplatform_v1.MachineSpec) -> Iterator[FieldProblem]:
    machine_type: str = machine.machine_type
    if not machine_type:
        yield FieldProblem(f"{path}.machine_type", REQUIRED)
        return
    accelerator = _enum_name(machine.accelerator_type)
    count: int = machine.accelerator_count
    problem = accelerator_problem(machine_type, accelerator, count)
    if problem is None:
        return
    known = MACHINE_TYPES.get(machine_type)
    if known is None:
        field = "machine_type"
    elif accelerator in known.accelerators and count > 0:
        field = "accelerator_count"  # the pair is right, the number is not
    else:
        field = "accelerator_type"  # where the real service reports "Both ... or none" (observed)
    yield FieldProblem(f"{path}.{field}", problem)


def _disk(path: str, disk: aiplatform_v1.DiskSpec) -> Iterator[FieldProblem]:
    disk_type: str = disk.boot_disk_type
    if disk_type and disk_type not in BOOT_DISK_TYPES:
        yield FieldProblem(
            f"{path}.boot_disk_type",
            f"Boot disk type {_show(disk_type)} is not supported; use one of "
            f"{', '.join(BOOT_DISK_TYPES)}.",
        )
    size: int = disk.boot_disk_size_gb
    low, high = BOOT_DISK_SIZE_GB_RANGE
    if size and not low <= size <= high:  # 0 means the default size
        yield FieldProblem(
            f"{path}.boot_disk_size_gb",
            f"The boot disk size must be between {low} and {high} GB; got {size}.",
        )


def _labels(labels: Mapping[str, str]) -> Iterator[FieldProblem]:
    if len(labels) > MAX_LABELS:
        yield FieldProblem(
            "labels", f"At most {MAX_LABELS} labels are allowed; got {len(labels)}."
        )
    for key in sorted(labels):
        # The helpers' messages name the key or value themselves.
        key_problem = validate_label_key(key)
        if key_problem is not None:
            yield FieldProblem("labels", key_problem)
        value_problem = validate_label_value(labels[key])
        if value_problem is not None:
            yield FieldProblem("labels", value_problem)


# ---------------------------------------------------------------------------------------------


def _is_empty(pool: aiplatform_v1.WorkerPoolSpec) -> bool:
    return not type(pool).pb(pool).ListFields()


def _enum_name(value: Any) -> str | None:
    """`AcceleratorType.NVIDIA_TESLA_T4` -> "NVIDIA_TESLA_T4"; unset -> None. A number the
    installed client does not know stays visible as its number."""
    if not value:
        return None
    name = getattr(value, "name", None)
    return str(name) if name is not None else str(int(value))


def _show(text: str) -> str:
    # JSON quoting: a user's value with a newline or tab must not break the one-line message.
    return json.dumps(text, ensure_ascii=False)


def _seconds(duration: timedelta) -> str:
    return f"{duration.total_seconds():g}s"


def _one_line(text: str) -> str:
    # Tabs separate the items; a user's value (a label key, a machine type) must not add any.
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
