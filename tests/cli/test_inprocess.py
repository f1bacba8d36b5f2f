"""The in-process runner the CLI tests use answers as the real console script does, keeps
the test's own process as it was, and gives up at its deadline as `subprocess.run` does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from tests.cli.support import clean_env, gcpjobs, gcpjobs_process, job_file


@pytest.mark.parametrize("args", [
    ["--version"], ["--help"], ["emulator"], ["frobnicate"], ["list", "--state", "SLEEPING"],
    ["preview", "does-not-exist.yaml"], ["template", "show", "cloud-run"],
    ["--debug", "preview", "BADFILE"],
])
def test_answers_as_the_console_script_does(tmp_path: Path, args: list[str]) -> None:
    bad_file = str(job_file(tmp_path, "kind: vertex\nname: x\n"))
    args = [bad_file if arg == "BADFILE" else arg for arg in args]
    env = clean_env(COLUMNS="72", GCPJOBS_DATA_DIR=str(tmp_path / "data"))
    here, there = gcpjobs(*args, env=env), gcpjobs_process(*args, env=env)
    if "--debug" in args:  # the traceback's frames differ; its last line does not
        assert "Traceback" in here.stderr and "Traceback" in there.stderr
        assert here.stderr.splitlines()[-1] == there.stderr.splitlines()[-1]
        here.stderr = there.stderr = ""
    assert (here.returncode, here.stdout, here.stderr) == (
        there.returncode, there.stdout, there.stderr)
    assert here.args == there.args


def test_the_call_sees_exactly_its_environment_and_this_process_keeps_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GCPJOBS_TARGET", "gcp")  # would make the call below fail
    before = dict(os.environ)
    cwd, stdout, stderr, argv = Path.cwd(), sys.stdout, sys.stderr, sys.argv
    # Without the variable, a job file that is not there is the only error.
    result = gcpjobs("preview", "missing.yaml", env=clean_env(COLUMNS="80"))
    assert result.returncode == 2 and "missing.yaml" in result.stderr, result.stderr
    assert "GCPJOBS_TARGET" not in result.stderr
    assert dict(os.environ) == before
    assert (Path.cwd(), sys.stdout, sys.stderr, sys.argv) == (cwd, stdout, stderr, argv)


@pytest.fixture()
def silent_emulator() -> Iterator[str]:
    """An address that takes connections and never answers a request."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        accepted: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            server.settimeout(0.1)
            while not stop.is_set():
                with suppress(OSError):  # no connection in this tenth of a second
                    accepted.append(server.accept()[0])

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        try:
            yield f"127.0.0.1:{server.getsockname()[1]}"
        finally:
            stop.set()
            acceptor.join()
            for connection in accepted:
                connection.close()


def test_a_call_past_its_timeout_raises_timeout_expired_and_leaves_nothing_behind(
    tmp_path: Path, silent_emulator: str
) -> None:
    threads = set(threading.enumerate())
    env = clean_env(GCPJOBS_EMULATOR_HOST=silent_emulator, GCPJOBS_DATA_DIR=str(tmp_path))
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as expired:
        gcpjobs("status", "123", env=env, timeout=2)
    assert time.monotonic() - started < 30
    assert expired.value.timeout == 2 and expired.value.cmd[1:] == ["status", "123"]
    assert "target: emulator at " in str(expired.value.stderr)  # what it had said by then
    # The next call is not disturbed by the one that was given up on.
    assert gcpjobs("--version", env=env).returncode == 0
    left = {thread for thread in set(threading.enumerate()) - threads
            if not thread.name.endswith("(_poll_wrapper)")}
    assert not left, left
