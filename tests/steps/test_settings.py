"""Every input a user gives a remote step is checked before anything is sent, and a wrong one
is one line naming the setting and the fix: decorator settings, per-call overrides, the
store URL, the image configured once (environment or config file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gcpjobs import SpecError, remote, run_remote
from gcpjobs.errors import GcpJobsError
from gcpjobs.steps.settings import StepSettings, load_config
from tests.steps import functions
from tests.steps.conftest import StepEnv

# (settings, the field the error must name, a fragment that says how to fix it)
BAD_SETTINGS: list[tuple[dict[str, Any], str, str]] = [
    ({"machine_type": "n1-standart-4"}, "machine_type", "did you mean n1-standard-4"),
    ({"machine_typ": "n1-standard-4"}, "machine_typ", "did you mean 'machine_type'"),
    ({"stor": "/tmp"}, "stor", "did you mean 'store'"),
    ({"accelerator_type": "NVIDIA_TESLA_A100"}, "accelerator_type", "a2-highgpu-1g"),
    ({"maximum_run_time": "forever"}, "maximum_run_time", "write it like '2h'"),
    ({"scheduling_strategy": "SPOT", "persistent_resource_id": "my-pool"},
     "scheduling_strategy", "use STANDARD"),
    ({"image": "python 3.11"}, "image", "only the image URI"),
    ({"labels": {"gcpjobs-step": "x"}}, "labels", "reserved prefix"),
    ({"kind": "gke"}, "kind", "'vertex' or 'cloud-run'"),
    ({"command": ["python", "train.py"]}, "command", "set by gcpjobs for remote steps"),
    ({"args": ["--epochs", "3"]}, "args", "set by gcpjobs for remote steps"),
    ({"env": {"GCPJOBS_STEP_KEY": "mine"}}, "env", "set by gcpjobs for each remote step"),
    ({"env": {"GCPJOBS_STEP_KEY_SECRET": "x"}}, "env", "set by gcpjobs for each remote step"),
    ({"env": {"1BAD": "x"}}, "env", "not starting with a digit"),
    ({"extra_worker_pools": [{"replica_count": 2}]}, "extra_worker_pools", "one machine"),
    ({"kind": "cloud-run", "task_count": 3}, "task_count", "must be 1 for a remote step"),
    ({"kind": "cloud-run", "machine_type": "n1-standard-4"}, "machine_type", "known field"),
    ({"kind": "cloud-run", "cpu": "3"}, "cpu", "use 1, 2, 4 or 8"),
    ({"kind": "cloud-run", "timeout": "0s"}, "timeout", "at least 1 second"),
    ({"store": "memory://steps"}, "store", "a job cannot read it"),
    ({"store": "nosuchfs://bucket/steps"}, "store", "not a filesystem fsspec knows"),
    ({"store": "gs://"}, "store", "gs://BUCKET/PREFIX"),
    ({"store": 5}, "store", "give a local directory or gs://BUCKET/PREFIX"),
    ({"store": ""}, "store", "is empty"),
    ({"code_dir": "/no/such/directory"}, "code_dir", "is not a directory"),
    ({"code_dir": True}, "code_dir", "False to ship no code"),
    ({"python": "python -u"}, "python", "as one word"),
    ({"python": ""}, "python", "as one word"),
]

SECRET = "projects/p/secrets/gcpjobs-step-1/versions/1"


def assert_one_line(error: BaseException, field: str, fragment: str) -> None:
    text = str(error)
    assert "\n" not in text
    assert text.startswith(f"{field}: "), text
    assert fragment in text, text


@pytest.mark.parametrize(("settings", "field", "fragment"), BAD_SETTINGS,
                         ids=[f"{i}-{row[1]}" for i, row in enumerate(BAD_SETTINGS)])
def test_bad_decorator_settings(settings: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(SpecError) as raised:
        remote(**settings)(functions.add)
    assert_one_line(raised.value, field, fragment)


@pytest.mark.parametrize(("settings", "field", "fragment"), BAD_SETTINGS[:8],
                         ids=[row[1] for row in BAD_SETTINGS[:8]])
def test_bad_per_call_overrides_send_nothing(
    step_env: StepEnv, settings: dict[str, Any], field: str, fragment: str,
) -> None:
    with pytest.raises(SpecError) as raised:
        run_remote(functions.add, 1, 2, settings=settings)
    assert_one_line(raised.value, field, fragment)
    with pytest.raises(SpecError) as raised:
        functions.decorated_multiply.with_settings(**settings)
    assert_one_line(raised.value, field, fragment)
    assert step_env.runs() == []


def test_a_file_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SpecError) as raised:
        remote(store=str(tmp_path / "file"))(functions.add)
    assert_one_line(raised.value, "store", "is a file, not a directory")


def test_settings_that_are_not_a_mapping(step_env: StepEnv) -> None:
    with pytest.raises(SpecError, match="settings must be a mapping"):
        run_remote(functions.add, 1, settings=["machine_type"])  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="settings go as keywords"):
        remote({"machine_type": "n1-standard-8"})  # type: ignore[call-overload]
    with pytest.raises(SpecError, match="takes the function to run first"):
        run_remote("functions.add")  # type: ignore[arg-type]


def test_settings_are_merged_field_by_field() -> None:
    base = StepSettings.parse({"machine_type": "n1-standard-8", "labels": {"a": "1"}})
    merged = base.merged({"labels": {"b": "2"}, "kind": "vertex"})
    assert merged.fields == {"machine_type": "n1-standard-8", "labels": {"b": "2"}}
    spec = merged.job_spec(function_name="m.train", image="img", run_url="/s/runs/1",
                           key_secret=SECRET)
    assert spec.name == "step-train" and spec.machine_type == "n1-standard-8"
    assert spec.command == ["python", "-m", "gcpjobs.steps.entrypoint"]
    assert spec.args == ["/s/runs/1"]
    assert spec.env["GCPJOBS_STEP_KEY_SECRET"] == SECRET
    assert "GCPJOBS_STEP_KEY" not in spec.env  # the key itself is never in the spec
    run = StepSettings.parse({"kind": "cloud-run"}).job_spec(
        function_name="m.Train_Model", image="img", run_url="/s/runs/1", key_secret=SECRET)
    assert run.name == "step-train-model" and run.max_retries == 0


def test_the_spec_names_the_key_secret_and_the_emulator() -> None:
    spec = StepSettings.parse({"env": {"A": "1"}}).job_spec(
        function_name="f", image="img", run_url="/s/runs/1", key_secret=SECRET,
        emulator_host="127.0.0.1:9")
    assert spec.env == {"A": "1", "GCPJOBS_STEP_KEY_SECRET": SECRET,
                        "GCPJOBS_EMULATOR_HOST": "127.0.0.1:9"}
    own = StepSettings.parse({"env": {"GCPJOBS_EMULATOR_HOST": "h:1"}}).job_spec(
        function_name="f", image="img", run_url="/s/runs/1", key_secret=SECRET,
        emulator_host="127.0.0.1:9")
    assert own.env["GCPJOBS_EMULATOR_HOST"] == "h:1"


# ---------------------------------------------------------------------- configured once


def test_no_image_anywhere(step_env: StepEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GCPJOBS_STEP_IMAGE")
    with pytest.raises(SpecError) as raised:
        run_remote(functions.add, 1)
    assert_one_line(raised.value, "image", "set GCPJOBS_STEP_IMAGE")
    assert step_env.runs() == []


def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "gcpjobs.yaml"
    path.write_text(text)
    monkeypatch.setenv("GCPJOBS_CONFIG", str(path))
    return path


BAD_CONFIGS: list[tuple[str, str]] = [
    ("steps: [unclosed", "is not YAML"),
    ("- image: x", "must be a mapping with a `steps:` section"),
    ("steps: python:3.11", "`steps` in the config file"),
    ("steps:\n  imag: python:3.11", "did you mean 'image'"),
    ("steps:\n  image: 5", "must be an image URI"),
    ("steps:\n  image: python 3.11", "only the image URI"),
    ("steps:\n  store: memory://x", "a job cannot read it"),
]


@pytest.mark.parametrize(("text", "fragment"), BAD_CONFIGS)
def test_bad_config_file(
    step_env: StepEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, fragment: str,
) -> None:
    path = write_config(tmp_path, monkeypatch, text)
    with pytest.raises(SpecError) as raised:
        run_remote(functions.add, 1)
    assert "\n" not in str(raised.value)
    assert fragment in str(raised.value) and str(path) in str(raised.value)
    assert step_env.runs() == []


def test_missing_config_file(step_env: StepEnv, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCPJOBS_CONFIG", str(tmp_path / "absent.yaml"))
    with pytest.raises(SpecError, match=r"GCPJOBS_CONFIG names .* which is not a file"):
        load_config()


@pytest.mark.parametrize(("variable", "value", "fragment"), [
    ("GCPJOBS_STEP_IMAGE", "python 3.11", "only the image URI"),
    ("GCPJOBS_STEP_STORE", "memory://x", "a job cannot read it"),
])
def test_bad_environment(step_env: StepEnv, monkeypatch: pytest.MonkeyPatch, variable: str,
                         value: str, fragment: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SpecError) as raised:
        run_remote(functions.add, 1)
    assert_one_line(raised.value, variable, fragment)


def test_config_file_gives_image_and_store(
    step_env: StepEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GCPJOBS_STEP_IMAGE")
    monkeypatch.delenv("GCPJOBS_STEP_STORE")
    store = tmp_path / "configured-store"
    write_config(tmp_path, monkeypatch, f"steps:\n  image: my-image:1\n  store: {store}\n")
    assert load_config().image == "my-image:1"
    assert run_remote(functions.add, 2, 3) == 5
    assert len(list((store / "runs").iterdir())) == 1
    monkeypatch.setenv("GCPJOBS_STEP_IMAGE", "from-env:2")  # the environment wins
    assert load_config().image == "from-env:2"


def test_a_local_store_is_refused_for_google_cloud(
    step_env: StepEnv, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GCPJOBS_EMULATOR_HOST")
    monkeypatch.delenv("GCPJOBS_EMULATOR_REST_HOST")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project-123")
    with pytest.raises(SpecError) as raised:
        run_remote(functions.add, 1)
    assert_one_line(raised.value, "store", "a job on Google Cloud cannot read")


def test_arguments_that_cannot_be_pickled(step_env: StepEnv) -> None:
    import threading

    with pytest.raises(GcpJobsError) as raised:
        run_remote(functions.echo, threading.Lock())
    assert "\n" not in str(raised.value)
    assert "cannot be pickled" in str(raised.value)
    assert step_env.runs() == []


def test_a_code_dir_too_big(step_env: StepEnv, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gcpjobs.steps.archive.MAX_FILES", 3)
    project = tmp_path / "big"
    project.mkdir()
    for index in range(5):
        (project / f"module{index}.py").write_text("")
    with pytest.raises(SpecError) as raised:
        run_remote(functions.add, 1, settings={"code_dir": str(project)})
    assert_one_line(raised.value, "code_dir", "more than 3 files")
