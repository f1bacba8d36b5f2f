"""Job templates: rendering rules, errors, loading, generation and `--set` parsing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gcpjobs.errors import JobFileError, SpecError
from gcpjobs.specs.templates import (
    JobTemplate,
    TemplateError,
    find_placeholders,
    generate_base_job_template,
    parse_assignments,
)
from gcpjobs.specs.vertex import VertexJob


def template(document: dict[str, Any], **properties: dict[str, Any]) -> JobTemplate:
    return JobTemplate.from_mapping({
        "job_configuration": document,
        "variables": {"type": "object", "properties": properties},
    })


STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
ANY: dict[str, Any] = {}


# -- rendering: one table of (document, variables, overrides, expected) -------------------------

RENDER_CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ("int keeps its type", {"n": "{{ n }}"}, {"n": INT}, {"n": 4}, {"n": 4}),
    ("no spaces in braces", {"n": "{{n}}"}, {"n": INT}, {"n": 4}, {"n": 4}),
    ("list keeps its type", {"a": "{{ a }}"}, {"a": {"type": "array"}}, {"a": ["x", 1]},
     {"a": ["x", 1]}),
    ("dict keeps its type", {"e": "{{ e }}"}, {"e": {"type": "object"}}, {"e": {"K": "v"}},
     {"e": {"K": "v"}}),
    ("bool keeps its type", {"b": "{{ b }}"}, {"b": {"type": "boolean"}}, {"b": False},
     {"b": False}),
    ("empty list is a value, kept", {"a": "{{ a }}"}, {"a": ANY}, {"a": []}, {"a": []}),
    ("interpolated in text", {"url": "gs://{{ bucket }}/runs/{{ run }}"},
     {"bucket": STR, "run": INT}, {"bucket": "b", "run": 7}, {"url": "gs://b/runs/7"}),
    ("interpolated bool reads as YAML", {"flag": "--x={{ b }}"}, {"b": ANY}, {"b": True},
     {"flag": "--x=true"}),
    ("interpolated list reads as JSON", {"j": "cfg={{ a }}"}, {"a": ANY}, {"a": [1, "x"]},
     {"j": 'cfg=[1,"x"]'}),
    ("nested in lists and dicts",
     {"c": [{"args": ["--shard", "{{ shard }}", "--of={{ n }}"]}], "m": {"k": {"v": "{{ n }}"}}},
     {"shard": INT, "n": INT}, {"shard": 2, "n": 8},
     {"c": [{"args": ["--shard", 2, "--of=8"]}], "m": {"k": {"v": 8}}}),
    ("unset optional removes its key", {"keep": 1, "sa": "{{ sa }}"}, {"sa": STR}, {},
     {"keep": 1}),
    ("None override removes its key", {"keep": 1, "sa": "{{ sa }}"},
     {"sa": {"type": "string", "default": "a@b.c"}}, {"sa": None}, {"keep": 1}),
    ("unset optional removes its list item", {"args": ["a", "{{ x }}", "b"]}, {"x": STR}, {},
     {"args": ["a", "b"]}),
    ("a mapping emptied by removals goes too",
     {"keep": 1, "vpcAccess": {"connector": "{{ c }}"}}, {"c": STR}, {}, {"keep": 1}),
    ("a literal empty mapping stays", {"env": [], "m": {}}, {}, {}, {"env": [], "m": {}}),
    ("values with braces are not rendered again", {"a": "{{ a }}", "b": "x-{{ a }}"},
     {"a": STR, "other": {"type": "string", "default": "no"}}, {"a": "{{ other }}"},
     {"a": "{{ other }}", "b": "x-{{ other }}"}),
    ("keys are not placeholders", {"{{ k }}": "v"}, {}, {}, {"{{ k }}": "v"}),
    ("hard-coded value stays", {"machine_type": "n1-standard-8", "image": "{{ image }}"},
     {"image": STR}, {"image": "i"}, {"machine_type": "n1-standard-8", "image": "i"}),
    ("default used when not given", {"n": "{{ n }}"}, {"n": {"type": "integer", "default": 3}},
     {}, {"n": 3}),
]


@pytest.mark.parametrize(("document", "properties", "overrides", "expected"),
                         [case[1:] for case in RENDER_CASES], ids=[c[0] for c in RENDER_CASES])
def test_render(document: dict[str, Any], properties: dict[str, Any], overrides: dict[str, Any],
                expected: dict[str, Any]) -> None:
    assert template(document, **properties).render(overrides=overrides) == expected


def test_precedence_defaults_then_values_then_overrides() -> None:
    t = template({"a": "{{ a }}", "b": "{{ b }}", "c": "{{ c }}"},
                 a={"default": "default"}, b={"default": "default"}, c={"default": "default"})
    rendered = t.render(values={"b": "values", "c": "values"}, overrides={"c": "override"})
    assert rendered == {"a": "default", "b": "values", "c": "override"}


def test_rendering_does_not_share_or_change_state() -> None:
    default_list = ["x"]
    t = template({"a": "{{ a }}"}, a={"type": "array", "default": default_list})
    first = t.render()
    first["a"].append("changed")
    default_list.append("changed too")
    assert t.render() == {"a": ["x"]}
    given = {"k": ["v"]}
    rendered = t.render(overrides={"a": [given]})
    given["k"].append("later")
    assert rendered == {"a": [{"k": ["v"]}]}


def test_template_is_immutable() -> None:
    t = template({"a": "{{ a }}"}, a=STR)
    with pytest.raises(AttributeError):
        t.source = "other"
    t.job_configuration["a"] = "changed"
    t.variables["properties"]["a"]["type"] = "integer"
    assert t.to_dict() == {"job_configuration": {"a": "{{ a }}"},
                           "variables": {"type": "object", "properties": {"a": STR}}}


# -- errors while rendering: (document, variables, overrides, required, expected message) -------

RENDER_ERRORS: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], list[str], str]] = [
    ("unknown override lists known ones", {"n": "{{ task_count }}"}, {"task_count": INT},
     {"task_cuont": 4}, [],
     "job variable task_cuont: is not a variable of this template; did you mean 'task_count'? "
     "Known variables: task_count"),
    ("schema type error", {"n": "{{ task_count }}"}, {"task_count": INT}, {"task_count": "four"},
     [], "job variable task_count: must be a whole number, got 'four'"),
    ("enum", {"s": "{{ s }}"}, {"s": {"enum": ["SPOT", "STANDARD"]}}, {"s": "spto"}, [],
     "job variable s: must be one of SPOT, STANDARD, got 'spto'"),
    ("minimum", {"n": "{{ n }}"}, {"n": {"type": "integer", "minimum": 1}}, {"n": 0}, [],
     "job variable n: must be at least 1, got 0"),
    ("nested path named", {"a": "{{ a }}"}, {"a": {"type": "array", "items": INT}},
     {"a": [1, "x"]}, [], "job variable a: [1] must be a whole number, got 'x'"),
    ("required missing", {"i": "{{ image }}"}, {"image": STR}, {}, ["image"],
     "job variable image: is required and has no value; give it per run (--set image=...)"),
    ("required set to None", {"i": "{{ image }}"}, {"image": STR}, {"image": None}, ["image"],
     "job variable image: is required and has no value"),
    ("None inside text", {"u": "gs://{{ bucket }}/x"}, {"bucket": STR}, {}, [],
     "job variable bucket: has no value but is used inside the text at u"),
]


@pytest.mark.parametrize(("document", "properties", "overrides", "required", "message"),
                         [case[1:] for case in RENDER_ERRORS], ids=[c[0] for c in RENDER_ERRORS])
def test_render_errors(document: dict[str, Any], properties: dict[str, Any],
                       overrides: dict[str, Any], required: list[str], message: str) -> None:
    t = JobTemplate.from_mapping({"job_configuration": document, "variables": {
        "type": "object", "properties": properties, "required": required}})
    with pytest.raises(TemplateError) as caught:
        t.render(overrides=overrides)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text
    assert text.startswith("template: ")


def test_env_values_are_not_echoed_in_errors() -> None:
    t = template({"env": "{{ env }}"}, env={"type": "object", "additionalProperties": STR})
    with pytest.raises(TemplateError) as caught:
        t.render(overrides={"env": {"API_TOKEN": 12345}})
    assert "12345" not in str(caught.value)
    assert "API_TOKEN must be text" in str(caught.value)


def test_hard_coded_field_cannot_be_overridden() -> None:
    t = template({"kind": "vertex", "image": "{{ image }}", "machine_type": "n1-standard-8"},
                 image=STR)
    with pytest.raises(TemplateError, match=r"machine_type: is not a variable of this template.*"
                       r"hard-codes cannot be set per run"):
        t.render(overrides={"image": "i", "machine_type": "a2-highgpu-1g"})
    spec = t.render_spec(overrides={"image": "i"})
    assert isinstance(spec, VertexJob)
    assert spec.machine_type == "n1-standard-8"


def test_unknown_key_in_values_is_an_error_too() -> None:
    with pytest.raises(TemplateError, match="job variable nope: is not a variable"):
        template({"a": "{{ a }}"}, a=STR).render(values={"nope": 1})


def test_user_added_placeholder_declared_in_variables() -> None:
    # "Add placeholders of your own": a run id that lands in a label and an argument.
    t = JobTemplate.from_mapping({
        "job_configuration": {
            "kind": "vertex", "image": "{{ image }}",
            "labels": {"team": "{{ team }}"}, "args": ["--run", "run-{{ team }}-{{ epoch }}"],
        },
        "variables": {"type": "object", "required": ["image"], "properties": {
            "image": STR, "team": {"type": "string", "default": "ml"},
            "epoch": {"type": "integer", "default": 1},
        }},
    })
    spec = t.render_spec(overrides={"image": "python:3.11", "epoch": 3})
    assert isinstance(spec, VertexJob)
    assert spec.labels == {"team": "ml"}
    assert spec.args == ["--run", "run-ml-3"]


def test_render_spec_reports_the_spec_error_in_one_line() -> None:
    t = template({"kind": "vertex", "image": "{{ image }}", "boot_disk_size_gb": "{{ size }}"},
                 image=STR, size=INT)
    with pytest.raises(SpecError) as caught:
        t.render_spec(overrides={"image": "i", "size": 5})
    assert "boot_disk_size_gb" in str(caught.value)
    assert "(rendered)" in str(caught.value)


# -- malformed templates -------------------------------------------------------------------------

MALFORMED: list[tuple[str, Any, str]] = [
    ("not a mapping", ["x"], "must be a mapping with job_configuration and variables, not a list"),
    ("no job_configuration", {"variables": {}}, "has no job_configuration"),
    ("misspelt key", {"job_configuraton": {}}, "did you mean 'job_configuration'?"),
    ("job_configuration not a mapping", {"job_configuration": "x"},
     "job_configuration must be a mapping (a job document), not text"),
    ("variables not a mapping", {"job_configuration": {}, "variables": []},
     "variables must be a JSON schema of type object, not a list"),
    ("variables not an object schema", {"job_configuration": {}, "variables": {"type": "array"}},
     "variables must be a JSON schema of type object, not type 'array'"),
    ("properties not a mapping",
     {"job_configuration": {}, "variables": {"type": "object", "properties": []}},
     "variables.properties must be a mapping"),
    ("property not a schema",
     {"job_configuration": {}, "variables": {"properties": {"a": "string"}}},
     "variables.properties.a must be a schema mapping"),
    ("bad schema", {"job_configuration": {}, "variables": {"properties": {"a": {"type": "text"}}}},
     "variables.properties.a.type is not a valid JSON schema"),
    ("required not declared",
     {"job_configuration": {}, "variables": {"properties": {}, "required": ["image"]}},
     "variables.required names 'image', which is not in variables.properties"),
    ("undeclared placeholder",
     {"job_configuration": {"image": "{{ imgae }}", "x": "{{ other }}"},
      "variables": {"properties": {"image": STR}}},
     "placeholder {{ imgae }} in job_configuration is not declared (also: other); did you mean "
     "{{ image }}?"),
    ("prefect-only placeholder", {"job_configuration": {"t": "{{ prefect.variables.token }}"}},
     "placeholder {{ prefect.variables.token }} in job_configuration is not declared"),
    ("variable name unusable",
     {"job_configuration": {}, "variables": {"properties": {"my-var": STR}}},
     "variable name 'my-var' cannot be used in a placeholder"),
]


@pytest.mark.parametrize(("data", "message"), [c[1:] for c in MALFORMED],
                         ids=[c[0] for c in MALFORMED])
def test_malformed_templates(data: Any, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        JobTemplate.from_mapping(data, source="pool.yaml")
    assert str(caught.value).startswith("pool.yaml: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_variables_may_be_left_out() -> None:
    t = JobTemplate.from_mapping({"job_configuration": {"kind": "vertex", "image": "i"}})
    assert t.variable_names() == []
    assert t.render() == {"kind": "vertex", "image": "i"}


def test_find_placeholders() -> None:
    assert find_placeholders({"a": ["{{x}}", {"b": "p{{ y }}q{{x}}"}], "{{ k }}": 1}) == {"x", "y"}


# -- loading -------------------------------------------------------------------------------------

TEMPLATE_DATA = {
    "job_configuration": {"kind": "vertex", "image": "{{ image }}", "args": "{{ args }}"},
    "variables": {"type": "object", "required": ["image"], "properties": {
        "image": STR, "args": {"type": "array", "default": ["--a"]}}},
}


@pytest.mark.parametrize("suffix", ["yaml", "json"])
def test_load_yaml_and_json(tmp_path: Path, suffix: str) -> None:
    import yaml

    path = tmp_path / f"pool.{suffix}"
    text = json.dumps(TEMPLATE_DATA) if suffix == "json" else yaml.safe_dump(TEMPLATE_DATA, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    t = JobTemplate.load(path)
    assert t == JobTemplate.from_mapping(TEMPLATE_DATA)
    assert t.variable_names() == ["image", "args"]
    assert t.render(overrides={"image": "i"})["args"] == ["--a"]
    assert JobTemplate.from_mapping(t.to_dict()) == t


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    ("", "is empty"),
    ("job_configuration: [", "is not valid YAML or JSON at line"),
    ("- 1", "must be a mapping with job_configuration and variables, not a list"),
])
def test_load_errors(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "t.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        JobTemplate.load(path)
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(path))
    assert "\n" not in str(caught.value)
    if content is None:
        assert isinstance(caught.value, JobFileError)


# -- generate_base_job_template ------------------------------------------------------------------

VERTEX_SPECS = [
    VertexJob(image="python:3.11"),
    VertexJob(name="train", image="us-docker.pkg.dev/p/r/t:1", command="python train.py",
              args=["--epochs", "3"], env={"MODE": "fast"}, machine_type="a2-highgpu-1g",
              boot_disk_size_gb=200, maximum_run_time="2h", scheduling_strategy="SPOT",
              labels={"team": "ml"}, service_account="t@p.iam.gserviceaccount.com",
              extra_worker_pools=[{"replica_count": 2, "machine_type": "n1-standard-8"}]),
    VertexJob(image="i", accelerator_type="NVIDIA_TESLA_T4", accelerator_count=2,
              network="projects/123/global/networks/net", reserved_ip_ranges=["r1"],
              scheduling_strategy="FLEX_START", max_wait_duration="30m",
              base_output_directory="gs://bucket/out"),
]


@pytest.mark.parametrize("spec", VERTEX_SPECS)
def test_generate_round_trip_vertex(spec: VertexJob) -> None:
    data = generate_base_job_template(spec)
    t = JobTemplate.from_mapping(data)
    assert set(t.variable_names()) == set(VertexJob.model_fields) - {"kind"}
    assert data["job_configuration"]["image"] == "{{ image }}"
    assert t.render_spec() == spec
    json.dumps(data)  # plain JSON data: a work pool can store it


def test_generate_overrides_apply() -> None:
    t = JobTemplate.from_mapping(generate_base_job_template(VERTEX_SPECS[0]))
    spec = t.render_spec(overrides={"machine_type": "n1-standard-8", "args": ["--x", 1]})
    assert spec == VERTEX_SPECS[0].with_overrides(machine_type="n1-standard-8", args=["--x", "1"])


def test_generate_leaves_secret_env_out() -> None:
    spec = VertexJob(image="i", env={"MODE": "x", "HF_TOKEN": "hf_abc123"})
    data = generate_base_job_template(spec)
    env = data["variables"]["properties"]["env"]
    assert "default" not in env
    assert "secret-looking" in env["description"]
    assert "hf_abc123" not in json.dumps(data)
    assert "env" not in data["variables"].get("required", [])
    rendered = JobTemplate.from_mapping(data).render_spec(
        overrides={"env": {"MODE": "x", "HF_TOKEN": "given"}})
    assert rendered.env == {"MODE": "x", "HF_TOKEN": "given"}  # type: ignore[attr-defined]


# -- parse_assignments ---------------------------------------------------------------------------

ASSIGNMENTS: list[tuple[list[str], dict[str, Any]]] = [
    (["task_count=4"], {"task_count": 4}),
    (["args=[a, b]"], {"args": ["a", "b"]}),
    (["name=x"], {"name": "x"}),
    (["env={A: '1', B: two}"], {"env": {"A": "1", "B": "two"}}),
    (["command=python train.py --lr=0.1"], {"command": "python train.py --lr=0.1"}),
    (["url=a=b"], {"url": "a=b"}),
    (["accelerator_type="], {"accelerator_type": None}),
    (["name=''"], {"name": ""}),
    (["keep_job=true"], {"keep_job": True}),
    (["name='123'"], {"name": "123"}),
    (["day=2024-01-31"], {"day": "2024-01-31"}),
    ([" n = 1"], {"n": 1}),
    (["n=1", "n=2"], {"n": 2}),
    ([], {}),
]


@pytest.mark.parametrize(("pairs", "expected"), ASSIGNMENTS)
def test_parse_assignments(pairs: list[str], expected: dict[str, Any]) -> None:
    assert parse_assignments(pairs) == expected


@pytest.mark.parametrize(("pairs", "message"), [
    (["task_count"], "--set 'task_count' has no '='; write it as NAME=VALUE"),
    (["=4"], "'' is not a variable name"),
    (["a-b=1"], "'a-b' is not a variable name"),
    (["args=[a, b"], "--set args: '[a, b' is not a YAML value"),
])
def test_parse_assignments_errors(pairs: list[str], message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_assignments(pairs)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_assignments_render_into_a_spec() -> None:
    t = JobTemplate.from_mapping(generate_base_job_template(VERTEX_SPECS[0]))
    spec = t.render_spec(overrides=parse_assignments(
        ["args=[--epochs, 3]", "command=python train.py", "maximum_run_time=3600",
         "accelerator_type="]))
    assert spec.args == ["--epochs", "3"]  # type: ignore[attr-defined]
    assert spec.command == ["python", "train.py"]  # type: ignore[attr-defined]
    assert spec.maximum_run_time.total_seconds() == 3600  # type: ignore[attr-defined]


def test_importing_templates_does_not_load_jsonschema() -> None:
    # The CLI imports the spec layer on every start; jsonschema loads only when a template does.
    import subprocess
    import sys

    code = "import sys, gcpjobs.specs.templates; print('jsonschema' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == "False"


def test_a_number_given_for_a_text_variable_is_its_text() -> None:
    template = JobTemplate.from_mapping({
        "job_configuration": {"kind": "vertex", "image": "python:3.11", "project": "{{ project }}"},
        "variables": {"type": "object", "properties": {"project": {"type": "string"}}},
    })
    assert template.render(overrides=parse_assignments(["project=123456"]))["project"] == "123456"
