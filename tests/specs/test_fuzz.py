"""Property tests: whatever a user writes, the job-file loader and the spec models answer with a
valid spec or one clear validation error.

"Clear" means a gcpjobs `SpecError` (or its `JobFileError`) whose message is one line, carries
no traceback, and has a bounded length. "Valid" means the spec can be turned into its request
and previewed (nothing invalid goes past specs/, DESIGN.md). Example counts are modest so the
module runs in a few seconds; hypothesis keeps any failure it finds in its database.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gcpjobs.errors import SpecError
from gcpjobs.protos import cloudrun as cloudrun_requests
from gcpjobs.protos import vertex as vertex_requests
from gcpjobs.specs.cloudrun import CloudRunJob
from gcpjobs.specs.jobfile import load_job_file, parse_job_document
from gcpjobs.specs.vertex import VertexJob

# Strategies draw all their randomness from hypothesis (st.randoms(), st.data(), sampled_from
# ...), never from the global `random` module: hypothesis could neither replay nor shrink what
# that gives. It warns when a draw changes the global random state; here that fails the test.
pytestmark = pytest.mark.filterwarnings("error::hypothesis.errors.HypothesisDeprecationWarning")

MAX_MESSAGE = 600  # characters, beyond the document's name
SOURCE = "job.yaml"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- documents that are valid, to mutate ------------------------------------------------------

VERTEX = {
    "kind": "vertex", "name": "train", "image": "python:3.11", "command": ["python", "-c", "1"],
    "args": ["--lr", "0.1"], "env": {"MODE": "train"}, "machine_type": "n1-standard-4",
    "labels": {"team": "ml"}, "maximum_run_time": "2h", "scheduling_strategy": "SPOT",
    "extra_worker_pools": [{"replica_count": 2, "machine_type": "n1-standard-8"}],
}
CLOUD_RUN = {
    "kind": "cloud-run", "name": "export", "image": "python:3.11", "command": ["python"],
    "args": ["-c", "1"], "env": {"A": "1", "PASSWORD": {"secret": "db-password", "version": "2"}},
    "cpu": "2", "memory": "1Gi", "timeout": "10m", "max_retries": 1, "task_count": 4,
    "parallelism": 2, "labels": {"team": "data"},
}
CUSTOM_JOB_SPEC = {
    "workerPoolSpecs": [
        {"machineSpec": {"machineType": "n1-standard-4", "acceleratorType": "NVIDIA_TESLA_T4",
                         "acceleratorCount": 1},
         "replicaCount": 1, "diskSpec": {"bootDiskType": "pd-standard", "bootDiskSizeGb": 200},
         "containerSpec": {"imageUri": "gcr.io/p/t:1", "command": ["python"],
                           "args": ["-m", "t"], "env": [{"name": "MODE", "value": "train"}]}},
        {},
        {"machineSpec": {"machineType": "n1-standard-8"}, "replicaCount": "2",
         "containerSpec": {"imageUri": "gcr.io/p/ps:1"}},
    ],
    "scheduling": {"timeout": "3600s", "restartJobOnWorkerRestart": True, "strategy": "SPOT"},
    "baseOutputDirectory": {"outputUriPrefix": "gs://bucket/out"},
}
CUSTOM_JOB = {"displayName": "nightly", "labels": {"team": "ml"}, "jobSpec": CUSTOM_JOB_SPEC}
V1_JOB = {
    "apiVersion": "run.googleapis.com/v1", "kind": "Job",
    "metadata": {"name": "nightly-export", "namespace": "my-project",
                 "labels": {"cloud.googleapis.com/location": "europe-west1", "team": "data"},
                 "annotations": {"run.googleapis.com/launch-stage": "BETA"}},
    "spec": {"template": {
        "metadata": {"annotations": {"run.googleapis.com/execution-environment": "gen2"}},
        "spec": {"parallelism": 5, "taskCount": 10, "template": {"spec": {
            "maxRetries": 3, "timeoutSeconds": "3600",
            "containers": [{
                "image": "europe-docker.pkg.dev/p/j/e:2", "command": ["python", "e.py"],
                "env": [{"name": "TABLE", "value": "events"},
                        {"name": "DB_PASSWORD",
                         "valueFrom": {"secretKeyRef": {"name": "db", "key": "latest"}}}],
                "resources": {"limits": {"cpu": "2", "memory": "4Gi"}},
            }],
        }}},
    }},
}
VALID_DOCUMENTS = {"vertex": VERTEX, "cloud-run": CLOUD_RUN, "custom-job-spec": CUSTOM_JOB_SPEC,
                   "custom-job": CUSTOM_JOB, "v1-job": V1_JOB}

# -- random values ----------------------------------------------------------------------------

TEXT = st.text(max_size=30)
SPECIAL_TEXT = st.sampled_from([
    "", " ", "\n", "a\nb", "\x00", "-", "UPPER", "x" * 300, "gs://", "projects/p", "1e309",
    "nan", "inf", "-1", "0", "2h", "P1D", "PT-1S", "10000000000d", "1.5", "true", "null", "é",
    "{{ template }}", "$(VAR)", "Traceback", "n1-standard-4", "SPOT", "vertex", "cloud-run",
])
# What YAML and JSON can hold (with the dates and times YAML makes of some scalars).
FILE_SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT, SPECIAL_TEXT, st.dates(), st.datetimes(),
)


def nested(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.one_of(TEXT, SPECIAL_TEXT, st.integers(), st.booleans()), inner,
                            max_size=4),
        ),
        max_leaves=12,
    )


FILE_VALUES = nested(FILE_SCALARS)
# Python callers can pass anything: timedeltas too.
VALUES = nested(st.one_of(FILE_SCALARS, st.timedeltas()))


# -- the property -----------------------------------------------------------------------------

def check_outcome(action: Callable[[], Any]) -> Any:
    """Run `action`: it returns a usable spec, or raises one clear SpecError."""
    try:
        spec = action()
    except SpecError as error:
        message = str(error)
        assert message, "an empty error message"
        assert "\n" not in message and "\r" not in message, f"more than one line: {message!r}"
        assert "Traceback (most recent call last)" not in message, message
        assert len(message) <= MAX_MESSAGE + len(SOURCE) + 300, f"too long: {message[:200]}..."
        assert type(error).__module__ == "gcpjobs.errors"
        return None
    assert isinstance(spec, (VertexJob, CloudRunJob)), f"not a spec: {spec!r}"
    usable(spec)
    return spec


def usable(spec: VertexJob | CloudRunJob) -> None:
    """A valid spec goes all the way to a request and a preview without raising."""
    if isinstance(spec, VertexJob):
        vertex_requests.build_custom_job(spec, "0123456789abcdef0123456789abcdef")
        json.loads(vertex_requests.preview(spec, "json"))
    else:
        cloudrun_requests.build_create_request(spec, "proj", "0123456789abcdef0123456789abcdef")
        json.loads(cloudrun_requests.preview(spec, "json"))


def mutate(document: Any, path: list[int], value: Any) -> Any:
    """Replace (or, for a mapping, add) the node that `path` picks (indices taken modulo)."""
    document = copy.deepcopy(document)
    if not path:
        return value
    node = document
    for step in path:
        if isinstance(node, dict) and node:
            keys = list(node)
            key = keys[step % len(keys)]
            if step == path[-1] or not isinstance(node[key], (dict, list)) or not node[key]:
                node[key] = value
                return document
            node = node[key]
        elif isinstance(node, list) and node:
            index = step % len(node)
            if step == path[-1] or not isinstance(node[index], (dict, list)) or not node[index]:
                node[index] = value
                return document
            node = node[index]
        else:
            return document
    return document


# -- job files: random text -------------------------------------------------------------------

YAML_PIECES = [*"abck: -[]{}'\"#&*!|>%@`,?\n\t0123456789.~=", "kind: vertex\n", "image: x\n",
               "kind: cloud-run\n", "\u00e9", "\ufeff", "\x85"]
YAML_ALPHABET = st.sampled_from(YAML_PIECES)


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.lists(YAML_ALPHABET, max_size=60).map("".join)))
def test_random_text_in_a_job_file(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / SOURCE
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check_outcome(lambda: load_job_file(path))


@FUZZ
@given(data=st.binary(max_size=100))
def test_random_bytes_in_a_job_file(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / SOURCE
    path.write_bytes(data)
    check_outcome(lambda: load_job_file(path))


@FUZZ
@given(
    name=st.sampled_from(sorted(VALID_DOCUMENTS)),
    path=st.lists(st.integers(min_value=0, max_value=40), max_size=7),
    value=FILE_VALUES,
    as_json=st.booleans(),
)
def test_mutated_job_files(tmp_path_factory: pytest.TempPathFactory, name: str, path: list[int],
                           value: Any, as_json: bool) -> None:
    """A valid document of each shape with one node replaced, written as YAML or JSON."""
    document = mutate(VALID_DOCUMENTS[name], path, value)
    file = tmp_path_factory.mktemp("fuzz") / SOURCE
    if as_json:
        try:
            text = json.dumps(document, default=str, allow_nan=True)
        except (TypeError, ValueError):
            return  # keys JSON cannot hold (hypothesis gave a non-string key)
    else:
        text = yaml.safe_dump(document, allow_unicode=True)
    file.write_text(text, encoding="utf-8")
    check_outcome(lambda: load_job_file(file))


@FUZZ
@given(document=VALUES)
def test_random_structures(document: Any) -> None:
    check_outcome(lambda: parse_job_document(document, source=SOURCE, default_name="fuzz"))


@FUZZ
@given(kind=st.sampled_from(["vertex", "cloud-run"]),
       extra=st.dictionaries(st.one_of(TEXT, SPECIAL_TEXT), VALUES, max_size=5))
def test_random_fields_with_a_kind(kind: str, extra: dict[str, Any]) -> None:
    check_outcome(lambda: parse_job_document({**extra, "kind": kind}, source=SOURCE))


def test_the_valid_documents_are_valid() -> None:
    """The base documents themselves load (else the mutations prove little)."""
    for name, document in VALID_DOCUMENTS.items():
        spec = parse_job_document(document, source=SOURCE, default_name="x")
        assert check_outcome(functools.partial(lambda s: s, spec)), name


# -- every field of the specs ----------------------------------------------------------------

def field_values(field: str) -> st.SearchStrategy[Any]:
    """Random values, plus some near the field's own kind (numbers for counts, text ...)."""
    near = st.one_of(
        st.integers(min_value=-5, max_value=100_001), st.floats(min_value=-1e6, max_value=1e12),
        st.lists(st.one_of(TEXT, SPECIAL_TEXT), max_size=4),
        st.dictionaries(st.one_of(TEXT, SPECIAL_TEXT), st.one_of(TEXT, SPECIAL_TEXT, VALUES),
                        max_size=3),
    )
    return st.one_of(VALUES, near)


VERTEX_FIELDS = sorted(set(VertexJob.model_fields) | set(VertexJob.input_aliases))
CLOUD_RUN_FIELDS = sorted(set(CloudRunJob.model_fields))


@pytest.mark.parametrize("field", VERTEX_FIELDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_vertex_field(field: str, data: st.DataObject) -> None:
    value = data.draw(field_values(field), label=field)
    base = {k: v for k, v in VERTEX.items() if k != "maximum_run_time" or field not in
            VertexJob.input_aliases}
    check_outcome(lambda: VertexJob.model_validate({**base, field: value}))
    check_outcome(lambda: VertexJob(**{**base, field: value}))


@pytest.mark.parametrize("field", CLOUD_RUN_FIELDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_cloud_run_field(field: str, data: st.DataObject) -> None:
    value = data.draw(field_values(field), label=field)
    check_outcome(lambda: CloudRunJob.model_validate({**CLOUD_RUN, field: value}))


@pytest.mark.parametrize("field", ["replica_count", "image", "command", "args", "env",
                                   "machine_type", "accelerator_type", "accelerator_count",
                                   "boot_disk_type", "boot_disk_size_gb"])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_worker_pool_field(field: str, data: st.DataObject) -> None:
    value = data.draw(field_values(field), label=field)
    document = {**VERTEX, "extra_worker_pools": [{"replica_count": 1, field: value}]}
    check_outcome(lambda: VertexJob.model_validate(document))


def test_check_outcome_can_fail() -> None:
    """The property itself rejects a multi-line message and a non-spec result."""
    def multi_line() -> Any:
        raise SpecError("one\ntwo")

    with pytest.raises(AssertionError):
        check_outcome(multi_line)
    with pytest.raises(AssertionError):
        check_outcome(lambda: {"kind": "vertex"})
    with pytest.raises(ValueError):
        check_outcome(lambda: int("x"))  # any other exception escapes, failing the property
