"""The default base job templates of the gcpjobs work pools: every prefect-gcp variable is
there (same name, same default where it means the same thing), ours are there too, and the
schema is one Prefect's server accepts and validates job variables with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import prefect
import pytest
from jsonschema.validators import Draft202012Validator
from prefect.server.schemas.actions import validate_base_job_template
from prefect.utilities.schema_tools import is_valid_schema, validate

from gcpjobs.errors import SpecError
from gcpjobs.integrations.prefect.credentials import GcpJobsCredentials
from gcpjobs.integrations.prefect.templates import JOB_KEY, prefect_base_job_template
from gcpjobs.specs.default_templates import default_template_data

KINDS = ("vertex", "cloud-run")

# prefect-gcp's variables (the current release), with the defaults that mean the same here.
# A value of ... : the variable exists, its default is not compared.
PREFECT_GCP_VARIABLES: dict[str, dict[str, Any]] = {
    "vertex": {
        "name": ..., "env": ..., "labels": ..., "command": ..., "region": ..., "image": ...,
        "credentials": ..., "machine_type": "n1-standard-4", "accelerator_type": ...,
        "accelerator_count": ..., "boot_disk_type": "pd-ssd", "boot_disk_size_gb": 100,
        "maximum_run_time_hours": ..., "network": ..., "reserved_ip_ranges": ...,
        "scheduling": ..., "service_account_name": ..., "job_watch_poll_interval": ...,
        "enable_web_access": False, "enable_dashboard_access": False,
    },
    "cloud-run": {
        "name": ..., "env": ..., "labels": ..., "command": ..., "credentials": ...,
        "region": "us-central1", "image": "prefecthq/prefect:3-latest", "args": ...,
        "env_from_secrets": ..., "prefect_api_key_secret": ...,
        "prefect_api_auth_string_secret": ..., "cloudsql_instances": ..., "keep_job": False,
        "launch_stage": "BETA", "max_retries": 0, "cpu": "1000m", "memory": "512Mi",
        "timeout": 600, "vpc_connector_name": ..., "service_account_name": ...,
    },
}
# The pools as shipped in Prefect's own worker metadata (an older prefect-gcp), by our kind.
AGGREGATE_POOLS = {"vertex": ("vertex-ai",), "cloud-run": ("cloud-run-v2", "cloud-run")}
AGGREGATE = (Path(prefect.__file__).parent / "server" / "api" / "collections_data" / "views"
             / "aggregate-worker-metadata.json")


def aggregate_pool(name: str) -> dict[str, Any]:
    data = json.loads(AGGREGATE.read_text(encoding="utf-8"))
    template: dict[str, Any] = data["prefect-gcp"][name]["default_base_job_configuration"]
    return template


def properties(kind: str) -> dict[str, Any]:
    props: dict[str, Any] = prefect_base_job_template(kind)["variables"]["properties"]
    return props


# ---------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("kind", KINDS)
def test_every_prefect_gcp_variable_is_there_with_its_default(kind: str) -> None:
    ours = properties(kind)
    for name, default in PREFECT_GCP_VARIABLES[kind].items():
        assert name in ours, name
        if default is not ...:
            assert ours[name].get("default") == default, name


@pytest.mark.parametrize("kind", KINDS)
def test_every_variable_of_prefects_shipped_prefect_gcp_pools_is_there(kind: str) -> None:
    ours = properties(kind)
    for pool in AGGREGATE_POOLS[kind]:
        theirs = aggregate_pool(pool)["variables"]["properties"]
        missing = sorted(set(theirs) - set(ours))
        assert not missing, f"{pool}: {missing}"
        for name, schema in theirs.items():
            # Defaults that mean the same are the same; prefect-gcp's 1-hour run-time cap and
            # its watcher interval are left out on purpose (see the next tests).
            if "default" in schema and name not in ("maximum_run_time_hours",
                                                    "job_watch_poll_interval"):
                assert ours[name].get("default") == schema["default"], (pool, name)


@pytest.mark.parametrize("kind", KINDS)
def test_prefect_gcp_values_copied_across_validate(kind: str) -> None:
    """A deployment's prefect-gcp job variables are accepted as they are."""
    values = {
        "vertex": {
            "region": "europe-west4", "image": "gcr.io/p/i:1", "machine_type": "n1-highmem-8",
            "accelerator_type": "NVIDIA_TESLA_T4", "accelerator_count": 1,
            "boot_disk_type": "pd-standard", "boot_disk_size_gb": 200,
            "maximum_run_time_hours": 4, "network": "projects/1/global/networks/n",
            "reserved_ip_ranges": ["r"], "service_account_name": "a@p.iam.gserviceaccount.com",
            "scheduling": {"strategy": "FLEX_START", "max_wait_duration": "1800s",
                           "timeout": "3600s", "restart_job_on_worker_restart": True,
                           "disable_retries": False},
            "job_watch_poll_interval": 10.0, "env": {"A": "1"}, "labels": {"team": "x"},
            "command": "python -m flows", "name": "train", "enable_web_access": True,
        },
        "cloud-run": {
            "region": "europe-west1", "image": "gcr.io/p/i:1", "args": ["--x"],
            "cpu": "2000m", "memory": "1Gi", "timeout": 3600, "max_retries": 2,
            "launch_stage": "GA", "keep_job": True, "vpc_connector_name": "conn",
            "service_account_name": "a@p.iam.gserviceaccount.com",
            "env_from_secrets": {"DB_PASSWORD": {"secret": "db", "version": "latest"}},
            "prefect_api_key_secret": {"secret": "prefect-key", "version": "latest"},
            "prefect_api_auth_string_secret": {"secret": "auth", "version": "2"},
            "cloudsql_instances": [], "env": {"A": "1"}, "labels": {"team": "x"},
            "command": "prefect flow-run execute", "name": "etl",
        },
    }[kind]
    variables = prefect_base_job_template(kind)["variables"]
    assert validate(values, variables, preprocess=True) == []


@pytest.mark.parametrize("kind", KINDS)
def test_our_own_variables_are_all_there(kind: str) -> None:
    ours = properties(kind)
    spec_variables = default_template_data(kind)["variables"]["properties"]
    assert set(spec_variables) <= set(ours)
    if kind == "vertex":
        assert "extra_worker_pools" in ours  # several pools: only a pool can describe them


def test_maximum_run_time_hours_has_no_one_hour_default() -> None:
    hours = properties("vertex")["maximum_run_time_hours"]
    assert "default" not in hours
    assert "1 hour" in hours["description"] and "7 days" in hours["description"]
    assert "default" not in properties("vertex")["maximum_run_time"]


def test_the_flow_run_name_is_the_default_name() -> None:
    for kind in KINDS:
        assert "default" not in properties(kind)["name"]
        assert properties(kind)["name"]["type"] == "string"


@pytest.mark.parametrize("kind", KINDS)
def test_env_labels_and_command_take_prefects_types(kind: str) -> None:
    props = properties(kind)
    assert props["command"]["type"] == "string"
    for name in ("env", "labels"):
        assert props[name]["type"] == "object"
        assert props[name]["additionalProperties"] == {"type": "string"}


# ---------------------------------------------------------------------------- shape


@pytest.mark.parametrize("kind", KINDS)
def test_job_configuration_has_prefects_fields_on_top_and_our_document_below(kind: str) -> None:
    template = prefect_base_job_template(kind)
    configuration = template["job_configuration"]
    for name in ("command", "env", "labels", "name", "credentials", "job_watch_poll_interval"):
        assert configuration[name] == f"{{{{ {name} }}}}"
    job = configuration[JOB_KEY]
    assert job["kind"] == kind
    ours = default_template_data(kind)["job_configuration"]
    expected = {key: value for key, value in ours.items()
                if key not in ("command", "env", "labels", "name")}
    if kind == "vertex":
        expected["extra_worker_pools"] = "{{ extra_worker_pools }}"
    assert job == expected
    # Every prefect-gcp name with no field of ours is a top-level key.
    for name in PREFECT_GCP_VARIABLES[kind]:
        assert name in configuration or name in job, name


@pytest.mark.parametrize("kind", KINDS)
def test_template_is_plain_json_and_a_fresh_copy(kind: str) -> None:
    template = prefect_base_job_template(kind)
    assert json.loads(json.dumps(template)) == template
    template["variables"]["properties"].clear()
    assert prefect_base_job_template(kind)["variables"]["properties"]


def test_unknown_kind_is_one_line() -> None:
    with pytest.raises(SpecError) as caught:
        prefect_base_job_template("batch")
    assert "\n" not in str(caught.value) and "vertex" in str(caught.value)


# ---------------------------------------------------------------------------- Prefect's checks


@pytest.mark.parametrize("kind", KINDS)
def test_prefects_server_accepts_the_template(kind: str) -> None:
    template = prefect_base_job_template(kind)
    assert validate_base_job_template(template) == template  # placeholders all declared
    is_valid_schema(template["variables"], preprocess=False)  # as the server checks it
    Draft202012Validator.check_schema(template["variables"])


@pytest.mark.parametrize("kind", KINDS)
def test_the_templates_defaults_validate_against_it(kind: str) -> None:
    variables = prefect_base_job_template(kind)["variables"]
    defaults = {name: prop["default"] for name, prop in variables["properties"].items()
                if "default" in prop}
    assert validate(defaults, variables, preprocess=True, ignore_required=True) == []
    # With what is required given, a flow run's full set of variables passes too.
    complete = {**defaults, "image": "python:3.11"}
    assert validate(complete, variables, preprocess=True) == []


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_types_are_refused_by_the_schema(kind: str) -> None:
    variables = prefect_base_job_template(kind)["variables"]
    for bad in ({"env": {"A": {"nested": 1}}}, {"labels": ["a"]}, {"command": ["a", "b"]},
                {"job_watch_poll_interval": 0}, {"args": "not-a-list"}):
        assert validate(bad, variables, preprocess=True, ignore_required=True), bad


def test_kind_specific_values_are_refused_by_the_schema() -> None:
    vertex = prefect_base_job_template("vertex")["variables"]
    assert validate({"maximum_run_time_hours": 0}, vertex, ignore_required=True)
    assert validate({"scheduling": {"strategy": "SPOT", "priority": 1}}, vertex,
                    ignore_required=True)
    cloud_run = prefect_base_job_template("cloud-run")["variables"]
    assert validate({"timeout": 604801}, cloud_run, ignore_required=True)
    assert validate({"prefect_api_key_secret": "prefect-key"}, cloud_run, ignore_required=True)
    # (not with ignore_required, which drops `required` at every depth)
    assert validate({"env_from_secrets": {"A": {"version": "1"}}}, cloud_run)


@pytest.mark.parametrize("kind", KINDS)
def test_credentials_refer_to_our_block_as_prefect_gcp_refers_to_its_own(kind: str) -> None:
    variables = prefect_base_job_template(kind)["variables"]
    credentials = variables["properties"]["credentials"]
    assert credentials["allOf"] == [{"$ref": "#/definitions/GcpJobsCredentials"}]
    definition = variables["definitions"]["GcpJobsCredentials"]
    assert definition == {**GcpJobsCredentials.model_json_schema(),
                          "not": {"required": ["$ref"]}}  # see templates._credentials_schema
    assert definition["title"] == "GcpJobsCredentials"  # Prefect keys block choices by title
    assert definition["block_type_slug"] == "gcpjobs-credentials"
    assert definition["secret_fields"] == ["service_account_info.*"]
    # A reference to a saved block (what the UI and `prefect deploy` write) validates, and so
    # does an inline value.
    reference = {"credentials": {"$ref": {"block_document_id": str(uuid4())}}}
    assert validate(reference, variables, ignore_required=True) == []
    inline = {"credentials": {"project": "my-project"}}
    assert validate(inline, variables, ignore_required=True) == []
    # pydantic's `$defs` references were moved to where Prefect looks for them.
    assert "$defs" not in json.dumps(variables)


# ---------------------------------------------------------------------------- a real server


async def test_a_real_prefect_server_takes_the_pools_and_checks_deployments_against_them(
        prefect_server: str) -> None:
    """Prefect's server (its test harness) creates both pools from our templates, keeps them
    as they are, refuses job variables of the wrong type, and accepts a deployment whose
    credentials refer to a saved block, which the worker's configuration then resolves."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import PrefectHTTPStatusError

    from gcpjobs.integrations.prefect.configuration import CloudRunJobConfiguration

    suffix = uuid4().hex[:8]
    async with get_client() as client:
        for kind in KINDS:
            template = prefect_base_job_template(kind)
            pool = await client.create_work_pool(WorkPoolCreate(
                name=f"templates-{kind}-{suffix}", type=f"gcpjobs-{kind}",
                base_job_template=template))
            assert pool.base_job_template == template
        await GcpJobsCredentials.register_type_and_schema(client=client)
        block_id = await GcpJobsCredentials(project="block-project").save(
            f"templates-{suffix}", client=client)
        reference = {"credentials": {"$ref": {"block_document_id": str(block_id)}}}
        flow_id = await client.create_flow_from_name(f"templates-{suffix}")
        pool_name = f"templates-cloud-run-{suffix}"

        deployment_id = await client.create_deployment(
            flow_id=flow_id, name=f"good-{suffix}", work_pool_name=pool_name,
            job_variables={**reference, "cpu": "2000m", "memory": "1Gi",
                           "prefect_api_key_secret": {"secret": "key", "version": "latest"}})
        await client.create_flow_run_from_deployment(deployment_id)  # validated in full
        with pytest.raises(PrefectHTTPStatusError, match="422"):
            await client.create_deployment(
                flow_id=flow_id, name=f"bad-{suffix}", work_pool_name=pool_name,
                job_variables={"env": {"A": {"nested": 1}}})

        configuration = cast(CloudRunJobConfiguration,
                             await CloudRunJobConfiguration.from_template_and_values(
                                 prefect_base_job_template("cloud-run"), reference,
                                 client=client))
        assert isinstance(configuration.credentials, GcpJobsCredentials)
        assert configuration.credentials.project == "block-project"
