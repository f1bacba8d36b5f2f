"""`gcpjobs` with Cloud Run jobs and with base job templates, in this process (`template show`
as the real console script) against the emulator; results checked with the official `run_v2`
clients."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from google.api_core import exceptions as core_exceptions
from google.cloud import run_v2
from google.cloud.run_v2.services.executions.transports import ExecutionsGrpcTransport
from google.cloud.run_v2.services.jobs.transports import JobsGrpcTransport

from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.specs.templates import JobTemplate
from tests.cli.support import assert_one_line_error, gcpjobs, gcpjobs_process, job_file, python_job


@pytest.fixture(scope="module")
def run_jobs(emulator: EmulatorProcess) -> Iterator[run_v2.JobsClient]:
    channel = grpc.insecure_channel(emulator.grpc_address)
    official = run_v2.JobsClient(transport=JobsGrpcTransport(channel=channel))
    yield official
    official.transport.close()


@pytest.fixture(scope="module")
def run_executions(emulator: EmulatorProcess) -> Iterator[run_v2.ExecutionsClient]:
    channel = grpc.insecure_channel(emulator.grpc_address)
    official = run_v2.ExecutionsClient(transport=ExecutionsGrpcTransport(channel=channel))
    yield official
    official.transport.close()


def execution_name(stdout: str) -> str:
    return next(word for word in stdout.split() if "/executions/" in word)


def test_run_a_cloud_run_job_reports_tasks_and_deletes_the_job(
    tmp_path: Path, env: dict[str, str], run_jobs: run_v2.JobsClient
) -> None:
    path = python_job(tmp_path, "import os; print(os.environ['CLOUD_RUN_TASK_INDEX'])",
                      kind="cloud-run", task_count=3, parallelism=2)
    result = gcpjobs("run", str(path), env=env)
    assert result.returncode == 0, result.stderr
    assert "SUCCEEDED" in result.stdout and "3/3 tasks succeeded" in result.stdout
    job = execution_name(result.stdout).split("/executions/")[0]
    with pytest.raises(core_exceptions.NotFound):
        run_jobs.get_job(name=job)


def test_a_failing_cloud_run_job_exits_1_with_its_task_counts(
    tmp_path: Path, env: dict[str, str]
) -> None:
    path = python_job(tmp_path, "import sys; sys.exit(4)", kind="cloud-run", max_retries=1)
    result = gcpjobs("run", str(path), env=env)
    assert result.returncode == 1, result.stderr
    assert "FAILED" in result.stdout and "1 failed" in result.stdout and "1 retried" in result.stdout


def test_detach_status_list_and_cancel_an_execution(
    tmp_path: Path, env: dict[str, str], run_executions: run_v2.ExecutionsClient
) -> None:
    path = python_job(tmp_path, "import time; time.sleep(120)", kind="cloud-run",
                      name="cli-detached", keep_job=True)
    started = gcpjobs("run", "--detach", str(path), env=env)
    assert started.returncode == 0, started.stderr
    name = started.stdout.strip().splitlines()[-1]
    short = name.rsplit("/", 1)[-1]

    status = gcpjobs("status", short, "--json", env=env)
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert document["name"] == name and document["kind"] == "cloud-run"
    assert document["tasks"]["task_count"] == 1

    listed = gcpjobs("list", "--kind", "cloud-run", env=env)
    assert listed.returncode == 0 and short in listed.stdout and "cloud-run" in listed.stdout

    cancelled = gcpjobs("cancel", short, env=env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "CANCELLED" in cancelled.stdout
    assert run_executions.get_execution(name=name).cancelled_count == 1


def test_list_shows_both_kinds(tmp_path: Path, env: dict[str, str]) -> None:
    for kind in ("vertex", "cloud-run"):
        assert gcpjobs("run", str(python_job(tmp_path, "pass", kind=kind, keep_job=True)
                                  if kind == "cloud-run" else python_job(tmp_path, "pass")),
                       env=env).returncode == 0
    listed = gcpjobs("list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "vertex" in listed.stdout and "cloud-run" in listed.stdout


def test_list_skips_a_kind_the_project_does_not_serve_unless_asked_for_it(
    tmp_path: Path, env: dict[str, str], emulator: EmulatorProcess
) -> None:
    assert gcpjobs("run", str(python_job(tmp_path, "pass")), env=env).returncode == 0
    emulator.inject_fault("Executions.ListExecutions", "permission_denied")
    listed = gcpjobs("list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "vertex" in listed.stdout
    assert "cloud-run jobs not listed: PERMISSION_DENIED" in listed.stderr

    emulator.inject_fault("Executions.ListExecutions", "permission_denied")
    asked = gcpjobs("list", "--kind", "cloud-run", env=env)
    assert asked.returncode == 1
    assert_one_line_error(asked, "PERMISSION_DENIED", "ListExecutions")


def test_preview_of_a_cloud_run_job_is_the_create_job_request(
    tmp_path: Path, env: dict[str, str]
) -> None:
    path = python_job(tmp_path, "pass", kind="cloud-run",
                      env={"API_TOKEN": "hunter2", "MODE": "fast",
                           "DB_PASSWORD": {"secret": "db-password", "version": "3"}})
    result = gcpjobs("preview", "--format", "json", str(path), env=env)
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    request = json.loads(result.stdout)
    container = request["job"]["template"]["template"]["containers"][0]
    env_vars = {item["name"]: item for item in container["env"]}
    assert env_vars["MODE"]["value"] == "fast"
    assert env_vars["DB_PASSWORD"]["valueSource"]["secretKeyRef"]["secret"] == "db-password"


# ----------------------------------------------------------------------------- templates


@pytest.mark.parametrize("kind", ["vertex", "cloud-run"])
def test_template_show_prints_a_template_that_loads_back(
    tmp_path: Path, env: dict[str, str], kind: str
) -> None:
    result = gcpjobs_process("template", "show", kind, env=env)
    assert result.returncode == 0, result.stderr
    template = JobTemplate.from_mapping(yaml.safe_load(result.stdout))
    assert "image" in template.variable_names()


def test_run_a_default_template_with_values_and_overrides(
    tmp_path: Path, env: dict[str, str]
) -> None:
    values = job_file(tmp_path, f"image: python:3.11\ncommand: [{sys.executable}, -c]\n",
                      name="values.yaml")
    code = "import os; assert os.environ['CLOUD_RUN_TASK_COUNT'] == '2'"
    result = gcpjobs(
        "run", str(values), "--template", "cloud-run",
        "--set", "task_count=2", "--set", f"args=[{json.dumps(code)}]", env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "2/2 tasks succeeded" in result.stdout


def test_preview_renders_a_template(env: dict[str, str]) -> None:
    result = gcpjobs("preview", "--template", "vertex", "--set", "image=python:3.11",
                     "--set", "machine_type=n1-standard-8", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    pool = json.loads(result.stdout)["customJob"]["jobSpec"]["workerPoolSpecs"][0]
    assert pool["machineSpec"]["machineType"] == "n1-standard-8"


def test_a_generated_template_runs_the_job_it_came_from(
    tmp_path: Path, env: dict[str, str]
) -> None:
    path = python_job(tmp_path, "print('from a template')")
    generated = gcpjobs("template", "generate", str(path), env=env)
    assert generated.returncode == 0, generated.stderr
    template_path = job_file(tmp_path, generated.stdout, name="template.yaml")
    result = gcpjobs("run", "--template", str(template_path), env=env)
    assert result.returncode == 0, result.stderr
    assert "SUCCEEDED" in result.stdout


def test_set_overrides_a_field_of_a_job_file(tmp_path: Path, env: dict[str, str]) -> None:
    path = python_job(tmp_path, "pass")
    result = gcpjobs("preview", str(path), "--set", "machine_type=n1-highmem-8",
                     "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    assert "n1-highmem-8" in result.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["run", "--template", "vertex", "--set", "image"], ["'image'", "NAME=VALUE"]),
        (["run", "--template", "vertex", "--set", "imgae=x"], ["imgae", "image"]),
        (["run", "--template", "vertex"], ["image"]),
        (["run", "--template", "no-such-template.yaml"], ["no-such-template.yaml"]),
        (["template", "show", "lambda"], ["lambda", "cloud-run"]),
        (["run"], ["job file", "--template"]),
        (["status", "x", "--kind", "batch"], ["batch", "cloud-run"]),
        (["list", "--kind", "cloud-run", "--filter", "state=x"], ["filter"]),
        (["template", "show", "vertex", "--format", "xml"], ["xml", "yaml or json"]),
        (["template", "generate", "no-such-job.yaml"], ["no-such-job.yaml"]),
    ],
)
def test_bad_template_and_kind_input_is_one_line_and_exit_2(
    env: dict[str, str], args: list[str], fragments: list[str]
) -> None:
    result = gcpjobs(*args, env=env)
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result, *fragments)


def test_the_v1_example_runs(env: dict[str, str]) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "cloudrun" / "v1-job.yaml"
    result = gcpjobs("run", str(example), env=env)
    assert result.returncode == 0, result.stderr
    assert "3/3 tasks succeeded" in result.stdout


V1_TEMPLATE = {
    "job_configuration": {
        "apiVersion": "run.googleapis.com/v1",
        "kind": "Job",
        "metadata": {"name": "{{ name }}",
                     "labels": {"cloud.googleapis.com/location": "us-central1"}},
        "spec": {"template": {"spec": {
            "taskCount": "{{ task_count }}",
            "template": {"spec": {
                "timeoutSeconds": "{{ timeout_seconds }}",
                "serviceAccountName": "{{ service_account }}",
                "containers": [{
                    "image": "{{ image }}",
                    "command": "{{ command }}",
                    "env": [{"name": "GREETING", "value": "hello {{ who }}"}],
                }],
            }},
        }}},
    },
    "variables": {
        "type": "object",
        "required": ["image"],
        "properties": {
            "name": {"type": "string", "default": "v1-templated"},
            "image": {"type": "string"},
            "command": {"type": "array", "items": {"type": "string"}},
            "task_count": {"type": "integer", "default": 1},
            "timeout_seconds": {"type": "integer", "default": 600},
            "service_account": {"type": "string"},
            "who": {"type": "string", "default": "world"},
        },
    },
}


def test_a_v1_body_template_renders_translates_and_runs(
    tmp_path: Path, env: dict[str, str]
) -> None:
    template = job_file(tmp_path, yaml.safe_dump(V1_TEMPLATE), name="v1-template.yaml")
    code = ("import os; assert os.environ['GREETING'] == 'hello gcpjobs', os.environ['GREETING'];"
            " assert os.environ['CLOUD_RUN_TASK_COUNT'] == '2'")
    command = json.dumps([sys.executable, "-c", code])
    # service_account is unset: its key is removed, not sent as "None".
    preview = gcpjobs("preview", "--template", str(template), "--set", "image=python:3.11",
                      "--set", f"command={command}", "--format", "json", env=env)
    assert preview.returncode == 0, preview.stderr
    task = json.loads(preview.stdout)["job"]["template"]["template"]
    assert "serviceAccount" not in task and task["timeout"] == "600s"
    result = gcpjobs("run", "--template", str(template), "--set", "image=python:3.11",
                     "--set", f"command={command}", "--set", "task_count=2",
                     "--set", "who=gcpjobs", env=env)
    assert result.returncode == 0, result.stderr
    assert "2/2 tasks succeeded" in result.stdout
