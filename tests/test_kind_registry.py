"""The kind registry (`gcpjobs.kinds`): what each kind names resolves, unknown kinds are one
line listing the known ones, and kinds added at run time or by a plug-in are found."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import pytest

from gcpjobs import kinds as registry
from gcpjobs.cli.console import service_name
from gcpjobs.clients.cloudrun import AsyncCloudRunClient
from gcpjobs.clients.kinds import client_for_kind, kind_of_name
from gcpjobs.errors import ApiError, GcpJobsError, SpecError
from gcpjobs.kinds import KindEntry, UnknownKindError, kind_entry, known_kinds
from gcpjobs.results import JobStatus
from gcpjobs.specs.base import Spec
from gcpjobs.specs.cloudrun import CloudRunJob
from gcpjobs.specs.default_templates import default_template_data, spec_class
from gcpjobs.specs.jobfile import load_job_file, parse_job_document
from gcpjobs.specs.labels import SUBMISSION_LABEL
from gcpjobs.specs.templates import default_template
from gcpjobs.states import JobState
from gcpjobs.steps.settings import StepSettings
from tests.cli.support import assert_one_line_error, clean_env, gcpjobs, job_file

BUILTIN = registry.builtin_kinds()
FAKE = "fake-run"


@pytest.fixture
def fake_kind() -> Iterator[KindEntry]:
    """A kind registered at run time: the Cloud Run entry's classes under another name."""
    entry = dataclasses.replace(kind_entry("cloud-run"), name=FAKE, label="Fake Run",
                                name_rule=None, prefect_worker=None)
    registry.register_kind(entry)
    yield entry
    registry.unregister_kind(FAKE)


def test_the_built_in_kinds_come_first_in_their_order() -> None:
    assert BUILTIN == ("vertex", "cloud-run")
    assert known_kinds()[:2] == BUILTIN


@pytest.mark.parametrize("kind", BUILTIN)
def test_every_path_of_a_built_in_kind_resolves_to_what_it_says(kind: str) -> None:
    entry = kind_entry(kind)
    spec_class = entry.load("spec_class")
    assert isinstance(spec_class, type) and issubclass(spec_class, Spec)
    client_class = entry.load("client_class")
    assert isinstance(client_class, type) and client_class.__name__.startswith("Async")
    assert callable(entry.load("request_builder"))
    template = entry.load("default_template")(kind)
    assert template["job_configuration"]["kind"] == kind
    assert callable(entry.load("job_file_parser"))
    assert entry.load("name_rule")("projects/p/locations/l/nothing") is False
    pytest.importorskip("prefect")
    worker = entry.load("prefect_worker")
    assert worker.kind == kind and worker.service_name == entry.label


@pytest.mark.parametrize(("name", "kind"), [
    ("123", "vertex"),
    ("projects/p/locations/l/customJobs/123", "vertex"),
    ("projects/p/locations/l/jobs/j/executions/j-abc", "cloud-run"),
    ("nightly-export", None),
])
def test_names_tell_their_kind_through_the_rules(name: str, kind: str | None) -> None:
    assert kind_of_name(name) == kind


@pytest.mark.parametrize("kind", ["nope", "", "Vertex", 3, None])
def test_an_unknown_kind_is_one_line_listing_the_known_kinds(kind: object) -> None:
    with pytest.raises(UnknownKindError) as caught:
        kind_entry(kind)
    assert str(caught.value) == f"unknown kind {kind!r}; use one of: vertex, cloud-run"
    assert isinstance(caught.value, SpecError)


def test_an_unknown_kind_in_a_job_file_is_one_line_through_the_cli(tmp_path: Path) -> None:
    path = job_file(tmp_path, "kind: nope\nimage: python:3.11-slim\n")
    # Nothing may be reached: the file is refused before any client exists.
    result = gcpjobs("run", str(path), env=clean_env(GCPJOBS_EMULATOR_HOST="127.0.0.1:9"))
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result, str(path), "unknown kind 'nope'; use one of: cloud-run, vertex")


def test_an_unknown_kind_in_step_settings_lists_the_known_kinds() -> None:
    with pytest.raises(SpecError) as caught:
        StepSettings.parse({"kind": "nope"})
    assert str(caught.value) == "kind: must be 'vertex' or 'cloud-run', got 'nope'"


def test_a_kind_registered_at_run_time_is_found_everywhere(fake_kind: KindEntry) -> None:
    assert known_kinds()[-1] == FAKE
    assert isinstance(client_for_kind(FAKE, project="p"), AsyncCloudRunClient)
    job = parse_job_document({"kind": FAKE, "image": "img"}, source="s",
                             default_name="Nightly_Export")
    assert isinstance(job, CloudRunJob) and job.name == "nightly-export"
    with pytest.raises(SpecError, match=r"use one of: cloud-run, fake-run, vertex$"):
        parse_job_document({"kind": "nope", "image": "img"}, source="s")
    settings = StepSettings.parse({"kind": FAKE, "image": "img"})
    assert settings.kind == FAKE
    with pytest.raises(SpecError, match="'vertex', 'cloud-run' or 'fake-run'"):
        StepSettings.parse({"kind": "nope"})


def test_a_kind_registered_at_run_time_reads_job_files(fake_kind: KindEntry,
                                                         tmp_path: Path) -> None:
    job = load_job_file(job_file(tmp_path, f"kind: {FAKE}\nimage: img\ncpu: 2\n"))
    assert isinstance(job, CloudRunJob) and job.cpu == "2" and job.name == "job"


def test_default_templates_follow_a_kind_registered_at_run_time(fake_kind: KindEntry) -> None:
    assert spec_class(FAKE) is CloudRunJob
    data = default_template_data(FAKE)
    cloud_run = default_template_data("cloud-run")
    # A kind with Cloud Run's spec class exposes Cloud Run's fields, under its own kind.
    assert data["job_configuration"] == {**cloud_run["job_configuration"], "kind": FAKE}
    assert data["variables"] == cloud_run["variables"]
    job = parse_job_document(default_template(FAKE).render(overrides={"image": "img"}),
                             source="s")
    assert isinstance(job, CloudRunJob) and job.image == "img"
    with pytest.raises(SpecError, match=r"use one of: vertex, cloud-run, fake-run$"):
        spec_class("nope")


@pytest.mark.parametrize(("kind", "label"), [
    ("vertex", "Vertex AI"), ("cloud-run", "Cloud Run"), (None, "Vertex AI and Cloud Run"),
    ("nope", "Vertex AI and Cloud Run"),
])
def test_the_cli_names_a_kinds_service_by_its_label(kind: str | None, label: str) -> None:
    assert service_name(kind) == label


def test_the_cli_names_a_kind_registered_at_run_time_by_its_label(fake_kind: KindEntry) -> None:
    assert service_name(FAKE) == "Fake Run"
    assert service_name(None) == "Vertex AI and Cloud Run"  # `every kind` is the built-in ones


def test_remote_step_results_take_a_registered_kind(fake_kind: KindEntry) -> None:
    from gcpjobs.steps.remote import _registered_kind

    assert _registered_kind(FAKE) == FAKE
    with pytest.raises(SpecError) as caught:
        _registered_kind("nope")
    assert str(caught.value) == "kind: must be 'vertex', 'cloud-run' or 'fake-run', got 'nope'"


def test_prefect_configurations_take_their_spec_class_from_the_registry(
        fake_kind: KindEntry) -> None:
    pytest.importorskip("prefect")
    from gcpjobs.integrations.prefect.configuration import (
        CloudRunJobConfiguration,
        VertexJobConfiguration,
    )

    assert VertexJobConfiguration.spec_class is kind_entry("vertex").load("spec_class")
    assert CloudRunJobConfiguration.spec_class is CloudRunJob

    class FakeRunConfiguration(CloudRunJobConfiguration):
        kind = FAKE

    assert FakeRunConfiguration.spec_class is CloudRunJob
    spec = FakeRunConfiguration(job={"kind": FAKE, "image": "img", "name": "job"}).to_spec()
    assert isinstance(spec, CloudRunJob) and spec.image == "img"
    with pytest.raises(SpecError, match=r"^job variable kind: .*use kind: fake-run$"):
        FakeRunConfiguration(job={"kind": "cloud-run", "image": "img"}).to_spec()


def test_both_built_in_specs_declare_their_kind_alike() -> None:
    for kind in BUILTIN:
        cls = kind_entry(kind).load("spec_class")
        assert cls.model_fields["kind"].default == kind
        assert cls.model_validate({"image": "img", "kind": kind}).kind == kind


def test_a_taken_name_is_refused(fake_kind: KindEntry) -> None:
    with pytest.raises(GcpJobsError, match="'fake-run' is registered already"):
        registry.register_kind(fake_kind)


def test_aliases_find_the_kind() -> None:
    entry = dataclasses.replace(kind_entry("cloud-run"), name="alias-run", aliases=("ar",),
                                name_rule=None, prefect_worker=None)
    registry.register_kind(entry)
    try:
        assert kind_entry("ar") is entry
    finally:
        registry.unregister_kind("alias-run")
    with pytest.raises(UnknownKindError):
        kind_entry("ar")


# Loaded by the entry points below (`tests.test_kind_registry:PLUGGED_IN`).
PLUGGED_IN = KindEntry(
    name="plugged-in", label="Plugged In",
    spec_class="gcpjobs.specs.cloudrun:CloudRunJob",
    client_class="gcpjobs.clients.cloudrun:AsyncCloudRunClient",
    request_builder="gcpjobs.protos.cloudrun:build_job",
    default_template="gcpjobs.specs.default_templates:default_template_data",
)


def test_entry_points_add_kinds_and_skip_broken_ones() -> None:
    group = registry.ENTRY_POINT_GROUP
    points = [
        EntryPoint("plugged-in", "tests.test_kind_registry:PLUGGED_IN", group),
        EntryPoint("broken", "no_such_module_anywhere:ENTRY", group),
        EntryPoint("not-an-entry", "tests.test_kind_registry:BUILTIN", group),
    ]
    try:
        with pytest.warns(RuntimeWarning) as warned:
            assert registry.load_entry_point_kinds(points) == ["plugged-in"]
        assert [str(w.message).split(" (")[0] for w in warned] == [
            "gcpjobs kind plug-in 'broken'", "gcpjobs kind plug-in 'not-an-entry'"]
        assert kind_entry("plugged-in") is PLUGGED_IN
    finally:
        registry.unregister_kind("plugged-in")


def test_an_installed_plug_in_is_found_through_its_entry_point(tmp_path: Path) -> None:
    """A package installed with a `gcpjobs.kinds` entry point, in a fresh interpreter."""
    (tmp_path / "gcpjobs_fake_kind.py").write_text(textwrap.dedent("""
        from gcpjobs.kinds import KindEntry

        def entry():
            return KindEntry(
                name="plug-run", label="Plug Run",
                spec_class="gcpjobs.specs.cloudrun:CloudRunJob",
                client_class="gcpjobs.clients.cloudrun:AsyncCloudRunClient",
                request_builder="gcpjobs.protos.cloudrun:build_job",
                default_template="gcpjobs.specs.default_templates:default_template_data",
            )
    """))
    info = tmp_path / "gcpjobs_fake_kind-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gcpjobs-fake-kind\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text("[gcpjobs.kinds]\nplug-run = gcpjobs_fake_kind:entry\n")
    code = textwrap.dedent("""
        import json
        from gcpjobs.clients.kinds import client_for_kind
        from gcpjobs.kinds import known_kinds
        from gcpjobs.specs.jobfile import parse_job_document

        job = parse_job_document({"kind": "plug-run", "image": "img"}, source="s",
                                 default_name="job")
        print(json.dumps({"kinds": list(known_kinds()), "job": type(job).__name__,
                          "client": type(client_for_kind("plug-run", project="p")).__name__}))
    """)
    result = subprocess.run([sys.executable, "-c", code], env=clean_env(PYTHONPATH=str(tmp_path)),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"kinds": ["vertex", "cloud-run", "plug-run"],
                                         "job": "CloudRunJob", "client": "AsyncCloudRunClient"}


# -- a third kind answers wherever the CLI and the run history choose by kind ----------------

THIRD = "third-run"
THIRD_NAME = "projects/p/locations/us-central1/thirdJobs/nightly/runs/r1"


def third_given_name(display_name: str, name: str) -> str:
    """The third kind's rule: the name a run was given is its job's (`.../thirdJobs/JOB/...`)."""
    return name.split("/")[5]


def third_status(name: str = THIRD_NAME, state: str = "RUNNING") -> JobStatus:
    return JobStatus(name=name, display_name=name.rsplit("/", 1)[-1], state=JobState(state),
                     kind=THIRD, labels=MappingProxyType({SUBMISSION_LABEL: "abc"}))


class ThirdRunClient:
    """The third kind's client: lists two runs (one ended) and says what it was asked."""

    asked: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def __init__(self, **options: Any) -> None:
        self.options = options

    @property
    def target(self) -> Any:
        return self.options["target"]

    def resource_name(self, name: str, region: str | None = None, /) -> str:
        if "/" in name:
            raise GcpJobsError("not a run id")
        return f"projects/p/locations/{region or 'us-central1'}/thirdJobs/x/runs/{name}"

    async def get(self, name: str, /) -> JobStatus:
        self.asked.append(("get", {"name": name}))
        raise ApiError("NOT_FOUND", f"{name} not found")

    async def list(self, **options: Any) -> AsyncIterator[JobStatus]:
        self.asked.append(("list", options))
        yield third_status()
        yield third_status(THIRD_NAME.replace("r1", "r0"), "SUCCEEDED")

    async def create(self, job: Any, *, submission_id: str | None = None) -> JobStatus:
        return third_status()

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> ThirdRunClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass


@pytest.fixture
def third_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[KindEntry]:
    """A kind of its own (not a renamed built-in): no list filter, runs of kept jobs, its own
    start word, live task counts and rule for the name a user gave."""
    monkeypatch.setenv("GCPJOBS_EMULATOR_HOST", "127.0.0.1:9")  # a target nothing reaches
    ThirdRunClient.asked = []
    entry = registry.register_kind(KindEntry(
        name=THIRD, label="Third Run",
        spec_class="gcpjobs.specs.cloudrun:CloudRunJob",
        client_class="tests.test_kind_registry:ThirdRunClient",
        request_builder="gcpjobs.protos.cloudrun:build_job",
        default_template="gcpjobs.specs.default_templates:default_template_data",
        started_word="launched run", live_task_counts=True, executions=True,
        given_name_rule="tests.test_kind_registry:third_given_name",
    ))
    yield entry
    registry.unregister_kind(THIRD)


def test_a_third_kind_is_listed_through_its_own_client(
        third_kind: KindEntry, capsys: pytest.CaptureFixture[str]) -> None:
    from gcpjobs.cli.job_commands import list_jobs

    list_jobs(kind=THIRD, state="RUNNING", as_json=True)
    out = capsys.readouterr()
    # No list filter: the state is checked here, and nothing is sent for it.
    assert [s["name"] for s in json.loads(out.out)] == [THIRD_NAME]
    assert ThirdRunClient.asked == [("list", {"region": None})]


def test_a_filter_for_a_kind_without_one_names_the_kind(third_kind: KindEntry) -> None:
    import typer

    from gcpjobs.cli.job_commands import list_jobs

    with pytest.raises(typer.BadParameter) as caught:
        list_jobs(kind=THIRD, filter_text='state="JOB_STATE_RUNNING"')
    assert str(caught.value) == "Third Run has no list filter; use --state, or --kind vertex"
    assert ThirdRunClient.asked == []


def test_a_third_kinds_runs_are_found_by_the_name_its_rule_gives(third_kind: KindEntry) -> None:
    import asyncio

    from gcpjobs.cli.resolve import answers_to, locate

    assert answers_to(third_status(), "nightly") and not answers_to(third_status(), "r1")
    client, resource = asyncio.run(locate("nightly", THIRD, None, None, "grpc"))
    # A bare name is tried as a run id first (`executions`), then as the job's name; the
    # kept job counts once, as its newest run.
    assert isinstance(client, ThirdRunClient) and resource == THIRD_NAME
    assert [what for what, _ in ThirdRunClient.asked] == ["get", "list"]
    assert ThirdRunClient.asked[1] == ("list", {"region": None})


@pytest.mark.parametrize("kind", [THIRD, "vertex"])
def test_attach_finds_the_unended_submissions_of_a_third_kind_as_of_vertex(
        third_kind: KindEntry, kind: str) -> None:
    import asyncio

    from gcpjobs.cli.attach_commands import running_submissions
    from gcpjobs.clients.vertex import UNENDED_FILTER

    found = asyncio.run(running_submissions(ThirdRunClient(), kind))  # type: ignore[arg-type]
    assert [status.name for status in found] == [THIRD_NAME]  # the ended run is left out
    # Vertex's list takes the filter (the service narrows it); the third kind's is read whole.
    assert ThirdRunClient.asked == [("list", {"filter": UNENDED_FILTER} if kind == "vertex"
                                     else {})]


def test_the_run_history_asks_a_third_kind_for_the_name_given() -> None:
    assert registry.given_name_of("vertex", "shown", THIRD_NAME) == "shown"
    assert registry.given_name_of("cloud-run", "e1", "projects/p/locations/l/jobs/j/executions/e1"
                                  ) == "j"
    entry = registry.register_kind(KindEntry(
        name=THIRD, label="Third Run", spec_class="-", client_class="-", request_builder="-",
        default_template="-", given_name_rule="tests.test_kind_registry:third_given_name"))
    try:
        assert registry.given_name_of(THIRD, "r1", THIRD_NAME) == "nightly"
        assert entry.given_name("r1", THIRD_NAME) == "nightly"
    finally:
        registry.unregister_kind(THIRD)
    # A record of a kind no longer registered answers to its display name.
    assert registry.given_name_of(THIRD, "r1", THIRD_NAME) == "r1"


def test_run_says_what_a_third_kind_says_on_create(
        third_kind: KindEntry, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio
    from types import SimpleNamespace

    from gcpjobs.cli.follow import follow_job
    from gcpjobs.clients.target import resolve_target

    client = ThirdRunClient(target=resolve_target())
    job = SimpleNamespace(kind=THIRD, region="us-central1")
    assert asyncio.run(follow_job(client, job, detach=True)) == 0  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert f"\nlaunched run {THIRD_NAME}\n" in err
    assert kind_entry("vertex").started_word == "created"
    assert kind_entry("cloud-run").started_word == "started execution"


@pytest.mark.parametrize("kind", BUILTIN)
def test_the_differences_between_the_built_in_kinds_are_their_entries_fields(kind: str) -> None:
    entry = kind_entry(kind)
    vertex = kind == "vertex"
    assert entry.request_module == f"gcpjobs.protos.{'vertex' if vertex else 'cloudrun'}"
    assert (entry.live_task_counts, entry.executions, entry.list_filter) == (
        not vertex, not vertex, vertex)
    assert callable(entry.load("preview"))
    if vertex:
        from gcpjobs.clients.vertex import UNENDED_FILTER

        assert entry.unended_list_filter() == UNENDED_FILTER
        assert entry.name_list_filter('a"b') == 'display_name="a\\"b" OR display_name:"a\\"b-*"'
        assert entry.state_list_filter(JobState.FAILED) == 'state="JOB_STATE_FAILED"'
    else:
        assert entry.unended_list_filter() is None and entry.name_list_filter("a") is None
        assert entry.state_list_filter(JobState.FAILED) is None
    assert registry.bare_name_kind() == "cloud-run"


def test_a_kind_the_cli_is_given_that_nobody_serves_lists_the_known_ones(
        third_kind: KindEntry) -> None:
    import typer

    from gcpjobs.cli.options import parse_kind

    with pytest.raises(typer.BadParameter) as caught:
        parse_kind("nope")
    assert str(caught.value) == "'nope' is not a kind; use vertex or cloud-run or third-run"
