"""The Vertex AI SDK (`google.cloud.aiplatform`, what prefect-gcp's Vertex worker and most
notebooks use) runs a CustomJob against the emulator unchanged, set up as docs/emulator.md
("Use it from gcloud, the SDK and Prefect") says: REST transport, `http://` endpoint.
"""

from __future__ import annotations

import sys

from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform_v1

from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.support import LOCATION, PROJECT


def _pool(code: str) -> list[dict[str, object]]:
    return [{
        "machine_spec": {"machine_type": "n1-standard-4"},
        "replica_count": 1,
        "container_spec": {"image_uri": "python:3.11-slim",
                           "command": [sys.executable, "-c", code]},
    }]


def test_the_sdk_runs_a_custom_job_to_its_end(
    emulator: EmulatorProcess, rest_job_client: aiplatform_v1.JobServiceClient,
) -> None:
    from google.cloud import aiplatform

    aiplatform.init(project=PROJECT, location=LOCATION, api_transport="rest",
                    api_endpoint=emulator.rest_endpoint, credentials=AnonymousCredentials(),
                    staging_bucket="gs://any-bucket")
    job = aiplatform.CustomJob(display_name="sdk-succeeds", worker_pool_specs=_pool("print(1)"))
    job.run(sync=True)
    assert job.state == aiplatform_v1.JobState.JOB_STATE_SUCCEEDED
    # The same job, read by the GAPIC client: the SDK made exactly this one.
    seen = rest_job_client.get_custom_job(name=job.resource_name)
    assert seen.display_name == "sdk-succeeds"
    assert seen.state == aiplatform_v1.JobState.JOB_STATE_SUCCEEDED

