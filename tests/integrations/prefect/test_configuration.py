"""From a work pool's base job template and a deployment's job variables to one validated
spec per flow run, through Prefect's own rendering (`from_template_and_values`) and
preparation (`prepare_for_flow_run`) and then `to_spec()`."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, cast
from uuid import uuid4

import pytest
from prefect.client.schemas.objects import Flow, FlowRun, WorkPool
from prefect.client.schemas.responses import DeploymentResponse
from prefect.settings import (
    PREFECT_API_AUTH_STRING,
    PREFECT_API_KEY,
    PREFECT_API_URL,
    temporary_settings,
)

from gcpjobs.errors import SpecError
from gcpjobs.integrations.prefect.configuration import (
    CloudRunJobConfiguration,
    GcpJobsJobConfiguration,
    VertexJobConfiguration,
)
from gcpjobs.integrations.prefect.credentials import GcpJobsCredentials
from gcpjobs.integrations.prefect.templates import prefect_base_job_template
from gcpjobs.protos.cloudrun import build_create_request, job_id_for, request_to_dict
from gcpjobs.specs.cloudrun import CloudRunJob, SecretRef
from gcpjobs.specs.labels import new_submission_id
from gcpjobs.specs.vertex import VertexJob

API_URL = "http://prefect.example/api"
API_KEY = "pnu_not-a-real-key-0123456789"
AUTH_STRING = "admin:not-a-real-password"
IMAGE = "us-docker.pkg.dev/my-project/flows/etl:1"
CONFIGURATIONS = [VertexJobConfiguration, CloudRunJobConfiguration]
Configuration = type[GcpJobsJobConfiguration]


class NoClient:
    """Stands in for the Prefect client `from_template_and_values` takes: it is used only to
    resolve block documents and Prefect variables, which these values do not refer to, so
    any use fails loudly (AttributeError)."""


async def configure(cls: Configuration, values: dict[str, Any], *,
                    flow_run: FlowRun | None = None, api_key: str | None = None,
                    auth_string: str | None = None) -> GcpJobsJobConfiguration:
    """The configuration a worker of `cls`'s kind builds for one flow run of a deployment with
    `values` as its job variables (Prefect's own functions, with the worker's settings)."""
    configuration = cast(GcpJobsJobConfiguration, await cls.from_template_and_values(
        prefect_base_job_template(cls.kind), values, client=cast(Any, NoClient())))
    updates: dict[Any, Any] = {PREFECT_API_URL: API_URL}
    if api_key:
        updates[PREFECT_API_KEY] = api_key
    if auth_string:
        updates[PREFECT_API_AUTH_STRING] = auth_string
    restore = [setting for setting, given in ((PREFECT_API_KEY, api_key),
                                              (PREFECT_API_AUTH_STRING, auth_string))
               if not given]
    with temporary_settings(updates=updates, restore_defaults=restore):
        configuration.prepare_for_flow_run(
            flow_run or FlowRun(flow_id=uuid4(), name="crazy-tortoise"),
            # (the pydantic plugin does not see these models' default factories)
            deployment=DeploymentResponse(name="nightly", flow_id=uuid4()),  # type: ignore[call-arg]
            flow=Flow(name="Train Model"),  # type: ignore[call-arg]
            work_pool=WorkPool(name="gpu-pool", type=f"gcpjobs-{cls.kind}"),  # type: ignore[call-arg]
            worker_name="worker-1",
        )
    return configuration


async def spec_for(cls: Configuration, values: dict[str, Any], **kwargs: Any) -> Any:
    return (await configure(cls, values, **kwargs)).to_spec()


async def error_for(cls: Configuration, values: dict[str, Any], **kwargs: Any) -> str:
    """The one-line error a worker gets for these job variables, while building the
    configuration or the spec."""
    with pytest.raises(SpecError) as caught:
        await spec_for(cls, values, **kwargs)
    text = str(caught.value)
    assert "\n" not in text and "Traceback" not in text and "validation error" not in text
    assert text.startswith("job variable"), text
    return text


def vertex_values(**values: Any) -> dict[str, Any]:
    return {"image": IMAGE, **values}


# ---------------------------------------------------------------------------- Prefect's part


@pytest.mark.parametrize("cls", CONFIGURATIONS, ids=lambda c: c.kind)
async def test_flow_run_gets_prefects_command_env_labels_and_name(cls: Configuration) -> None:
    flow_run = FlowRun(flow_id=uuid4(), name="crazy-tortoise")
    spec = await spec_for(cls, vertex_values(labels={"team": "Vision"}), flow_run=flow_run)

    assert isinstance(spec, VertexJob if cls is VertexJobConfiguration else CloudRunJob)
    assert spec.command == ["prefect", "flow-run", "execute"]
    assert spec.env["PREFECT__FLOW_RUN_ID"] == str(flow_run.id)
    assert spec.env["PREFECT_API_URL"] == API_URL
    assert spec.env["PREFECT__WORKER_NAME"] == "worker-1"
    assert spec.name == "crazy-tortoise"
    labels = spec.labels
    assert labels["prefect-io-flow-run-id"] == str(flow_run.id)
    assert labels["prefect-io-flow-name"] == "train-model"  # sanitised: lowercase, no spaces
    assert labels["prefect-io-version"].replace("-", ".").count(".") >= 2
    assert labels["prefect-io-work-pool-name"] == "gpu-pool"
    assert labels["prefect-io-deployment-name"] == "nightly"
    assert labels["team"] == "vision"


@pytest.mark.parametrize("cls", CONFIGURATIONS, ids=lambda c: c.kind)
async def test_an_unknown_job_variable_fails_the_submission(cls: Configuration) -> None:
    """Issue 12, finding 10: Prefect's rendering dropped it, and the job ran on the default
    machine."""
    text = await error_for(cls, vertex_values(regoin="europe-west4"))
    assert text.startswith("job variable regoin: is not a variable of this work pool; "
                           "did you mean 'region'?"), text
    if cls is VertexJobConfiguration:
        text = await error_for(cls, vertex_values(machine_typo="n1-highmem-8"))
        assert "did you mean 'machine_type'?" in text, text
    text = await error_for(cls, vertex_values(zzz_unrelated=1))
    assert "prefect work-pool inspect" in text
    # Prefect's dotted form names a known variable's key: accepted.
    spec = await spec_for(cls, vertex_values(**{"env.MODE": "nightly"}))
    assert spec.env["MODE"] == "nightly"


@pytest.mark.parametrize("cls", CONFIGURATIONS, ids=lambda c: c.kind)
async def test_job_variables_add_to_prefects_env(cls: Configuration) -> None:
    spec = await spec_for(cls, vertex_values(env={"MODE": "nightly", "EPOCHS": "3"}))
    assert spec.env["MODE"] == "nightly" and spec.env["EPOCHS"] == "3"
    assert "PREFECT__FLOW_RUN_ID" in spec.env


@pytest.mark.parametrize("cls", CONFIGURATIONS, ids=lambda c: c.kind)
async def test_own_labels_win_over_prefects(cls: Configuration) -> None:
    spec = await spec_for(cls, vertex_values(labels={"prefect-io-flow-name": "mine"}))
    assert spec.labels["prefect-io-flow-name"] == "mine"


@pytest.mark.parametrize("cls", CONFIGURATIONS, ids=lambda c: c.kind)
async def test_a_command_of_ones_own_is_split_like_a_shell(cls: Configuration) -> None:
    spec = await spec_for(cls, vertex_values(command="python -m flows.run --tag 'a b'"))
    assert spec.command == ["python", "-m", "flows.run", "--tag", "a b"]
    # A list (as gcpjobs job files write commands) means the same words.
    configuration = await configure(cls, vertex_values(
        command=["python", "-m", "flows.run", "--tag", "a b"]))
    assert configuration.to_spec().command == spec.command


async def test_the_name_can_use_prefects_flow_run_context() -> None:
    spec = await spec_for(VertexJobConfiguration,
                          vertex_values(name="{{ ctx.flow.name }}-{{ ctx.flow_run.name }}"))
    assert spec.name == "Train Model-crazy-tortoise"


async def test_cloud_run_job_ids_come_from_the_flow_run_name() -> None:
    flow_run = FlowRun(flow_id=uuid4(), name="Nightly_ETL run")
    spec = await spec_for(CloudRunJobConfiguration, {}, flow_run=flow_run)
    assert spec.name == "nightly-etl-run"
    job_id = job_id_for(spec, new_submission_id())
    assert job_id.startswith("nightly-etl-run-") and len(job_id) <= 57


# ---------------------------------------------------------------------------- defaults, overrides


async def test_vertex_defaults_and_overrides() -> None:
    default = await spec_for(VertexJobConfiguration, vertex_values())
    assert (default.machine_type, default.boot_disk_type, default.boot_disk_size_gb) == (
        "n1-standard-4", "pd-ssd", 100)
    assert default.maximum_run_time == timedelta(days=7)  # not prefect-gcp's 1 hour
    assert default.region == "us-central1"

    spec = await spec_for(VertexJobConfiguration, vertex_values(
        machine_type="n1-standard-8", accelerator_type="NVIDIA_TESLA_T4", accelerator_count=2,
        boot_disk_size_gb=200, region="europe-west4", scheduling_strategy="SPOT",
        persistent_resource_id=None, extra_worker_pools=[{"replica_count": 3}]))
    assert spec.machine_type == "n1-standard-8"
    assert (spec.accelerator_type, spec.accelerator_count) == ("NVIDIA_TESLA_T4", 2)
    assert spec.boot_disk_size_gb == 200 and spec.region == "europe-west4"
    assert spec.scheduling_strategy == "SPOT"
    assert spec.extra_worker_pools[0].replica_count == 3


async def test_cloud_run_defaults_are_prefect_gcps_and_overrides_apply() -> None:
    default = await spec_for(CloudRunJobConfiguration, {})
    assert default.image == "prefecthq/prefect:3-latest"
    assert (default.cpu, default.memory, default.max_retries) == ("1", "512Mi", 0)
    assert default.timeout == timedelta(seconds=600)
    assert default.launch_stage == "BETA" and default.keep_job is False

    spec = await spec_for(CloudRunJobConfiguration, {
        "image": IMAGE, "cpu": "4000m", "memory": "8Gi", "timeout": 7200, "max_retries": 2,
        "task_count": 3, "parallelism": 2, "launch_stage": "GA", "gpu_type": None})
    assert (spec.cpu, spec.memory, spec.max_retries) == ("4", "8Gi", 2)
    assert spec.timeout == timedelta(hours=2)
    assert (spec.task_count, spec.parallelism, spec.launch_stage) == (3, 2, "GA")


async def test_cloud_run_unspecified_launch_stage_means_unset() -> None:
    spec = await spec_for(CloudRunJobConfiguration, {"launch_stage": "LAUNCH_TAG_UNSPECIFIED"})
    assert spec.launch_stage is None


# ---------------------------------------------------------------------------- prefect-gcp's names


async def test_vertex_aliases_map_to_our_fields() -> None:
    spec = await spec_for(VertexJobConfiguration, vertex_values(
        maximum_run_time_hours=2, service_account_name="trainer@p.iam.gserviceaccount.com",
        scheduling={"strategy": "FLEX_START", "max_wait_duration": "1800s",
                    "restart_job_on_worker_restart": True, "disable_retries": True}))
    assert spec.maximum_run_time == timedelta(hours=2)
    assert spec.service_account == "trainer@p.iam.gserviceaccount.com"
    assert spec.scheduling_strategy == "FLEX_START"
    assert spec.max_wait_duration == timedelta(minutes=30)
    assert spec.restart_job_on_worker_restart and spec.disable_retries

    on_demand = await spec_for(VertexJobConfiguration, vertex_values(
        scheduling={"strategy": "ON_DEMAND", "timeout": "5400s"}))
    assert on_demand.scheduling_strategy == "STANDARD"
    assert on_demand.maximum_run_time == timedelta(minutes=90)


async def test_alias_and_field_with_the_same_meaning_agree() -> None:
    spec = await spec_for(VertexJobConfiguration, vertex_values(
        maximum_run_time="2h", maximum_run_time_hours=2, scheduling={"timeout": "7200s"},
        scheduling_strategy="SPOT", service_account="a@p.iam.gserviceaccount.com",
        service_account_name="a@p.iam.gserviceaccount.com"))
    assert spec.maximum_run_time == timedelta(hours=2)
    assert spec.scheduling_strategy == "SPOT"


async def test_cloud_run_aliases_map_to_our_fields() -> None:
    spec = await spec_for(CloudRunJobConfiguration, {
        "service_account_name": "runner@p.iam.gserviceaccount.com",
        "vpc_connector_name": "my-connector", "cloudsql_instances": []})
    assert spec.service_account == "runner@p.iam.gserviceaccount.com"
    assert spec.vpc_connector == "my-connector"


@pytest.mark.parametrize(("cls", "values", "names"), [
    (VertexJobConfiguration, vertex_values(maximum_run_time="3h", maximum_run_time_hours=2),
     ("maximum_run_time", "maximum_run_time_hours")),
    (VertexJobConfiguration, vertex_values(maximum_run_time_hours=2,
                                           scheduling={"timeout": "3600s"}),
     ("maximum_run_time_hours", "scheduling.timeout")),
    (VertexJobConfiguration, vertex_values(scheduling_strategy="SPOT",
                                           scheduling={"strategy": "FLEX_START"}),
     ("scheduling_strategy", "scheduling.strategy")),
    (VertexJobConfiguration, vertex_values(service_account="a@p.iam.gserviceaccount.com",
                                           service_account_name="b@p.iam.gserviceaccount.com"),
     ("service_account", "service_account_name")),
    (CloudRunJobConfiguration, {"vpc_connector": "one", "vpc_connector_name": "two"},
     ("vpc_connector", "vpc_connector_name")),
    (CloudRunJobConfiguration, {"service_account": "a@p.iam.gserviceaccount.com",
                                "service_account_name": "b@p.iam.gserviceaccount.com"},
     ("service_account", "service_account_name")),
], ids=lambda v: v if isinstance(v, str) else None)
async def test_alias_and_field_that_disagree_are_one_line_naming_both(
        cls: Configuration, values: dict[str, Any], names: tuple[str, str]) -> None:
    text = await error_for(cls, values)
    assert all(name in text for name in names), text
    assert "different values" in text


async def test_errors_name_the_alias_the_user_set() -> None:
    text = await error_for(VertexJobConfiguration,
                           vertex_values(service_account_name="not-an-email"))
    assert text.startswith("job variable service_account_name: 'not-an-email' is not a "
                           "service account")
    text = await error_for(VertexJobConfiguration, vertex_values(
        scheduling={"timeout": "forever"}))
    assert text.startswith("job variable scheduling.timeout: 'forever' is not a duration")
    text = await error_for(VertexJobConfiguration, vertex_values(maximum_run_time_hours=9999))
    assert text.startswith("job variable maximum_run_time_hours: must be more than 0")


async def test_unsupported_prefect_gcp_features_are_refused_when_used() -> None:
    text = await error_for(VertexJobConfiguration, vertex_values(enable_dashboard_access=True))
    assert "enable_dashboard_access" in text and "not supported" in text
    await spec_for(VertexJobConfiguration, vertex_values(enable_dashboard_access=False))
    text = await error_for(CloudRunJobConfiguration,
                           {"cloudsql_instances": ["p:us-central1:db"]})
    assert text.startswith("job variable cloudsql_instances: Cloud SQL") and \
        "not supported" in text
    text = await error_for(VertexJobConfiguration, vertex_values(
        scheduling={"priority": 3}))
    assert text.startswith("job variable scheduling.priority: is not a Vertex AI scheduling")


# ---------------------------------------------------------------------------- Cloud Run secrets


def request_text(spec: CloudRunJob) -> str:
    """The whole CreateJob request as the service would receive it (nothing redacted)."""
    request = build_create_request(spec, "my-project", new_submission_id())
    return json.dumps(request_to_dict(request, redact=False))


async def test_cloud_run_gets_the_api_key_as_a_secret_reference_only() -> None:
    spec = await spec_for(CloudRunJobConfiguration, {
        "prefect_api_key_secret": {"secret": "prefect-api-key", "version": "latest"}},
        api_key=API_KEY)
    assert spec.env["PREFECT_API_KEY"] == SecretRef(secret="prefect-api-key", version="latest")
    text = request_text(spec)
    assert API_KEY not in text
    assert "prefect-api-key" in text and "secretKeyRef" in text
    assert API_KEY not in spec.preview("json") and API_KEY not in repr(spec)


async def test_cloud_run_api_key_without_a_secret_is_one_line_without_the_key() -> None:
    text = await error_for(CloudRunJobConfiguration, {}, api_key=API_KEY)
    assert text.startswith("job variable prefect_api_key_secret: is not set")
    assert "Secret Manager" in text and "prefect_api_key_secret: {secret: NAME, version: " \
        "latest}" in text
    assert API_KEY not in text and API_KEY[4:12] not in text
    # Also when the key comes in the user's own env rather than the worker's settings.
    text = await error_for(CloudRunJobConfiguration, {"env": {"PREFECT_API_KEY": API_KEY}})
    assert "prefect_api_key_secret" in text and API_KEY not in text


async def test_cloud_run_without_an_api_key_needs_no_secret() -> None:
    spec = await spec_for(CloudRunJobConfiguration, {})
    assert "PREFECT_API_KEY" not in spec.env


async def test_cloud_run_secrets_from_env_from_secrets() -> None:
    spec = await spec_for(CloudRunJobConfiguration, {
        "env": {"MODE": "nightly", "DB_PASSWORD": "plain-should-be-replaced"},
        "env_from_secrets": {"DB_PASSWORD": {"secret": "db-password", "version": "3"},
                             "PREFECT_API_KEY": {"secret": "prefect-key", "version": "latest"}},
    }, api_key=API_KEY)
    assert spec.env["MODE"] == "nightly"
    assert spec.env["DB_PASSWORD"] == SecretRef(secret="db-password", version="3")
    assert spec.env["PREFECT_API_KEY"] == SecretRef(secret="prefect-key")
    text = request_text(spec)
    assert API_KEY not in text and "plain-should-be-replaced" not in text


async def test_cloud_run_auth_string_needs_its_secret_too() -> None:
    text = await error_for(CloudRunJobConfiguration, {}, auth_string=AUTH_STRING)
    assert text.startswith("job variable prefect_api_auth_string_secret: is not set")
    assert AUTH_STRING not in text
    spec = await spec_for(CloudRunJobConfiguration, {
        "prefect_api_auth_string_secret": {"secret": "prefect-auth"}}, auth_string=AUTH_STRING)
    assert spec.env["PREFECT_API_AUTH_STRING"] == SecretRef(secret="prefect-auth")
    assert AUTH_STRING not in request_text(spec)


async def test_cloud_run_two_different_secrets_for_the_api_key_are_refused() -> None:
    text = await error_for(CloudRunJobConfiguration, {
        "prefect_api_key_secret": {"secret": "one"},
        "env_from_secrets": {"PREFECT_API_KEY": {"secret": "two"}}}, api_key=API_KEY)
    assert "prefect_api_key_secret" in text and "env_from_secrets.PREFECT_API_KEY" in text


async def test_vertex_keeps_the_api_key_as_an_environment_value() -> None:
    """Vertex AI has no secret references (as with prefect-gcp); previews redact it."""
    spec = await spec_for(VertexJobConfiguration, vertex_values(), api_key=API_KEY)
    assert spec.env["PREFECT_API_KEY"] == API_KEY
    assert API_KEY not in spec.preview("json")


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("cls", "values", "named"), [
    (VertexJobConfiguration, vertex_values(machine_type=5), "machine_type"),
    (VertexJobConfiguration, vertex_values(machine_type="n9-giant"), "machine_type"),
    (VertexJobConfiguration, vertex_values(accelerator_count="two"), "accelerator_count"),
    (VertexJobConfiguration, vertex_values(boot_disk_size_gb=-5), "boot_disk_size_gb"),
    (VertexJobConfiguration, vertex_values(maximum_run_time_hours="long"),
     "maximum_run_time_hours"),
    (VertexJobConfiguration, vertex_values(scheduling="SPOT"), "scheduling"),
    (VertexJobConfiguration, vertex_values(env=["A=1"]), "env"),
    (VertexJobConfiguration, vertex_values(labels="team=x"), "labels"),
    (VertexJobConfiguration, vertex_values(labels={"gcpjobs-kind": "x"}), "labels"),
    (VertexJobConfiguration, vertex_values(job_watch_poll_interval="fast"),
     "job_watch_poll_interval"),
    (VertexJobConfiguration, vertex_values(job_watch_poll_interval=0),
     "job_watch_poll_interval"),
    (VertexJobConfiguration, vertex_values(extra_worker_pools=[{"replica_count": 0}]),
     "extra_worker_pools[0].replica_count"),
    (VertexJobConfiguration, vertex_values(command="python 'unclosed"), "command"),
    (VertexJobConfiguration, vertex_values(credentials={"service_account_file": "/a",
                                                        "service_account_info": {"a": 1}}),
     "credentials"),
    (VertexJobConfiguration, {}, "image"),
    (CloudRunJobConfiguration, {"cpu": "3"}, "cpu"),
    (CloudRunJobConfiguration, {"memory": "lots"}, "memory"),
    (CloudRunJobConfiguration, {"cpu": 4}, "memory"),  # 4 CPU needs 2Gi; 512Mi is the default
    (CloudRunJobConfiguration, {"timeout": "forever"}, "timeout"),
    (CloudRunJobConfiguration, {"max_retries": 11}, "max_retries"),
    (CloudRunJobConfiguration, {"prefect_api_key_secret": "prefect-key"},
     "prefect_api_key_secret"),
    (CloudRunJobConfiguration, {"env_from_secrets": {"TOKEN": {"version": "1"}}},
     "env_from_secrets.TOKEN.secret"),
    (CloudRunJobConfiguration, {"env_from_secrets": {"TOKEN": "s3cr3t-value"}},
     "env_from_secrets.TOKEN"),
    (CloudRunJobConfiguration, {"cloudsql_instances": "p:r:db"}, "cloudsql_instances"),
    (CloudRunJobConfiguration, {"launch_stage": "DEPRECATED"}, "launch_stage"),
], ids=lambda v: v if isinstance(v, str) else None)
async def test_bad_job_variables_are_one_line_naming_the_variable(
        cls: Configuration, values: dict[str, Any], named: str) -> None:
    text = await error_for(cls, values)
    assert text.startswith(f"job variable {named}:"), text
    assert "s3cr3t-value" not in text


async def test_explicit_nulls_mean_unset() -> None:
    spec = await spec_for(VertexJobConfiguration, vertex_values(
        accelerator_type=None, env=None, labels=None, maximum_run_time_hours=None,
        command=None, scheduling=None))
    assert spec.accelerator_type is None
    assert spec.command == ["prefect", "flow-run", "execute"]
    assert spec.maximum_run_time == timedelta(days=7)


async def test_the_job_documents_kind_must_match_the_pool() -> None:
    template = prefect_base_job_template("vertex")
    template["job_configuration"]["job"]["kind"] = "cloud-run"
    configuration = cast(VertexJobConfiguration, await VertexJobConfiguration.from_template_and_values(
        template, vertex_values(), client=cast(Any, NoClient())))
    with pytest.raises(SpecError, match=r"^job variable kind: .*use kind: vertex$"):
        configuration.to_spec()


# ---------------------------------------------------------------------------- clients


async def test_client_options_without_credentials() -> None:
    configuration = await configure(VertexJobConfiguration, vertex_values(
        project="job-project", region="europe-west4", job_watch_poll_interval=7.5))
    assert configuration.client_options() == {
        "project": "job-project", "region": "europe-west4", "credentials": None,
        "credentials_file": None, "poll_interval": 7.5}
    default = await configure(CloudRunJobConfiguration, {})
    assert default.client_options() == {"project": None, "region": "us-central1",
                                        "credentials": None, "credentials_file": None,
                                        "poll_interval": None}


async def test_client_options_take_the_project_from_the_credentials_block() -> None:
    configuration = await configure(CloudRunJobConfiguration,
                                    {"credentials": {"project": "block-project"}})
    assert isinstance(configuration.credentials, GcpJobsCredentials)
    options = configuration.client_options()
    assert options["project"] == "block-project" and options["credentials"] is None
    # The job's own project wins over the block's.
    configuration = await configure(CloudRunJobConfiguration, {
        "credentials": {"project": "block-project"}, "project": "job-project"})
    assert configuration.client_options()["project"] == "job-project"
