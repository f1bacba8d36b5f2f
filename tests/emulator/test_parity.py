"""docs/parity.md is generated (`gcpjobs.emulator.parity`): it must be current, have a row for
every served method and route, and its "tested with" cells must come from the tests' source."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from gcpjobs.emulator import dispatch, parity
from gcpjobs.emulator.cloudrun import v1
from gcpjobs.emulator.transports import rest

DOC = parity.ROOT / "docs" / "parity.md"


@pytest.fixture(scope="module")
def rows() -> list[parity.Row]:
    return parity.rows()


def test_the_committed_table_is_current(rows: list[parity.Row]) -> None:
    assert DOC.read_text(encoding="utf-8") == parity.format_table(rows), (
        f"docs/parity.md is stale: run `{parity.COMMAND}`")


def test_every_method_table_of_the_dispatcher_is_read() -> None:
    """A new `*_methods` list in dispatch.py must reach the table (server.py serves them all)."""
    tables = {name for name, function in inspect.getmembers(dispatch, inspect.isfunction)
              if name.endswith("_methods") and function.__module__ == dispatch.__name__}
    source = inspect.getsource(parity.served_methods)
    assert tables and all(f"dispatch.{name}(" in source for name in tables), tables


def test_every_served_method_has_a_row_with_its_differences(rows: list[parity.Row]) -> None:
    served = [method.key for method in parity.served_methods()]
    assert [row.key for row in rows] == served
    assert len(set(served)) == len(served)
    assert sorted(parity.DIFFERENCES) == sorted(served), "one DIFFERENCES entry per method"
    assert all(row.differences.strip() for row in rows)


def test_every_route_is_in_a_row(rows: list[parity.Row]) -> None:
    rest_cells = {route for row in rows for route in row.rest}
    for route in rest._ROUTES:
        assert f"{route.http_method} {parity.path_template(route.pattern.pattern)}" in rest_cells
    v1_cells = {route for row in rows for route in row.v1}
    assert len(v1_cells) == len(v1._PATHS)
    for http_method, pattern, _ in v1._PATHS:
        assert f"{http_method} {v1.PREFIX}{parity.path_template(pattern.pattern)}" in v1_cells


def test_path_templates() -> None:
    assert parity.path_template(r"^/v2/(projects/[^/]+/locations/[^/]+/jobs/[^/:]+):run$") == (
        "/v2/projects/*/locations/*/jobs/*:run")
    assert parity.path_template(r"^/(?:v1|ui)/(projects/[^/]+)/operations$") == (
        "/{v1,ui}/projects/*/operations")
    with pytest.raises(ValueError, match="path template"):
        parity.path_template(r"^/v2/jobs/\d+$")


def test_known_clients_are_found_in_the_suite(rows: list[parity.Row]) -> None:
    """Facts of this suite: if one goes missing, the scan broke (or the tests were removed)."""
    clients = {row.key: set(row.clients) for row in rows}
    assert {"aiplatform_v1", "gcpjobs"} <= clients["JobService.CreateCustomJob"]
    assert {"run_v2", "gcpjobs"} <= clients["Jobs.RunJob"]
    assert "run_v2" in clients["Tasks.GetTask"]
    assert {"logging_v2", "google-cloud-logging (REST)"} <= clients["LoggingServiceV2.ListLogEntries"]
    assert "secretmanager_v1" in clients["SecretManagerService.AccessSecretVersion"]
    if (parity.ROOT / "tests/emulator/cloudrun/test_gcloud_run.py").exists():
        assert "gcloud run (v1 REST)" in clients["Executions.CancelExecution"]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_tested_with_reads_imports_calls_and_gcloud_commands(tmp_path: Path) -> None:
    _write(tmp_path / "tests/support.py",
           "from google.cloud import run_v2\n"
           "def clients():\n    return run_v2.JobsClient()\n")
    _write(tmp_path / "tests/test_a.py",
           "from tests.support import clients\n"
           "def test_it():\n    clients().run_job(name='x')\n"
           "    gcloud.run('run', 'jobs', 'executions', 'cancel', name)\n")
    # A call by a GAPIC name, without the library: not a client of the emulator.
    _write(tmp_path / "tests/test_b.py", "def test_it(x):\n    x.get_task(name='t')\n")
    _write(tmp_path / "src/gcpjobs/clients/own.py",
           "from google.cloud.aiplatform_v1 import JobServiceClient\n"
           "def go(api):\n    api.cancel_custom_job(name='n')\n")
    _write(tmp_path / "tests/test_c.py", "from gcpjobs.clients.own import go\n")
    found = parity.tested_with(parity.served_methods(), tmp_path)
    assert found["Jobs.RunJob"] == {"run_v2": {"tests.test_a"}}
    assert found["Executions.CancelExecution"] == {"gcloud run (v1 REST)": {"tests.test_a"}}
    assert found["JobService.CancelCustomJob"] == {"gcpjobs": {"tests.test_c"}}
    assert found["Tasks.GetTask"] == {}
    untested = parity.render(tmp_path).count(" | **none** | ")
    assert untested == len(parity.served_methods()) - 3
