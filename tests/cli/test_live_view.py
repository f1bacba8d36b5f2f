"""`gcpjobs run`'s live view in a real terminal (tmux; issue 12, finding 8): the spinner
turns, a Cloud Run execution's task counts show while it runs, the emulator's notes (the same
for every task) are shown once, and the result comes after the job's last line."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.support import GCPJOBS, python_job
from tests.waiting import wait_for

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

# Each task prints a line every 0.7 s for two seconds: long enough to watch it run.
TASK = ("import os, sys, time\n"
        "for i in range(3):\n"
        "    print(f\"task {os.environ['CLOUD_RUN_TASK_INDEX']} step {i}\", flush=True)\n"
        "    time.sleep(0.7)\n")
SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"  # rich's "dots"
NOTE = "container images are recorded, not pulled"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=30,
                          check=True).stdout


@pytest.fixture()
def session() -> Iterator[str]:
    name = f"gcpjobs-live-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True, timeout=30,
                   check=False)


def test_the_live_view_of_a_cloud_run_job(env: dict[str, str], tmp_path: Path,
                                          session: str) -> None:
    path = python_job(tmp_path, TASK, kind="cloud-run", task_count=3, parallelism=3)
    assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items()
                           if key.startswith(("GCPJOBS_", "PATH", "PYTHONPATH", "HOME", "XDG_")))
    done = tmp_path / "exit-code"
    command = (f"env -i {assignments} TERM=xterm-256color {shlex.quote(GCPJOBS)} run "
               f"{shlex.quote(str(path))}; echo $? > {shlex.quote(str(done))}; sleep 600")
    tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", session, command)

    frames: set[str] = set()
    task_counts_while_running: list[str] = []

    def look() -> bool:
        for row in tmux("capture-pane", "-p", "-t", session).splitlines():
            if row[:1] in SPINNER_FRAMES and "RUNNING" in row:
                frames.add(row[0])
                if "/3 tasks succeeded" in row:
                    task_counts_while_running.append(row)
        return done.exists()

    wait_for(look, timeout=120, interval=0.15, message="gcpjobs run to end in tmux")
    assert done.read_text().strip() == "0"
    assert len(frames) >= 2, f"the spinner never turned: {frames}"
    assert task_counts_while_running, "no task counts on the live line while it ran"

    screen = tmux("capture-pane", "-p", "-J", "-t", session, "-S", "-").splitlines()
    # The emulator's two notes, written in each task's log, each shown once for the job.
    assert sum(NOTE in row for row in screen) == 1, screen
    assert sum("was recorded, not pulled" in row for row in screen) == 1, screen
    logged = [index for index, row in enumerate(screen) if " step " in row]
    assert len(logged) == 9  # 3 tasks x 3 lines, each once
    ended = [index for index, row in enumerate(screen) if "SUCCEEDED" in row]
    assert ended and min(ended) > max(logged), screen
    # Each state line after the first says how long the job was in the one before.
    assert any("RUNNING" in row and "for " in row for row in screen), screen
