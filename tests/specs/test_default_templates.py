"""The shipped default templates, generated templates for Cloud Run, and Prefect's layouts."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest
from pydantic_core import to_jsonable_python

from gcpjobs.errors import SpecError
from gcpjobs.specs.base import Spec
from gcpjobs.specs.default_templates import DESCRIPTIONS, TEMPLATE_FIELDS, spec_class
from gcpjobs.specs.templates import (
    JobTemplate,
    TemplateError,
    default_template,
    generate_base_job_template,
    parse_assignments,
)
from gcpjobs.specs.vertex import VertexJob

HAS_CLOUD_RUN = importlib.util.find_spec("gcpjobs.specs.cloudrun") is not None
KINDS = ["vertex", pytest.param("cloud-run", marks=pytest.mark.skipif(
    not HAS_CLOUD_RUN, reason="gcpjobs.specs.cloudrun is not there yet"))]


def to_spec(template: JobTemplate, overrides: dict[str, Any]) -> Spec:
    """render_spec where jobfile reads the kind; else the spec class straight away."""
    from gcpjobs.specs.jobfile import KIND_PARSERS

    kind = template.job_configuration["kind"]
    if kind in KIND_PARSERS:
        return template.render_spec(overrides=overrides)
    return spec_class(kind).model_validate(template.render(overrides=overrides))


@pytest.mark.parametrize("kind", KINDS)
def test_defaults_equal_the_spec_defaults(kind: str) -> None:
    cls = spec_class(kind)
    variables = default_template(kind).variables
    properties = variables["properties"]
    assert list(properties) == list(TEMPLATE_FIELDS[kind])  # a renamed field shows up here
    for name, prop in properties.items():
        info = cls.model_fields[name]
        if info.is_required():
            assert name in variables["required"]
            assert "default" not in prop
        else:
            default = to_jsonable_python(info.get_default(call_default_factory=True))
            assert prop.get("default") == default, name
        assert prop["description"] == DESCRIPTIONS[kind][name]


@pytest.mark.parametrize("kind", KINDS)
def test_minimal_override_gives_the_spec_defaults(kind: str) -> None:
    template = default_template(kind)
    spec = to_spec(template, {"image": "python:3.11"})
    assert spec == spec_class(kind).model_validate({"image": "python:3.11"})
    assert "{{" not in json.dumps(template.render(overrides={"image": "python:3.11"}))


@pytest.mark.parametrize("kind", KINDS)
def test_image_is_required(kind: str) -> None:
    with pytest.raises(TemplateError, match=f"default {kind} template: job variable image: is "
                       "required and has no value"):
        default_template(kind).render()


def test_vertex_defaults_match_prefect_gcp() -> None:
    properties = default_template("vertex").variables["properties"]
    assert properties["machine_type"]["default"] == "n1-standard-4"
    assert properties["boot_disk_type"]["default"] == "pd-ssd"
    assert properties["boot_disk_size_gb"]["default"] == 100
    assert "extra_worker_pools" not in properties  # hard-coded: the spec's default (none)


def test_vertex_default_template_with_cli_values() -> None:
    spec = default_template("vertex").render_spec(overrides=parse_assignments([
        "image=us-docker.pkg.dev/p/r/t:1", "machine_type=g2-standard-8",
        "maximum_run_time=2h", "scheduling_strategy=SPOT", "args=[--epochs, 3]",
        "env={BATCH: 64}",
    ]))
    assert isinstance(spec, VertexJob)
    assert spec.accelerator_type == "NVIDIA_L4"  # the machine's bundled GPU, filled in
    assert spec.args == ["--epochs", "3"]
    assert spec.env == {"BATCH": "64"}


def test_vertex_schema_errors_name_the_variable() -> None:
    template = default_template("vertex")
    with pytest.raises(TemplateError, match="job variable scheduling_strategy: must be one of "
                       "STANDARD, SPOT, FLEX_START, got 'CHEAP'"):
        template.render(overrides={"image": "i", "scheduling_strategy": "CHEAP"})
    with pytest.raises(TemplateError, match="job variable boot_disk_size_gb: must be a whole "
                       "number, got '100GB'"):
        template.render(overrides={"image": "i", "boot_disk_size_gb": "100GB"})


def test_unknown_kind() -> None:
    with pytest.raises(SpecError, match="unknown kind 'batch'; use one of: vertex, cloud-run"):
        default_template("batch")


# -- Cloud Run ------------------------------------------------------------------------------------

needs_cloud_run = pytest.mark.skipif(not HAS_CLOUD_RUN, reason="no gcpjobs.specs.cloudrun yet")


@needs_cloud_run
def test_cloud_run_defaults() -> None:
    properties = default_template("cloud-run").variables["properties"]
    assert properties["timeout"]["default"] == "PT10M"  # 600 s, as ISO 8601
    assert properties["max_retries"]["default"] == 3
    assert properties["task_count"]["default"] == 1
    assert properties["keep_job"]["default"] is False
    assert "default" not in properties["vpc_connector"]


@needs_cloud_run
def test_cloud_run_per_run_overrides() -> None:
    template = default_template("cloud-run")
    spec = to_spec(template, parse_assignments([
        "image=python:3.11", "task_count=4", "parallelism=2", "cpu=2", "memory=4Gi",
        "timeout=1h", "env={MODE: fast, DB_PASSWORD: {secret: db-pass}}",
    ]))
    assert spec.task_count == 4  # type: ignore[attr-defined]
    assert spec.cpu == "2"  # type: ignore[attr-defined]
    assert spec.timeout.total_seconds() == 3600  # type: ignore[attr-defined]
    with pytest.raises(TemplateError, match="job variable task_count: must be a whole number, "
                       "got 'four'"):
        template.render(overrides={"image": "i", "task_count": "four"})


@needs_cloud_run
@pytest.mark.parametrize("fields", [
    {"image": "python:3.11"},
    {"name": "nightly", "image": "us-docker.pkg.dev/p/r/t:1", "command": "python run.py",
     "args": ["--day", "2024-01-31"], "env": {"MODE": "x", "API_KEY": {"secret": "api-key"}},
     "cpu": "2", "memory": "4Gi", "timeout": "1h", "max_retries": 1, "task_count": 10,
     "parallelism": 5, "vpc_connector": "conn", "labels": {"team": "ml"}, "keep_job": True},
])
def test_generate_round_trip_cloud_run(fields: dict[str, Any]) -> None:
    spec = spec_class("cloud-run").model_validate(fields)
    data = generate_base_job_template(spec)
    assert data["job_configuration"]["kind"] == "cloud-run"
    # A secret *reference* is not a secret: the default is kept.
    assert "default" in data["variables"]["properties"]["env"]
    assert to_spec(JobTemplate.from_mapping(data), {}) == spec


@needs_cloud_run
def test_generate_cloud_run_leaves_secret_values_out() -> None:
    spec = spec_class("cloud-run").model_validate(
        {"image": "i", "env": {"DB_PASSWORD": "hunter2"}})
    data = generate_base_job_template(spec)
    assert "hunter2" not in json.dumps(data)
    assert "secret-looking" in data["variables"]["properties"]["env"]["description"]


# -- Prefect's own layouts -------------------------------------------------------------------------

# The layout of prefect-gcp's Cloud Run (v2) worker default `job_body`: a v2 Job body with
# placeholders, where optional sections hold a single placeholder.
PREFECT_V2_JOB_BODY = {
    "client": "prefect",
    "launchStage": "{{ launch_stage }}",
    "template": {"template": {
        "serviceAccount": "{{ service_account_name }}",
        "maxRetries": "{{ max_retries }}",
        "timeout": "{{ timeout }}",
        "vpcAccess": {"connector": "{{ vpc_connector_name }}"},
        "containers": [{
            "env": [],
            "image": "{{ image }}",
            "command": "{{ command }}",
            "args": "{{ args }}",
            "resources": {"limits": {"cpu": "{{ cpu }}", "memory": "{{ memory }}"}},
        }],
    }},
}
PREFECT_V2_VARIABLES = {"type": "object", "properties": {
    "launch_stage": {"type": "string", "default": "BETA"},
    "service_account_name": {"type": "string"},
    "max_retries": {"type": "integer", "default": 0},
    "timeout": {"type": "integer", "default": 600},
    "vpc_connector_name": {"type": "string"},
    "image": {"type": "string"},
    "command": {"type": "array", "items": {"type": "string"}},
    "args": {"type": "array", "items": {"type": "string"}},
    "cpu": {"type": "string"},
    "memory": {"type": "string"},
}}


def test_prefect_cloud_run_v2_job_body_layout_renders() -> None:
    template = JobTemplate.from_mapping(
        {"job_configuration": PREFECT_V2_JOB_BODY, "variables": PREFECT_V2_VARIABLES})
    body = template.render(overrides={"image": "python:3.11", "cpu": "1000m",
                                      "command": ["python", "-m", "flow"]})
    assert body == {
        "client": "prefect",
        "launchStage": "BETA",
        "template": {"template": {
            "maxRetries": 0,  # an int stays an int
            "timeout": 600,
            # vpcAccess went with its unset connector (prefect-gcp removes it by hand)
            "containers": [{
                "env": [], "image": "python:3.11", "command": ["python", "-m", "flow"],
                "resources": {"limits": {"cpu": "1000m"}},
            }],
        }},
    }
    with_connector = template.render(overrides={"image": "i", "vpc_connector_name": "c"})
    assert with_connector["template"]["template"]["vpcAccess"] == {"connector": "c"}
