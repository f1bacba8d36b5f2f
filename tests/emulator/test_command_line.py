"""`python -m gcpjobs.emulator start --detach | status | stop`, flags, one emulator per data dir."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gcpjobs.emulator.config import EmulatorConfig
from gcpjobs.emulator.control import running_emulator, start_detached, stop_detached
from gcpjobs.emulator.process import EmulatorProcess
from gcpjobs.errors import EmulatorError
from tests.emulator.support import process_gone
from tests.waiting import wait_for


def emulator_cli(*arguments: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gcpjobs.emulator", *arguments],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


@pytest.fixture()
def data_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "detached"
    yield directory
    stop_detached(directory)  # whatever a failed test left running


def test_detached_start_status_and_stop(data_dir: Path) -> None:
    started = emulator_cli("start", "--detach", "--grpc-port", "0", "--rest-port", "0",
                           "--data-dir", str(data_dir))
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith("gcpjobs emulator running pid=")
    info = running_emulator(data_dir)
    assert info is not None and f"pid={info.pid}" in started.stdout

    status = emulator_cli("status", "--data-dir", str(data_dir))
    assert status.returncode == 0
    assert f"grpc={info.grpc_address}" in status.stdout

    again = emulator_cli("start", "--detach", "--data-dir", str(data_dir))
    assert again.returncode == 0 and f"pid={info.pid}" in again.stdout  # reused, not doubled

    stopped = emulator_cli("stop", "--data-dir", str(data_dir))
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert wait_for(lambda: process_gone(info.pid), timeout=10)
    assert not (data_dir / "emulator.json").exists()

    status = emulator_cli("status", "--data-dir", str(data_dir))
    assert status.returncode == 1
    assert status.stdout.startswith("no gcpjobs emulator running")


def test_two_callers_racing_to_start_get_one_emulator(data_dir: Path) -> None:
    config = EmulatorConfig(grpc_port=0, rest_port=0, data_dir=data_dir)
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: start_detached(config), range(2))
    assert first.pid == second.pid
    assert first.grpc_port == second.grpc_port
    assert stop_detached(data_dir)
    assert wait_for(lambda: process_gone(first.pid), timeout=10)
    assert not stop_detached(data_dir)


def test_a_second_emulator_on_the_same_data_dir_is_refused(
    emulator_factory: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    emulator_factory(tmp_path / "shared")
    with pytest.raises(EmulatorError, match="another emulator is already running with data dir"):
        EmulatorProcess(tmp_path / "shared").start(timeout=30)


def test_a_port_in_use_is_one_clear_line(emulator: EmulatorProcess, tmp_path: Path) -> None:
    result = emulator_cli("start", "--grpc-port", str(emulator.grpc_port), "--rest-port", "0",
                          "--data-dir", str(tmp_path / "other"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("python -m gcpjobs.emulator: cannot listen for gRPC on 127.0.0.1:")
    assert "choose another --grpc-port" in lines[-1]


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["start", "--grpc-port", "99999"], "port must be 0-65535"),
        (["start", "--queued-seconds", "soon"], "expected seconds or 'hold'"),
        (["start", "--colour"], "unrecognized arguments: --colour"),
        (["launch"], "invalid choice: 'launch'"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(arguments: list[str], complaint: str) -> None:
    result = emulator_cli(*arguments)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and complaint in lines[0], result.stderr
