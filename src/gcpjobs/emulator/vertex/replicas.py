"""What each replica of a CustomJob runs, and with which environment, on this host.

The real service starts `image_uri` with `command` + `args` on one VM per replica. The emulator
records the image but does not pull it: it runs `command` + `args` as a local process, in a
working directory of its own, from the emulator's small job environment (executor.JobEnvironment:
not the emulator's own), with the variables Vertex sets (reference §2): CLOUD_ML_JOB_ID,
CLUSTER_SPEC, TF_CONFIG (distributed jobs only, as on Vertex), AIP_MODEL_DIR /
AIP_CHECKPOINT_DIR / AIP_TENSORBOARD_LOG_DIR when `base_output_directory` is set.

`gs://BUCKET/PATH` is mapped to the local directory `DATA_DIR/gcs/BUCKET/PATH` (created), so
that training code can write its model with plain file I/O, as it would through the /gcs FUSE
mount on Vertex; `GCPJOBS_EMULATOR_GCS_ROOT` says where that root is.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path

from google.cloud import aiplatform_v1
from google.protobuf import json_format

from gcpjobs.emulator.executor import (
    JobEnvironment,
    LaunchError,
    ReplicaLaunch,
    command_line,
    job_dir,
    logs_dir,
)

# Vertex's worker-pool positions and the TF_CONFIG task types they carry (reference §2.2, §2.4).
_TF_ROLES = ("chief", "worker", "ps", "evaluator")
GCS_ROOT_ENV = "GCPJOBS_EMULATOR_GCS_ROOT"


@dataclass(frozen=True)
class ReplicaPlan:
    launches: list[ReplicaLaunch]
    notes: list[str]  # the job's first log lines: what the emulator does differently


def gcs_root(data_dir: Path) -> Path:
    return data_dir / "gcs"


def local_path_for(uri: str, data_dir: Path) -> Path | None:
    """`gs://bucket/a/b` → `DATA_DIR/gcs/bucket/a/b`; None for anything that is not gs://."""
    if not uri.startswith("gs://"):
        return None
    bucket_and_path = uri[len("gs://") :].strip("/")
    return gcs_root(data_dir).joinpath(*[part for part in bucket_and_path.split("/") if part])


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _pools_in_use(spec: aiplatform_v1.CustomJobSpec) -> list[tuple[int, aiplatform_v1.WorkerPoolSpec]]:
    """Worker pools that run something; unused positions are given as empty values."""
    return [
        (index, pool)
        for index, pool in enumerate(spec.worker_pool_specs)
        if pool.replica_count > 0 and "container_spec" in pool
    ]


def _argv(pool: aiplatform_v1.WorkerPoolSpec, replica: str) -> tuple[list[str], str]:
    """The command line of one replica and a note on how it was derived."""
    # python_package_spec is refused by validation: the emulator runs containers only.
    container = pool.container_spec
    return command_line(replica, container.command, container.args, container.image_uri,
                        "container_spec.command")


def plan_replicas(
    job: aiplatform_v1.CustomJob,
    *,
    data_dir: Path,
    environment: JobEnvironment | None = None,
) -> ReplicaPlan:
    """One launch per replica of every pool in use, workerpool0-0 (the primary) first; each
    replica's environment starts from `environment` (default: one for `data_dir`)."""
    environment = environment or JobEnvironment(data_dir)
    job_id = job.name.rsplit("/", 1)[-1]
    spec = job.job_spec
    pools = _pools_in_use(spec)
    if not pools or pools[0][0] != 0:
        raise LaunchError("workerpool0-0", "The job has no primary replica in worker pool 0.")

    addresses = {
        index: [f"127.0.0.1:{_free_port()}" for _ in range(int(pool.replica_count))]
        for index, pool in pools
    }
    cluster = {f"workerpool{index}": hosts for index, hosts in addresses.items()}
    tf_cluster = {
        _TF_ROLES[index]: hosts for index, hosts in addresses.items() if _TF_ROLES[index] != "evaluator"
    }
    replica_total = sum(len(hosts) for hosts in addresses.values())
    job_as_dict = json_format.MessageToDict(aiplatform_v1.CustomJobSpec.pb(spec))

    notes = [
        "The gcpjobs emulator runs each replica's command and args as a local process on this "
        "host; container images are recorded, not pulled.",
    ]
    shared: dict[str, str] = {"CLOUD_ML_JOB_ID": job_id}
    shared[GCS_ROOT_ENV] = str(gcs_root(data_dir))
    output_uri = spec.base_output_directory.output_uri_prefix
    if output_uri:
        local = local_path_for(output_uri, data_dir)
        base = str(local) if local is not None else output_uri.rstrip("/")
        for variable, leaf in (
            ("AIP_MODEL_DIR", "model"),
            ("AIP_CHECKPOINT_DIR", "checkpoints"),
            ("AIP_TENSORBOARD_LOG_DIR", "logs"),
        ):
            shared[variable] = f"{base}/{leaf}/"
            if local is not None:
                (local / leaf).mkdir(parents=True, exist_ok=True)
        if local is not None:
            notes.append(f"base_output_directory {output_uri} is the local directory {local}.")

    launches: list[ReplicaLaunch] = []
    for index, pool in pools:
        for replica_index in range(int(pool.replica_count)):
            replica = f"workerpool{index}-{replica_index}"
            argv, note = _argv(pool, replica)
            notes.append(note)
            workdir = job_dir(data_dir, job_id) / "replicas" / replica
            env = environment.for_process(workdir)
            env.update(shared)
            env["CLUSTER_SPEC"] = json.dumps(
                {
                    "cluster": cluster,
                    "environment": "cloud",
                    "task": {"type": f"workerpool{index}", "index": replica_index, "trial": ""},
                    "job": job_as_dict,
                }
            )
            if replica_total > 1:  # Vertex sets TF_CONFIG for distributed jobs only
                env["TF_CONFIG"] = json.dumps(
                    {
                        "cluster": tf_cluster,
                        "environment": "cloud",
                        "task": {"type": _TF_ROLES[index], "index": replica_index, "trial": ""},
                        "job": job_as_dict,
                    }
                )
            env.update(_job_env(pool))  # the job's own variables win
            launches.append(
                ReplicaLaunch(
                    name=replica,
                    argv=argv,
                    env=env,
                    workdir=workdir,
                    log_path=logs_dir(data_dir, job_id) / f"{replica}.jsonl",
                )
            )
    return ReplicaPlan(launches=launches, notes=notes)


def _job_env(pool: aiplatform_v1.WorkerPoolSpec) -> dict[str, str]:
    return {variable.name: variable.value for variable in pool.container_spec.env}
