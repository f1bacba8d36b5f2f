"""What the emulator's CreateCustomJob refuses, and the real service's message layout.

Pure unit tests of `gcpjobs.emulator.vertex.validation` on `aiplatform_v1` protos; the server
sending these as INVALID_ARGUMENT is tested through the official clients elsewhere.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from google.cloud import aiplatform_v1

from gcpjobs.emulator.vertex.validation import (
    REQUIRED,
    FieldProblem,
    format_found_errors,
    validate_custom_job,
)
from gcpjobs.specs.labels import validate_label_key, validate_label_value

POOL0 = "job_spec.worker_pool_specs[0]"
POOL1 = "job_spec.worker_pool_specs[1]"
BOTH_OR_NONE = "Both `accelerator_type` and `accelerator_count` should be specified or none."

VALID: dict[str, Any] = {
    "display_name": "train-2024",
    "labels": {"team": "ml", "gcpjobs-submission-id": "abc123", "empty": ""},
    "job_spec": {
        "worker_pool_specs": [
            {
                "machine_spec": {"machine_type": "n1-standard-4"},
                "replica_count": 1,
                "container_spec": {
                    "image_uri": "python:3.11-slim",
                    "command": ["python", "-c", "print(1)"],
                    "env": [{"name": f"VAR_{n}", "value": str(n)} for n in range(100)],
                },
                "disk_spec": {"boot_disk_type": "pd-ssd", "boot_disk_size_gb": 100},
            },
            {},  # skipped pools may be empty
            {
                "machine_spec": {
                    "machine_type": "n1-standard-8",
                    "accelerator_type": "NVIDIA_TESLA_T4",
                    "accelerator_count": 2,
                },
                "replica_count": 3,
                "container_spec": {"image_uri": "python:3.11-slim"},
                "disk_spec": {"boot_disk_size_gb": 64000},
            },
            {
                "machine_spec": {
                    "machine_type": "a2-highgpu-1g",
                    "accelerator_type": "NVIDIA_TESLA_A100",
                    "accelerator_count": 1,
                },
                "replica_count": 1,
                "container_spec": {"image_uri": "python:3.11-slim"},
            },
        ],
        "scheduling": {"timeout": {"seconds": 3600}, "strategy": "SPOT"},
        "network": "projects/123/global/networks/default",
        "reserved_ip_ranges": ["vertex-range"],
        "base_output_directory": {"output_uri_prefix": "gs://bucket/out"},
        "enable_web_access": True,
    },
}


def _job(change: Callable[[dict[str, Any]], object] | None = None) -> aiplatform_v1.CustomJob:
    data = copy.deepcopy(VALID)
    if change is not None:
        change(data)
    return aiplatform_v1.CustomJob(data)


def _pool(data: dict[str, Any], index: int = 0) -> dict[str, Any]:
    pool: dict[str, Any] = data["job_spec"]["worker_pool_specs"][index]
    return pool


def _machine(data: dict[str, Any], index: int = 0, **fields: object) -> None:
    _pool(data, index)["machine_spec"] = fields


def test_valid_job_has_no_problems() -> None:
    assert validate_custom_job(_job()) == []


def test_minimal_job_has_no_problems() -> None:
    job = aiplatform_v1.CustomJob(
        display_name="j",
        job_spec={
            "worker_pool_specs": [
                {
                    "machine_spec": {"machine_type": "e2-standard-4"},
                    "replica_count": 1,
                    "container_spec": {"image_uri": "busybox"},
                }
            ]
        },
    )
    assert validate_custom_job(job) == []


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A change that sets data[a][b]... (path "a.b", list indexes as numbers) to value."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return change


_DELETE = object()


def _use_python_package(pool: dict[str, Any]) -> None:
    del pool["container_spec"]
    pool["python_package_spec"] = {
        "executor_image_uri": "us-docker.pkg.dev/vertex-ai/training/sklearn-cpu.1-0:latest",
        "package_uris": ["gs://bucket/trainer-0.1.tar.gz"],
        "python_module": "trainer.task",
    }

BAD_JOBS: list[tuple[str, Callable[[dict[str, Any]], object], list[FieldProblem]]] = [
    ("no display name", _set("display_name", ""), [FieldProblem("display_name", REQUIRED)]),
    (
        "display name of 129 characters",
        _set("display_name", "x" * 129),
        [FieldProblem("display_name",
                      "The display name can be at most 128 characters long; it has 129.")],
    ),
    ("no job_spec", _set("job_spec", _DELETE), [FieldProblem("job_spec", REQUIRED)]),
    (
        "no worker pools",
        _set("job_spec.worker_pool_specs", []),
        [FieldProblem("job_spec.worker_pool_specs", REQUIRED)],
    ),
    (
        "empty first pool",
        _set("job_spec.worker_pool_specs.0", {}),
        [FieldProblem(POOL0, "The first worker pool must be specified; only the pools after it "
                             "can be left empty.")],
    ),
    (
        "first pool with 2 replicas",
        _set("job_spec.worker_pool_specs.0.replica_count", 2),
        [FieldProblem(f"{POOL0}.replica_count",
                      "The first worker pool (the primary replica) must have exactly 1 replica; "
                      "got 2. Put more replicas in worker_pool_specs[1].")],
    ),
    (
        "first pool with 0 replicas",
        _set("job_spec.worker_pool_specs.0.replica_count", 0),
        [FieldProblem(f"{POOL0}.replica_count",
                      "The first worker pool (the primary replica) must have exactly 1 replica; "
                      "got 0. Put more replicas in worker_pool_specs[1].")],
    ),
    (
        "second pool given with 0 replicas",
        _set("job_spec.worker_pool_specs.1",
             {"machine_spec": {"machine_type": "n1-standard-4"},
              "container_spec": {"image_uri": "busybox"}}),
        [FieldProblem(f"{POOL1}.replica_count",
                      "A worker pool that is specified must have at least 1 replica; got 0. "
                      "Leave the pool empty to skip it.")],
    ),
    (
        "neither container nor python package",
        _set("job_spec.worker_pool_specs.0.container_spec", _DELETE),
        [FieldProblem(f"{POOL0}.container_spec",
                      "Either `container_spec` or `python_package_spec` should be specified.")],
    ),
    (
        "python package",
        lambda data: _use_python_package(_pool(data)),
        [FieldProblem(f"{POOL0}.python_package_spec",
                      "python_package_spec is not supported by the gcpjobs emulator; use "
                      "container_spec.")],
    ),
    (
        "container without image",
        _set("job_spec.worker_pool_specs.0.container_spec.image_uri", ""),
        [FieldProblem(f"{POOL0}.container_spec.image_uri", REQUIRED)],
    ),
    (
        "101 environment variables",
        lambda data: _pool(data)["container_spec"]["env"].append({"name": "X", "value": "1"}),
        [FieldProblem(f"{POOL0}.container_spec.env",
                      "At most 100 environment variables are allowed; got 101.")],
    ),
    (
        "environment variable without a name",
        _set("job_spec.worker_pool_specs.0.container_spec.env.3", {"value": "1"}),
        [FieldProblem(f"{POOL0}.container_spec.env[3].name", REQUIRED)],
    ),
    (
        "no machine type",
        lambda data: _machine(data),
        [FieldProblem(f"{POOL0}.machine_spec.machine_type", REQUIRED)],
    ),
    (
        "unknown machine type",
        lambda data: _machine(data, machine_type="n1-standard-3"),
        [FieldProblem(f"{POOL0}.machine_spec.machine_type",
                      'Machine type "n1-standard-3" is not supported.')],
    ),
    (
        "accelerator the machine family cannot carry",
        lambda data: _machine(data, machine_type="n1-standard-4",
                              accelerator_type="NVIDIA_TESLA_K80", accelerator_count=1),
        [FieldProblem(f"{POOL0}.machine_spec.accelerator_type",
                      'Accelerator "NVIDIA_TESLA_K80" is not supported for machine type '
                      '"n1-standard-4".')],
    ),
    (
        "GPU on a CPU-only family",
        lambda data: _machine(data, machine_type="e2-standard-8",
                              accelerator_type="NVIDIA_TESLA_T4", accelerator_count=1),
        [FieldProblem(f"{POOL0}.machine_spec.accelerator_type",
                      'Accelerator "NVIDIA_TESLA_T4" is not supported for machine type '
                      '"e2-standard-8".')],
    ),
    (
        "accelerator type without count",
        lambda data: _machine(data, machine_type="n1-standard-4",
                              accelerator_type="NVIDIA_TESLA_T4"),
        [FieldProblem(f"{POOL0}.machine_spec.accelerator_type", BOTH_OR_NONE)],
    ),
    (
        "accelerator count without type",
        lambda data: _machine(data, machine_type="n1-standard-4", accelerator_count=1),
        [FieldProblem(f"{POOL0}.machine_spec.accelerator_type", BOTH_OR_NONE)],
    ),
    (
        "accelerator count the machine does not offer",
        lambda data: _machine(data, machine_type="n1-standard-4",
                              accelerator_type="NVIDIA_TESLA_T4", accelerator_count=3),
        [FieldProblem(f"{POOL0}.machine_spec.accelerator_count",
                      'Accelerator count 3 is not supported for "NVIDIA_TESLA_T4" on machine '
                      'type "n1-standard-4"; supported counts: 1, 2, 4.')],
    ),
    (
        "GPU machine without its GPU",
        lambda data: _machine(data, machine_type="a2-highgpu-1g"),
        [FieldProblem(f"{POOL0}.machine_spec.accelerator_type",
                      'Machine type "a2-highgpu-1g" requires accelerator_type NVIDIA_TESLA_A100 '
                      "with accelerator_count 1.")],
    ),
    (
        "boot disk too small",
        _set("job_spec.worker_pool_specs.0.disk_spec.boot_disk_size_gb", 50),
        [FieldProblem(f"{POOL0}.disk_spec.boot_disk_size_gb",
                      "The boot disk size must be between 100 and 64000 GB; got 50.")],
    ),
    (
        "boot disk too large",
        _set("job_spec.worker_pool_specs.0.disk_spec.boot_disk_size_gb", 64001),
        [FieldProblem(f"{POOL0}.disk_spec.boot_disk_size_gb",
                      "The boot disk size must be between 100 and 64000 GB; got 64001.")],
    ),
    (
        "unknown boot disk type",
        _set("job_spec.worker_pool_specs.0.disk_spec.boot_disk_type", "pd-fast"),
        [FieldProblem(f"{POOL0}.disk_spec.boot_disk_type",
                      'Boot disk type "pd-fast" is not supported; use one of pd-ssd, '
                      "pd-standard, hyperdisk-balanced.")],
    ),
    (
        "negative timeout",
        _set("job_spec.scheduling.timeout", {"seconds": -5}),
        [FieldProblem("job_spec.scheduling.timeout",
                      "The timeout must not be negative; got -5s.")],
    ),
    (
        "reserved IP ranges without a network",
        _set("job_spec.network", ""),
        [FieldProblem("job_spec.reserved_ip_ranges",
                      "Reserved IP ranges can only be used with a VPC network; set `network` "
                      "too or remove `reserved_ip_ranges`.")],
    ),
    (
        "output directory not in Cloud Storage",
        _set("job_spec.base_output_directory.output_uri_prefix", "s3://bucket/out"),
        [FieldProblem("job_spec.base_output_directory.output_uri_prefix",
                      'The output URI prefix must be a Cloud Storage URI (gs://...); got '
                      '"s3://bucket/out".')],
    ),
    (
        "output directory without a URI",
        _set("job_spec.base_output_directory", {}),
        [FieldProblem("job_spec.base_output_directory.output_uri_prefix", REQUIRED)],
    ),
    (
        "65 labels",
        _set("labels", {f"k{n}": "v" for n in range(65)}),
        [FieldProblem("labels", "At most 64 labels are allowed; got 65.")],
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"),
    [pytest.param(change, expected, id=name) for name, change, expected in BAD_JOBS],
)
def test_bad_job_yields_exact_problems(
    change: Callable[[dict[str, Any]], object], expected: list[FieldProblem]
) -> None:
    assert validate_custom_job(_job(change)) == expected


@pytest.mark.parametrize(
    ("labels", "expected_messages"),
    [
        ({"Team": "ml"}, [validate_label_key("Team")]),
        ({"1team": "ml"}, [validate_label_key("1team")]),
        ({"team": "ML"}, [validate_label_value("ML")]),
        ({"team": "x" * 64}, [validate_label_value("x" * 64)]),
        # sorted by key, the key's problem before its value's
        ({"b": "Bad", "A": "Worse"}, [validate_label_key("A"), validate_label_value("Worse"),
                                      validate_label_value("Bad")]),
    ],
)
def test_bad_labels_are_refused(labels: dict[str, str], expected_messages: list[str]) -> None:
    assert None not in expected_messages
    problems = validate_custom_job(_job(_set("labels", labels)))
    assert problems == [FieldProblem("labels", message) for message in expected_messages if message]


def test_display_name_counts_characters_not_bytes() -> None:
    assert validate_custom_job(_job(_set("display_name", "é" * 128))) == []


# proto-plus warns when it reads an enum number it does not know; that is the point here.
@pytest.mark.filterwarnings("ignore:Unrecognized AcceleratorType")
def test_unknown_accelerator_number_is_refused() -> None:
    job = _job()
    job.job_spec.worker_pool_specs[0].machine_spec.accelerator_type = 999
    job.job_spec.worker_pool_specs[0].machine_spec.accelerator_count = 1
    assert validate_custom_job(job) == [
        FieldProblem(f"{POOL0}.machine_spec.accelerator_type",
                     'Accelerator "999" is not a known accelerator type.')
    ]


def test_all_problems_are_listed_in_field_order() -> None:
    def many(data: dict[str, Any]) -> None:
        data["display_name"] = ""
        data["labels"] = {"Team": "ml"}
        _pool(data)["replica_count"] = 2
        _machine(data, machine_type="n1-standard-4", accelerator_type="NVIDIA_TESLA_K80",
                 accelerator_count=1)
        _pool(data)["container_spec"]["image_uri"] = ""
        _pool(data, 2)["disk_spec"]["boot_disk_type"] = "pd-fast"
        data["job_spec"]["scheduling"]["timeout"] = {"seconds": -1}

    assert [problem.field for problem in validate_custom_job(_job(many))] == [
        "display_name",
        f"{POOL0}.container_spec.image_uri",
        f"{POOL0}.machine_spec.accelerator_type",
        f"{POOL0}.replica_count",
        "job_spec.worker_pool_specs[2].disk_spec.boot_disk_type",
        "job_spec.scheduling.timeout",
        "labels",
    ]


def test_found_errors_layout_matches_the_real_service() -> None:
    # The observed message (reference §1.5): tab after the heading, "N.Field: ...; Message: ..."
    # and a space and a tab after each message.
    problems = validate_custom_job(_job(lambda data: _machine(
        data, machine_type="n1-standard-4", accelerator_type="NVIDIA_TESLA_T4")))
    assert format_found_errors(problems) == (
        "List of found errors:\t1.Field: job_spec.worker_pool_specs[0].machine_spec."
        "accelerator_type; Message: Both `accelerator_type` and `accelerator_count` should be "
        "specified or none. \t"
    )


def test_found_errors_numbers_every_problem() -> None:
    problems = [FieldProblem("display_name", REQUIRED), FieldProblem("job_spec", REQUIRED)]
    assert format_found_errors(problems) == (
        "List of found errors:\t"
        "1.Field: display_name; Message: Required field is not set. \t"
        "2.Field: job_spec; Message: Required field is not set. \t"
    )


def test_found_errors_stays_one_line_whatever_the_user_sent() -> None:
    job = _job(lambda data: _machine(data, machine_type="n1\nstandard\t4"))
    message = format_found_errors(validate_custom_job(job))
    assert "\n" not in message
    assert message.count("\t") == 2  # after the heading and after the one item
    assert 'n1\\nstandard\\t4' in message
