"""What a replica sees (Vertex's environment variables, its directory) and how replicas decide
a job's result; every replica's output is kept line by line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from google.cloud import aiplatform_v1

from gcpjobs.emulator.executor import read_replica_logs
from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.support import (
    PARENT,
    PYTHON,
    State,
    custom_job,
    pool,
    process_gone,
    read_pids,
    wait_until,
)
from tests.waiting import wait_for

DUMP_ENV = (
    "import json, os; "
    "open(os.environ['OUT'], 'w').write(json.dumps({'env': dict(os.environ), 'cwd': os.getcwd()})); "
    "open(os.path.join(os.environ['AIP_MODEL_DIR'], 'model.txt'), 'w').write('weights')"
)


def test_a_single_replica_sees_the_vertex_variables_and_its_own(
    emulator: EmulatorProcess, grpc_job_client: aiplatform_v1.JobServiceClient, tmp_path: Path
) -> None:
    out = tmp_path / "seen.json"
    created = grpc_job_client.create_custom_job(
        parent=PARENT,
        custom_job=custom_job(
            ["python", "-c", DUMP_ENV],
            env={"OUT": str(out), "MY_SETTING": "42", "PYTHONUNBUFFERED": "0"},
            base_output_directory="gs://my-bucket/runs/7",
        ),
    )
    done = wait_until(grpc_job_client, created.name)
    assert done.state == State.JOB_STATE_SUCCEEDED, done.error.message
    seen = json.loads(out.read_text())
    env: dict[str, str] = seen["env"]
    job_id = created.name.rsplit("/", 1)[-1]
    data_dir = emulator.data_dir.resolve()

    assert env["CLOUD_ML_JOB_ID"] == job_id
    assert env["MY_SETTING"] == "42"
    assert env["PYTHONUNBUFFERED"] == "0"  # the job's own variables win
    assert seen["cwd"] == str(data_dir / "jobs" / job_id / "replicas" / "workerpool0-0")

    cluster_spec = json.loads(env["CLUSTER_SPEC"])
    assert cluster_spec["environment"] == "cloud"
    assert cluster_spec["task"] == {"type": "workerpool0", "index": 0, "trial": ""}
    assert list(cluster_spec["cluster"]) == ["workerpool0"]
    assert re.fullmatch(r"127\.0\.0\.1:\d+", cluster_spec["cluster"]["workerpool0"][0])
    assert cluster_spec["job"]["workerPoolSpecs"][0]["containerSpec"]["command"][0] == "python"
    assert "TF_CONFIG" not in env  # Vertex sets it for distributed jobs only

    local_base = data_dir / "gcs" / "my-bucket" / "runs" / "7"
    assert env["AIP_MODEL_DIR"] == f"{local_base}/model/"
    assert env["AIP_CHECKPOINT_DIR"] == f"{local_base}/checkpoints/"
    assert env["AIP_TENSORBOARD_LOG_DIR"] == f"{local_base}/logs/"
    assert env["GCPJOBS_EMULATOR_GCS_ROOT"] == str(data_dir / "gcs")
    assert (local_base / "model" / "model.txt").read_text() == "weights"


REPLICA_SCRIPT = r"""
import json, os, sys, time
spec = json.loads(os.environ["CLUSTER_SPEC"])
name = f"{spec['task']['type']}-{spec['task']['index']}"
out = os.environ["OUT"]
with open(os.path.join(out, name + ".json.tmp"), "w") as handle:
    json.dump({"cluster_spec": spec, "tf_config": json.loads(os.environ["TF_CONFIG"]), "pid": os.getpid()}, handle)
os.replace(os.path.join(out, name + ".json.tmp"), os.path.join(out, name + ".json"))
if name != "workerpool0-0":
    time.sleep(300)  # stopped by the emulator once the primary has succeeded
deadline = time.monotonic() + 20
while len([f for f in os.listdir(out) if f.endswith(".json")]) < 5:
    if time.monotonic() > deadline:
        sys.exit(9)
    time.sleep(0.02)
"""


def _distributed_job(out: Path, replica_script: str) -> aiplatform_v1.CustomJob:
    command = [PYTHON, "-c", replica_script]
    env = {"OUT": str(out)}
    job = custom_job(
        command,
        env=env,
        extra_pools=[pool(command, replicas=2, env=env), pool(command, env=env), pool(command, env=env)],
    )
    return job


def test_distributed_pools_get_distinct_tasks_and_the_primary_decides(
    grpc_job_client: aiplatform_v1.JobServiceClient, tmp_path: Path
) -> None:
    created = grpc_job_client.create_custom_job(
        parent=PARENT, custom_job=_distributed_job(tmp_path, REPLICA_SCRIPT)
    )
    done = wait_until(grpc_job_client, created.name)
    assert done.state == State.JOB_STATE_SUCCEEDED, done.error.message

    seen: dict[str, dict[str, Any]] = {
        path.stem.removesuffix(".json"): json.loads(path.read_text()) for path in tmp_path.glob("*.json")
    }
    assert sorted(seen) == ["workerpool0-0", "workerpool1-0", "workerpool1-1", "workerpool2-0", "workerpool3-0"]

    cluster = seen["workerpool0-0"]["cluster_spec"]["cluster"]
    assert {pool_name: len(hosts) for pool_name, hosts in cluster.items()} == {
        "workerpool0": 1, "workerpool1": 2, "workerpool2": 1, "workerpool3": 1}
    addresses = [host for hosts in cluster.values() for host in hosts]
    assert len(set(addresses)) == 5  # a distinct port per replica

    tasks = {name: (data["tf_config"]["task"]["type"], data["tf_config"]["task"]["index"])
             for name, data in seen.items()}
    assert tasks == {
        "workerpool0-0": ("chief", 0),
        "workerpool1-0": ("worker", 0),
        "workerpool1-1": ("worker", 1),
        "workerpool2-0": ("ps", 0),
        "workerpool3-0": ("evaluator", 0),
    }
    tf_cluster = seen["workerpool1-1"]["tf_config"]["cluster"]
    assert sorted(tf_cluster) == ["chief", "ps", "worker"]  # evaluators are never in the cluster
    assert tf_cluster["worker"] == cluster["workerpool1"]
    assert all(data["cluster_spec"]["cluster"] == cluster for data in seen.values())

    # Replicas still running when the primary succeeded were stopped.
    leftovers = [data["pid"] for name, data in seen.items() if name != "workerpool0-0"]
    assert wait_for(lambda: all(process_gone(pid) for pid in leftovers), timeout=5)


def test_a_failing_worker_fails_the_job_and_stops_the_primary(
    grpc_job_client: aiplatform_v1.JobServiceClient, tmp_path: Path
) -> None:
    primary = ["sh", "-c", 'echo $$ > "$OUT/primary"; exec sleep 300']
    worker = ["sh", "-c", 'test -f "$OUT/primary" || sleep 0.2; exit 4']
    env = {"OUT": str(tmp_path)}
    job = custom_job(primary, env=env, extra_pools=[pool(worker, env=env)])
    created = grpc_job_client.create_custom_job(parent=PARENT, custom_job=job)
    primary_pid = read_pids(tmp_path, ["primary"])["primary"]

    done = wait_until(grpc_job_client, created.name)

    assert done.state == State.JOB_STATE_FAILED
    assert done.error.message == (
        "The replica workerpool1-0 exited with a non-zero status of 4. Termination reason: Error."
    )
    assert process_gone(primary_pid)


def test_args_without_a_command_run_as_the_command_line(
    grpc_job_client: aiplatform_v1.JobServiceClient, tmp_path: Path
) -> None:
    # No command means "the image's entrypoint" on Vertex; the emulator has no image to ask.
    job = custom_job(["unused"], env={"OUT": str(tmp_path)})
    container = job.job_spec.worker_pool_specs[0].container_spec
    container.command = []
    container.args = ["sh", "-c", 'echo args > "$OUT/args"']

    created = grpc_job_client.create_custom_job(parent=PARENT, custom_job=job)

    assert wait_until(grpc_job_client, created.name).state == State.JOB_STATE_SUCCEEDED
    assert (tmp_path / "args").read_text() == "args\n"


def test_replica_output_is_kept_line_by_line(
    emulator: EmulatorProcess, grpc_job_client: aiplatform_v1.JobServiceClient
) -> None:
    script = "echo one; echo two >&2; printf 'three'"
    created = grpc_job_client.create_custom_job(parent=PARENT, custom_job=custom_job(["sh", "-c", script]))
    wait_until(grpc_job_client, created.name)
    job_id = created.name.rsplit("/", 1)[-1]

    entries = list(read_replica_logs(emulator.data_dir, job_id))

    assert entries[0].replica == "service"
    assert "recorded, not pulled" in entries[0].text
    replica_lines = [(e.stream, e.text) for e in entries if e.replica == "workerpool0-0"]
    assert sorted(replica_lines) == [("stderr", "two"), ("stdout", "one"), ("stdout", "three")]
    assert [e.text for e in entries if e.stream == "stdout"] == ["one", "three"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", e.time) for e in entries)

    raw = (emulator.data_dir / "jobs" / job_id / "logs" / "workerpool0-0.jsonl").read_text().splitlines()
    assert all(set(json.loads(line)) == {"time", "stream", "text"} for line in raw)
