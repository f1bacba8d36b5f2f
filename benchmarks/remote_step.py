"""Remote steps on the emulator: the round trip of a no-op remote call, and packaging a project.

Round trip: `run_remote(noop)` from call to return value, in a caller that has made a call
before (its Google client library is loaded), side by side with spawning a bare `python -c
pass` and with the job's own start-up (`import gcpjobs.steps.entrypoint`). Goal: a no-op call
within 1.5 s (median). The first call of a fresh process is shown too: it also imports the
Google client library (about 0.6 s).

Packaging: the time `prepare_call` takes (scan, hash, zip if needed, upload, payload) and the
bytes it uploads, for a first and a second, unchanged, call on a project of 2,000 files; the
second both in the same process (file hashes remembered) and as a fresh process would (file
hashes computed again).

    .venv/bin/python benchmarks/remote_step.py [--runs 10]
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cold_start import row, time_command  # this directory, as a script's sys.path[0]

from gcpjobs.emulator.process import EmulatorProcess

PROJECT_FILES = 2_000
FIRST_CALL = """
import time
from gcpjobs import run_remote
start = time.perf_counter()
run_remote(abs, -1, settings={"code_dir": False})
print(time.perf_counter() - start)
"""


def noop() -> None:
    """The remote call measured: nothing to do, so the figure is all overhead."""


def time_calls(call: Callable[[], Any], runs: int) -> list[float]:
    call()  # the first call loads the client library: see the fresh-process row
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return timings


def first_calls(runs: int, env: dict[str, str]) -> list[float]:
    """Call to return, for the first call of a fresh process (its imports included)."""
    timings = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", FIRST_CALL], check=True, env=env,
                              capture_output=True, text=True)
        timings.append(float(done.stdout.strip().splitlines()[-1]))
    return timings


def make_project(root: Path, files: int) -> tuple[str, int]:
    """A package of `files` files, modules of 1-3 kB of Python in subpackages of 100 (as a
    real project's source); its name and size in bytes."""
    name = "benchproject"
    package = root / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("def noop():\n    return None\n")
    written, size, index = 1, 0, 0
    while written < files:
        directory = package / f"sub{index // 100:02d}"
        if not directory.exists():
            directory.mkdir()
            (directory / "__init__.py").write_text("")
            written += 1
            continue
        body = "".join(f"def function_{index}_{line}(x):\n    return x * {line} + {index}\n\n"
                       for line in range(20 + index % 40))
        (directory / f"module{index:04d}.py").write_text(body)
        size += len(body)
        written += 1
        index += 1
    return name, size


def packaging(store_root: Path, runs: int) -> list[tuple[str, float, int, int]]:
    from gcpjobs.steps import archive
    from gcpjobs.steps.packaging import prepare_call
    from gcpjobs.steps.signing import new_key
    from gcpjobs.steps.store import LocalStore

    project = store_root / "project"
    name, size = make_project(project, PROJECT_FILES)
    sys.path.insert(0, str(project))
    function = importlib.import_module(name).noop
    store = LocalStore(str(store_root / "store"))
    rows = []
    first = prepare_call(function, (), {}, code_dir=None, store=store, run_id="first",
                         key=new_key())
    rows.append((f"first call (empty store; {first.code_files} files, {size / 2**20:.1f} MiB "
                 "of source)", first.seconds, first.code_files, first.code_bytes_uploaded))
    same: list[float] = []
    fresh: list[float] = []
    uploaded = {"same": 0, "fresh": 0}
    for index in range(runs):
        again = prepare_call(function, (), {}, code_dir=None, store=store, run_id=f"s{index}",
                             key=new_key())
        same.append(again.seconds)
        uploaded["same"] += again.code_bytes_uploaded
        archive._hash_cache.clear()  # as in a new process
        cold = prepare_call(function, (), {}, code_dir=None, store=store, run_id=f"f{index}",
                            key=new_key())
        fresh.append(cold.seconds)
        uploaded["fresh"] += cold.code_bytes_uploaded
    rows.append(("second call, unchanged, same process (median)", statistics.median(same),
                 first.code_files, uploaded["same"]))
    rows.append(("second call, unchanged, fresh process: files hashed again (median)",
                 statistics.median(fresh), first.code_files, uploaded["fresh"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp, EmulatorProcess(Path(tmp) / "data") as emulator:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("GOOGLE_", "CLOUDSDK_", "GCLOUD_", "GCPJOBS_"))}
        env.update(GCPJOBS_EMULATOR_HOST=emulator.grpc_address,
                   GCPJOBS_STEP_IMAGE="python:3.11-slim",
                   GCPJOBS_STEP_STORE=str(Path(tmp) / "store"),
                   CLOUDSDK_CONFIG=str(Path(tmp) / "gcloud"))
        os.environ.clear()
        os.environ.update(env)
        from gcpjobs import run_remote

        results = {
            "`python -c pass`": time_command([python, "-c", "pass"], args.runs),
            "the job's start-up: `python -c 'import gcpjobs.steps.entrypoint'`": time_command(
                [python, "-c", "import gcpjobs.steps.entrypoint"], args.runs),
            "**no-op remote call, Vertex AI job: call → value**": time_calls(
                lambda: run_remote(noop), args.runs),
            "no-op remote call, Cloud Run job: call → value": time_calls(
                lambda: run_remote(noop, settings={"kind": "cloud-run"}), args.runs),
            "no-op remote call, first of a fresh process (loads the Google client)": (
                first_calls(args.runs, env)),
        }
        package_rows = packaging(Path(tmp) / "packaging", args.runs)

    print(f"remote steps on the emulator, seconds, {args.runs} runs each, "
          f"{os.cpu_count()} cores")
    print("| what | median | min | p90 |")
    print("|---|---|---|---|")
    for label, timings in results.items():
        print(row(label, timings))
    print()
    print(f"packaging a {PROJECT_FILES}-file project (prepare_call: scan, hash, zip, upload, "
          "payload), local store")
    print("| call | seconds | files | bytes uploaded |")
    print("|---|---|---|---|")
    for label, seconds, files, uploaded in package_rows:
        print(f"| {label} | {seconds:.3f} | {files} | {uploaded} |")


if __name__ == "__main__":
    main()
