"""A job that prints thousands of lines a second (issue 12, finding 1): `gcpjobs run` and
`gcpjobs logs --follow` show every line once, in order, and end soon after the job; a Ctrl-C
in the middle of such output is answered at once.

Before the fix `gcpjobs run` of a 20,000-line burst was still printing minutes after the job
had ended (it rewrote its saved cursor, every id of the last seconds, for each line), and
ignored Ctrl-C meanwhile.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path

from tests.cli.support import GCPJOBS, gcpjobs, python_job
from tests.waiting import wait_for

BURST_LINES = 20_000
BURST = ("import sys\nw = sys.stdout.write\n"
         f"for i in range({BURST_LINES}): w(f'burst line {{i}}\\n')\nsys.stdout.flush()")
# 10,000 lines a second until cancelled (at most 5 minutes, should the test die first).
CHATTY = ("import sys, time\nw = sys.stdout.write\ni = 0\nend = time.time() + 300\n"
          "while time.time() < end:\n"
          "    for _ in range(1000): w(f'chatty line {i}\\n'); i += 1\n"
          "    sys.stdout.flush(); time.sleep(0.1)\n")
# Far more than the fixed commands need on a busy machine; the old `run` needed > 10 minutes.
DEADLINE_SECONDS = 90


def burst_numbers(output: str) -> list[int]:
    return [int(line.rsplit(" ", 1)[1]) for line in output.splitlines() if " burst line " in line]


def test_run_shows_every_line_of_a_burst_once_and_ends(env: dict[str, str], tmp_path: Path) -> None:
    path = python_job(tmp_path, BURST)
    result = gcpjobs("run", str(path), env=env, timeout=DEADLINE_SECONDS)
    assert result.returncode == 0, result.stderr[-2000:]
    assert burst_numbers(result.stderr) == list(range(BURST_LINES))
    assert result.stdout.startswith("SUCCEEDED")
    # The end's state line comes after the last log line (finding 8).
    lines = result.stderr.splitlines()
    last_log = max(index for index, line in enumerate(lines) if " burst line " in line)
    assert any("SUCCEEDED" in line for line in lines[last_log + 1:]), lines[-5:]


def test_logs_follow_of_a_cloud_run_burst_shows_every_line_once(
        env: dict[str, str], tmp_path: Path) -> None:
    path = python_job(tmp_path, BURST, kind="cloud-run")
    started = gcpjobs("run", "--detach", str(path), env=env)
    assert started.returncode == 0, started.stderr
    execution = started.stdout.strip().splitlines()[-1]
    result = gcpjobs("logs", execution, "--follow", env=env, timeout=DEADLINE_SECONDS)
    assert result.returncode == 0, result.stderr[-2000:]
    assert burst_numbers(result.stdout) == list(range(BURST_LINES))


def test_ctrl_c_in_the_middle_of_a_flood_of_lines_exits_130(
        env: dict[str, str], tmp_path: Path) -> None:
    path = python_job(tmp_path, CHATTY)
    process = subprocess.Popen([GCPJOBS, "run", str(path)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    shown: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            shown.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(lambda: sum(" chatty line " in line for line in shown) > 5000, timeout=60,
                 message="the job's first thousands of lines")
        process.send_signal(signal.SIGINT)
        # The grace period (2 s), the cancel, the job's stop, the last lines: seconds.
        assert process.wait(timeout=45) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(timeout=10)
    text = "".join(shown)
    assert "cancel requested" in text and "Traceback" not in text
    numbers = [int(line.rsplit(" ", 1)[1]) for line in shown if " chatty line " in line]
    assert numbers == list(range(len(numbers)))  # each once, in order, none skipped
