"""A `gs://` artifact store, through gcsfs, against a local Cloud Storage emulator from PyPI
(gcp-storage-emulator) running as its own process."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gcpjobs import run_remote
from tests.steps import functions
from tests.steps.conftest import StepEnv, unique_label
from tests.waiting import wait_for

BUCKET = "gcpjobs-steps"
# gcsfs >= 2025 asks the real Storage Control API for a bucket's layout; an emulator has none.
NO_LAYOUT_LOOKUP = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`http://127.0.0.1:PORT` of a storage emulator with the bucket BUCKET."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gcp-storage-emulator")), "start", "--host",
         "127.0.0.1", "--port", str(port), "--in-memory", "--default-bucket", BUCKET, "-q"],
        cwd=tmp_path_factory.mktemp("gcs"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/storage/v1/b/{BUCKET}", timeout=1) as reply:
                return bool(reply.status == 200)
        except OSError:
            return server.poll() is not None  # dead: stop waiting, the test says why
    try:
        wait_for(answers, timeout=30, message="the storage emulator")
        assert server.poll() is None, "the storage emulator exited"
        yield url
    finally:
        server.terminate()
        server.wait(10)


def test_gs_store(step_env: StepEnv, gcs_emulator: str, monkeypatch: pytest.MonkeyPatch,
                  caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    for name, value in NO_LAYOUT_LOOKUP.items():
        monkeypatch.setenv(name, value)
    import fsspec

    prefix = f"{BUCKET}/{unique_label()}"
    settings = {"store": f"gs://{prefix}",
                "env": {"STORAGE_EMULATOR_HOST": gcs_emulator, **NO_LAYOUT_LOOKUP}}
    caplog.set_level("INFO", logger="gcpjobs.steps")
    def last_step_message() -> str:
        # Other libraries log too (gcsfs, google-auth): the step's own record is the point.
        return [r for r in caplog.records if r.name == "gcpjobs.steps"][-1].getMessage()

    assert run_remote(functions.add, 20, 22, settings=settings) == 42
    assert "uploaded" in last_step_message()
    with pytest.raises(functions.StepFailure):
        run_remote(functions.fail_custom, 9, settings=settings)
    assert "unchanged, 0 bytes uploaded" in last_step_message()

    gcs = fsspec.filesystem("gs")
    gcs.invalidate_cache()
    assert len(gcs.ls(f"{prefix}/code")) == 1
    runs = gcs.ls(f"{prefix}/runs")
    assert len(runs) == 2
    for run in runs:
        assert {Path(path).name for path in gcs.ls(run)} == {"payload", "started", "result"}
    assert not step_env.store.exists()  # nothing went to the local default
