"""Issue 12, finding 5: when the emulator goes away mid-job, `gcpjobs run` says so within
10 s (it was silent for two minutes of retries), with what to do, and exits 1."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from gcpjobs.emulator.process import EmulatorProcess
from tests.cli.support import GCPJOBS, clean_env, python_job
from tests.waiting import wait_for


def test_run_reports_an_emulator_that_went_away_within_ten_seconds(tmp_path: Path) -> None:
    job = python_job(tmp_path, "import time; print('up', flush=True); time.sleep(600)")
    with EmulatorProcess(tmp_path / "emulator") as emulator:
        env = clean_env(GCPJOBS_EMULATOR_HOST=emulator.grpc_address,
                        GCPJOBS_DATA_DIR=str(tmp_path / "data"))
        run = subprocess.Popen([GCPJOBS, "run", str(job)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        try:
            assert run.stderr is not None
            stderr = run.stderr
            # Following, and the job is running (its first line is shown).
            wait_for(lambda: "up" in stderr.readline(), timeout=60, message="the job's line")
            emulator.stop()  # SIGTERM: the emulator and its jobs are gone
            gone = time.monotonic()
            _, rest = run.communicate(timeout=60)
            took = time.monotonic() - gone
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
    assert run.returncode == 1, rest
    errors = [line for line in rest.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, rest
    assert "lost contact while following projects/" in errors[0]
    assert "UNAVAILABLE" in errors[0] and "gcpjobs emulator status" in errors[0]
    assert "gcpjobs attach" in errors[0]
    assert took < 10.0, f"reported {took:.1f}s after the emulator stopped"
