"""Forwarding many jobs' logs: one LogWatcher query a poll against a query per job.

For each N, an emulator runs N Vertex custom jobs, each a bash loop that prints a line every
`--line-every` seconds (no process forked per line). This process then follows every job's lines for
`--window` seconds, two ways, with Cloud Logging's GCP settings (a poll every 5 s):

- gcpjobs: one `LogWatcher` (what the CLI and the Prefect workers use): one query a poll for
  all the jobs of the project, split where the filter passes 19,000 characters, within a
  budget of 30 reads a minute.
- per job: each job followed with its own query a poll (gcpjobs' forwarder before the
  LogWatcher; prefect-gcp forwards no job logs at all).

Figures: ListLogEntries calls a minute (the emulator's counters), the delay from a line's
timestamp to its arrival (median, p95, max), lines received (each job's lines must arrive
once each), and this process's CPU (% of one core) over the window. Cloud Logging allows 60
reads a minute per project, of at most 1,000 entries each: polling cannot carry more than
60,000 lines a minute out of a project (30,000 within gcpjobs' budget), whatever the way; past
that, route the logs to Pub/Sub with a sink.

    .venv/bin/python benchmarks/logs.py [--sizes 10,100] [--window 60] [--line-every 1]
    .venv/bin/python benchmarks/logs.py --sizes 1000 --line-every 10

`--burst` measures instead what a person sees of a chatty job: `gcpjobs run` (a real process,
on the emulator) of a Vertex job that prints `--burst-lines` lines as fast as it can (20,000 in
about a second), and `gcpjobs logs --follow` of a Cloud Run execution doing the same: the time
from the job's end to the command's end (goal: at most 5 s), the lines shown (each once) and
the command's CPU time.

    .venv/bin/python benchmarks/logs.py --burst [--burst-lines 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

LIST = "LoggingServiceV2.ListLogEntries"
# A line every $1 seconds, waiting on a FIFO no one writes to (`read -t`), not forking `sleep`.
TICKER = ('f=$(mktemp -u); mkfifo "$f"; exec 3<>"$f"; rm "$f"; i=0; '
          'while :; do echo "tick $i"; i=$((i+1)); read -t "$0" -u 3; done')


def _create_jobs(server: Any, n: int, every: float) -> list[str]:
    import grpc
    from google.cloud import aiplatform_v1
    from google.cloud.aiplatform_v1.services.job_service.transports import JobServiceGrpcTransport

    channel = grpc.insecure_channel(server.grpc_address)
    jobs = aiplatform_v1.JobServiceClient(transport=JobServiceGrpcTransport(channel=channel))
    parent = "projects/gcpjobs-local/locations/us-central1"
    names = []
    for index in range(n):
        job = aiplatform_v1.CustomJob(display_name=f"ticker-{index}", job_spec={"worker_pool_specs": [{
            "machine_spec": {"machine_type": "n1-standard-4"}, "replica_count": 1,
            "container_spec": {"image_uri": "bash", "command": ["bash", "-c", TICKER, str(every)]}}]})
        names.append(jobs.create_custom_job(parent=parent, custom_job=job).name)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        running = server.stats()["jobs"].get("running", 0)
        if running >= n:
            break
        time.sleep(0.5)
    else:
        raise SystemExit(f"only {running} of {n} jobs running after 300 s")
    jobs.transport.close()
    return names


async def _follow(target: Any, names: list[str], way: str, window: float) -> dict[str, Any]:
    from gcpjobs.watch.logs import LOG_READS_PER_MINUTE, LogWatcher
    from gcpjobs.watch.ratelimit import RateLimit

    interval = 5.0
    started = time.monotonic()
    stop_at = started + window
    delays: list[float] = []
    received: dict[str, list[str]] = {name: [] for name in names}

    def until() -> bool:
        return time.monotonic() >= stop_at

    async def follow(watcher: LogWatcher, name: str) -> None:
        # From now on: the lines logged in the window, not the backlog of the job's start.
        since = datetime.now(timezone.utc)
        async for line in watcher.follow(target, name, until=until, since=since):
            delays.append(time.time() - line.timestamp.timestamp())
            received[name].append(line.insert_id)

    if way == "gcpjobs":
        shared = LogWatcher(interval=interval, rate_limit=RateLimit(LOG_READS_PER_MINUTE))
        watchers = [shared] * len(names)
    else:
        watchers = [LogWatcher(interval=interval) for _ in names]
    cpu = time.process_time()
    await asyncio.gather(*(follow(watcher, name) for watcher, name in zip(watchers, names, strict=True)))
    elapsed = time.monotonic() - started
    return {"delays": delays, "received": received, "cpu": (time.process_time() - cpu) / elapsed,
            "elapsed": elapsed}


def measure(server: Any, target: Any, names: list[str], way: str, window: float) -> dict[str, Any]:
    before = server.stats()["requests"].get(LIST, 0)
    result = asyncio.run(_follow(target, names, way, window))
    calls = server.stats()["requests"].get(LIST, 0) - before
    delays = sorted(result["delays"]) or [float("nan")]
    counts = [len(ids) for ids in result["received"].values()]
    twice = sum(len(ids) - len(set(ids)) for ids in result["received"].values())
    return {
        "calls_per_min": calls * 60 / result["elapsed"],
        "median": statistics.median(delays),
        "p95": delays[min(len(delays) - 1, int(len(delays) * 0.95))],
        "max": delays[-1],
        "lines": sum(counts),
        "fewest": min(counts),
        "twice": twice,
        "cpu": result["cpu"] * 100,
    }


BURST_GOAL_SECONDS = 5.0
BURST_CODE = ("import sys\nw = sys.stdout.write\nfor i in range({n}): w(f'burst line {{i}}\\n')\n"
              "sys.stdout.flush()")


def _burst_job(directory: Path, kind: str, lines: int) -> Path:
    import yaml

    path = directory / f"burst-{kind}.yaml"
    document: dict[str, Any] = {"kind": kind, "name": f"burst-{kind}", "image": "python:3.11-slim",
                                "command": [sys.executable, "-c", BURST_CODE.format(n=lines)]}
    path.write_text(yaml.safe_dump(document))
    return path


def _cli_env(server: Any, home: Path) -> dict[str, str]:
    import os

    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("GOOGLE_", "CLOUDSDK_", "GCLOUD_", "GCPJOBS_"))}
    env.update(GCPJOBS_EMULATOR_HOST=server.grpc_address, HOME=str(home),
               XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"))
    return env


def _finished(command: list[str], env: dict[str, str]) -> tuple[Any, float, float]:
    """Run a gcpjobs command to its end: its result, when it ended (epoch), its CPU seconds."""
    import resource
    import subprocess

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800,
                            check=False)
    ended = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result, ended, cpu


def _end_time(gcpjobs: str, env: dict[str, str], name: str) -> float:
    import json
    import subprocess

    shown = subprocess.run([gcpjobs, "status", name, "--json"], env=env, capture_output=True,
                           text=True, timeout=120, check=True)
    return datetime.fromisoformat(json.loads(shown.stdout)["endTime"]).timestamp()


def _shown(output: str, lines: int) -> tuple[int, int]:
    """How many of the job's lines `output` shows, and how many of them more than once."""
    counts: dict[str, int] = {}
    for row in output.splitlines():
        if " burst line " in row:
            counts[row.rsplit(" ", 1)[-1]] = counts.get(row.rsplit(" ", 1)[-1], 0) + 1
    return sum(1 for number in range(lines) if str(number) in counts), sum(
        count - 1 for count in counts.values())


def burst(lines: int) -> None:
    """`gcpjobs run` and `gcpjobs logs --follow` of a job that prints `lines` lines at once."""
    from gcpjobs.emulator.process import EmulatorProcess

    gcpjobs = str(Path(sys.executable).with_name("gcpjobs"))
    rows = []
    with tempfile.TemporaryDirectory() as data:
        directory = Path(data)
        server = EmulatorProcess(directory / "emulator").start()
        try:
            env = _cli_env(server, directory / "home")
            job = _burst_job(directory, "vertex", lines)
            result, ended, cpu = _finished([gcpjobs, "run", str(job)], env)
            name = result.stdout.split()[1]  # "SUCCEEDED  projects/..."
            shown, twice = _shown(result.stderr, lines)
            rows.append(("gcpjobs run (Vertex)", ended - _end_time(gcpjobs, env, name), shown,
                         twice, cpu, result.returncode))
            print(f"  run: {rows[-1]}", flush=True)

            job = _burst_job(directory, "cloud-run", lines)
            started = subprocess_run([gcpjobs, "run", "--detach", str(job)], env)
            execution = started.stdout.strip().splitlines()[-1]
            result, ended, cpu = _finished([gcpjobs, "logs", execution, "--follow"], env)
            shown, twice = _shown(result.stdout, lines)
            rows.append(("gcpjobs logs --follow (Cloud Run)",
                         ended - _end_time(gcpjobs, env, execution), shown, twice, cpu,
                         result.returncode))
            print(f"  logs --follow: {rows[-1]}", flush=True)
        finally:
            server.stop()
    print()
    print(f"a job printing {lines:,} lines as fast as it can (goal: the command ends at most "
          f"{BURST_GOAL_SECONDS:g} s after the job)")
    print("| command | job end to command end | lines shown | shown twice | CPU | exit |")
    print("|---|---|---|---|---|---|")
    for what, after, shown, twice, cpu, code in rows:
        print(f"| {what} | {after:.1f} s | {shown:,} of {lines:,} | {twice} | {cpu:.1f} s | {code} |")


def subprocess_run(command: list[str], env: dict[str, str]) -> Any:
    import subprocess

    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300,
                          check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100")
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--ways", default="gcpjobs,per-job")
    parser.add_argument("--line-every", type=float, default=1.0,
                        help="seconds between two lines of a job")
    parser.add_argument("--burst", action="store_true",
                        help="time `gcpjobs run` and `logs --follow` of a job printing at once")
    parser.add_argument("--burst-lines", type=int, default=20_000)
    options = parser.parse_args()
    if options.burst:
        burst(options.burst_lines)
        return
    # Stopped (SIGTERM, `timeout`): stop the emulator, and with it the N jobs, on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from gcpjobs.clients.target import EMULATOR_PROJECT, Target
    from gcpjobs.emulator.process import EmulatorProcess

    rows = []
    for n in [int(size) for size in options.sizes.split(",") if size]:
        with tempfile.TemporaryDirectory() as data:
            server = EmulatorProcess(Path(data)).start()
            try:
                target = Target(kind="emulator", project=EMULATOR_PROJECT,
                                grpc_address=server.grpc_address, rest_endpoint=server.rest_endpoint)
                began = time.monotonic()
                names = _create_jobs(server, n, options.line_every)
                print(f"N={n}: {n} jobs running after {time.monotonic() - began:.1f} s", flush=True)
                for way in options.ways.split(","):
                    row = measure(server, target, names, way, options.window)
                    rows.append((n, way, row))
                    print(f"  {way}: {row}", flush=True)
            finally:
                server.stop()

    print()
    print(f"window {options.window:g} s, a poll every 5 s, each job printing a line every "
          f"{options.line_every:g} s")
    print("| N | way | ListLogEntries/min | delay median | p95 | max | lines (fewest a job) "
          "| shown twice | CPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, way, row in rows:
        print(f"| {n:,} | {way} | {row['calls_per_min']:.0f} | {row['median']:.2f} s | "
              f"{row['p95']:.2f} s | {row['max']:.2f} s | {row['lines']:,} ({row['fewest']}) | "
              f"{row['twice']} | {row['cpu']:.0f} % |")


if __name__ == "__main__":
    main()
