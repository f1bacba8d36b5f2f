"""Issue 12, finding 9: the one-line errors a job file gets say what to do.

Run through the real `gcpjobs preview` (it sends nothing, so no emulator is needed)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.cli.support import assert_one_line_error, clean_env, gcpjobs, job_file


def test_an_unknown_field_of_a_raw_custom_job_spec_lists_the_known_ones(tmp_path: Path) -> None:
    path = job_file(tmp_path, """\
        workerPoolSpecs:
          - machineSpec: {machineType: n1-standard-4}
            replicaCount: 1
            containerSpec: {imageUri: python:3.11, command: [python, -c, "print(1)"]}
        bogusField: 1
        """)
    result = gcpjobs("preview", str(path), env=clean_env())
    assert result.returncode == 2
    # It said "(known fields: )": the names were read from an iterator already used up.
    assert_one_line_error(result, "bogusField", "known fields: ", "workerPoolSpecs",
                          "serviceAccount")


def test_replica_count_on_the_job_says_where_replicas_go(tmp_path: Path) -> None:
    path = job_file(tmp_path, """\
        kind: vertex
        image: python:3.11
        command: [python]
        replica_count: many
        """)
    result = gcpjobs("preview", str(path), env=clean_env())
    assert result.returncode == 2
    assert_one_line_error(result, "replica_count", "extra_worker_pools")
    assert "service_account" not in result.stderr  # the spelling-only guess it made


def test_a_cloud_run_env_value_over_the_api_limit_is_refused_up_front(tmp_path: Path) -> None:
    document = {"kind": "cloud-run", "image": "python:3.11", "command": ["python"],
                "env": {"BIG": "x" * 3_000_000, "SMALL": "y" * 32_768}}
    path = job_file(tmp_path, yaml.safe_dump(document))
    result = gcpjobs("preview", str(path), env=clean_env())
    assert result.returncode == 2
    assert_one_line_error(result, "BIG", "3,000,000 bytes", "32,768")
    assert len(result.stderr) < 500  # the value itself is never echoed
