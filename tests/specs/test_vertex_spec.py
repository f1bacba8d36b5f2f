"""Valid VertexJob inputs: defaults, conversions, derived values and pool inheritance."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gcpjobs.errors import SpecError
from gcpjobs.specs.vertex import VertexJob, WorkerPool

IMAGE = "python:3.11"


def test_defaults_match_prefect_gcp_and_vertex() -> None:
    job = VertexJob(image=IMAGE)
    assert job.kind == "vertex"
    assert job.region == "us-central1"
    assert job.machine_type == "n1-standard-4"
    assert job.boot_disk_type == "pd-ssd"
    assert job.boot_disk_size_gb == 100
    assert job.maximum_run_time == timedelta(days=7)
    assert job.scheduling_strategy == "STANDARD"
    assert job.accelerator_type is None and job.accelerator_count is None
    assert job.command == [] and job.args == [] and job.env == {} and job.labels == {}
    assert job.extra_worker_pools == []


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"maximum_run_time_hours": 2}, timedelta(hours=2)),
        ({"maximum_run_time_hours": 0.5}, timedelta(minutes=30)),
        ({"maximum_run_time": 3600}, timedelta(hours=1)),
        ({"maximum_run_time": "3600s"}, timedelta(hours=1)),
        ({"maximum_run_time": "90m"}, timedelta(minutes=90)),
        ({"maximum_run_time": "1d 2h"}, timedelta(days=1, hours=2)),
        ({"maximum_run_time": "1.5h"}, timedelta(minutes=90)),
        ({"maximum_run_time": "PT2H"}, timedelta(hours=2)),
        ({"maximum_run_time": timedelta(minutes=5)}, timedelta(minutes=5)),
    ],
)
def test_run_time_forms(given: dict[str, object], expected: timedelta) -> None:
    assert VertexJob(image=IMAGE, **given).maximum_run_time == expected


def test_command_string_is_split_like_a_shell() -> None:
    job = VertexJob(image=IMAGE, command="python -c 'print(1 + 1)'")
    assert job.command == ["python", "-c", "print(1 + 1)"]


def test_yaml_scalars_become_text() -> None:
    job = VertexJob(image=IMAGE, args=["--epochs", 5, "--lr", 0.1, "--fast", True],
                    env={"BATCH_SIZE": 32, "DEBUG": False}, name=2024)
    assert job.args == ["--epochs", "5", "--lr", "0.1", "--fast", "true"]
    assert job.env == {"BATCH_SIZE": "32", "DEBUG": "false"}
    assert job.name == "2024"


def test_env_as_api_list_of_name_value() -> None:
    job = VertexJob(image=IMAGE, env=[{"name": "A", "value": "1"}, {"name": "B", "value": 2}])
    assert job.env == {"A": "1", "B": "2"}


def test_accelerator_type_alone_means_one() -> None:
    job = VertexJob(image=IMAGE, accelerator_type="nvidia-tesla-t4")
    assert (job.accelerator_type, job.accelerator_count) == ("NVIDIA_TESLA_T4", 1)


def test_zero_count_without_type_means_no_accelerator() -> None:
    job = VertexJob(image=IMAGE, accelerator_count=0)
    assert (job.accelerator_type, job.accelerator_count) == (None, None)


@pytest.mark.parametrize(
    ("machine", "accelerator", "count"),
    [
        ("a2-highgpu-1g", "NVIDIA_TESLA_A100", 1),
        ("a2-highgpu-4g", "NVIDIA_TESLA_A100", 4),
        ("g2-standard-4", "NVIDIA_L4", 1),
        ("g2-standard-48", "NVIDIA_L4", 4),
        ("a3-highgpu-8g", "NVIDIA_H100_80GB", 8),
    ],
)
def test_bundled_accelerator_is_filled_in(machine: str, accelerator: str, count: int) -> None:
    job = VertexJob(image=IMAGE, machine_type=machine)
    assert (job.accelerator_type, job.accelerator_count) == (accelerator, count)
    # Given explicitly, the same configuration is accepted too.
    again = VertexJob(image=IMAGE, machine_type=machine, accelerator_type=accelerator)
    assert again.accelerator_count == count


def test_changing_machine_derives_accelerator_again() -> None:
    job = VertexJob(image=IMAGE, machine_type="g2-standard-4")
    job.machine_type = "n1-standard-8"
    assert (job.accelerator_type, job.accelerator_count) == (None, None)
    moved = job.with_overrides(machine_type="a2-highgpu-2g")
    assert (moved.accelerator_type, moved.accelerator_count) == ("NVIDIA_TESLA_A100", 2)


def test_with_overrides_keeps_given_fields() -> None:
    job = VertexJob.model_validate(
        {"image": IMAGE, "maximum_run_time_hours": 3, "labels": {"team": "ml"}})
    changed = job.with_overrides(name="other")
    assert changed.name == "other"
    assert changed.maximum_run_time == timedelta(hours=3)
    assert changed.labels == {"team": "ml"}
    assert job.name == "gcpjobs-job"


def test_labels_are_sanitised() -> None:
    job = VertexJob(image=IMAGE, labels={"Team": "ML Ops", "2fa": "On", "owner": "A.B@x"})
    assert job.labels == {"team": "ml-ops", "x-2fa": "on", "owner": "a-b-x"}


def test_scheduling_strategy_is_case_insensitive() -> None:
    job = VertexJob(image=IMAGE, scheduling_strategy="flex-start", max_wait_duration="30m")
    assert job.scheduling_strategy == "FLEX_START"
    assert job.max_wait_duration == timedelta(minutes=30)


def test_machine_type_is_case_insensitive() -> None:
    assert VertexJob(image=IMAGE, machine_type=" N1-Standard-8 ").machine_type == "n1-standard-8"


def test_network_and_ranges_accepted() -> None:
    job = VertexJob(image=IMAGE, network="projects/12345/global/networks/vpc-1",
                    reserved_ip_ranges=["range-a"], service_account="t@p.iam.gserviceaccount.com",
                    base_output_directory="gs://bucket/runs/1", project="my-project-1")
    assert job.reserved_ip_ranges == ["range-a"]


def test_trailing_empty_pools_are_dropped_inner_ones_kept() -> None:
    job = VertexJob(image=IMAGE, extra_worker_pools=[None, {"replica_count": 2}, None, None])
    assert job.extra_worker_pools == [None, WorkerPool(replica_count=2)]


def test_extra_pools_inherit_from_the_primary() -> None:
    job = VertexJob(
        image=IMAGE, command=["python", "train.py"], args=["--role", "chief"],
        env={"A": "1", "B": "2"}, machine_type="n1-standard-8", accelerator_type="NVIDIA_TESLA_T4",
        extra_worker_pools=[
            {"replica_count": 3, "args": ["--role", "worker"], "env": {"B": "override"}},
            {"machine_type": "n2-standard-8", "image": "python:3.12"},
            None,
        ],
    )
    primary, workers, servers = job.resolved_pools()
    assert primary is not None and workers is not None and servers is not None
    assert primary.replica_count == 1
    assert workers.replica_count == 3
    assert workers.command == ("python", "train.py")
    assert workers.args == ("--role", "worker")
    assert workers.env == {"A": "1", "B": "override"}
    assert (workers.machine_type, workers.accelerator_type, workers.accelerator_count) == (
        "n1-standard-8", "NVIDIA_TESLA_T4", 1)
    # A pool on its own machine does not inherit the primary's GPU.
    assert (servers.machine_type, servers.accelerator_type) == ("n2-standard-8", None)
    assert servers.image == "python:3.12"
    assert servers.boot_disk_size_gb == 100


def test_worker_pool_alone_validates_its_fields() -> None:
    with pytest.raises(SpecError) as caught:
        WorkerPool(machine_type="n1-standart-4")
    assert caught.value.field == "machine_type"


def test_preview_method_renders_the_request() -> None:
    text = VertexJob(image=IMAGE, name="demo").preview("json")
    assert '"displayName": "demo-' in text


def test_yaml_dates_become_text() -> None:
    from datetime import date

    job = VertexJob(image=IMAGE, labels={"snapshot": date(2024, 1, 31)},
                    args=["--since", date(2024, 1, 1)])
    assert job.labels == {"snapshot": "2024-01-31"}
    assert job.args == ["--since", "2024-01-01"]
