"""Watching many jobs: gcpjobs' one watcher against a per-job GetCustomJob poller.

For each N, a child process creates N custom jobs on an emulator that holds jobs in QUEUED
and PENDING without running anything (`queued_seconds=None`), then watches all of them:

- gcpjobs: one `JobWatcher` (interval 1 s after a change, up to 5 s; budget 60 calls a
  minute, bursts of 10), waiting on each job from its create's reply (`known`) on.
- per-job: prefect-gcp's loop for each job, `GetCustomJob` then sleep 5 s until the job ends,
  through the official async client (one gRPC channel), polls spread evenly over the 5 s.

Once every job is watched, this process moves `--moves` random QUEUED jobs on to PENDING
every 2 s for `--window` seconds (POST /_emulator/advance) and notes when. Figures: API
calls a minute in the window (the emulator's counters: ListCustomJobs + GetCustomJob), the
delay from each move to the child's report of PENDING (median, p95, max), and the child's CPU
(user + system, % of one core) and memory (RSS at the end, and its growth once the watch
started).

10,000 per-job pollers are left out by default: on the 2-core machine of NOTES.md a run of
them (`--sizes "" --peer-sizes 10000`) had not finished its first round of Gets after 9
minutes (2,000 Gets a second asked of an emulator that serves ~1,700 with the cores to
itself), so their calls a minute are 10,000 × 12 = 120,000 by construction only.

    .venv/bin/python benchmarks/watch.py [--sizes 100,1000,10000] [--peer-sizes 100,1000]
                                         [--window 60] [--moves 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
INTERVAL = (1.0, 5.0)  # gcpjobs: fast, cap
BUDGET = 60.0  # gcpjobs: calls a minute
PEER_SECONDS = 5.0  # prefect-gcp's poll interval


# ---------------------------------------------------------------------------------- child


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _child(side: str, n: int, grpc_address: str) -> None:
    """Create n jobs, watch them, report each PENDING's time; stop at a line on stdin."""
    import grpc
    from google.cloud import aiplatform_v1
    from google.cloud.aiplatform_v1.services.job_service.transports import (
        JobServiceGrpcAsyncIOTransport,
    )

    from gcpjobs.clients.target import EMULATOR_PROJECT, Target
    from gcpjobs.clients.vertex import AsyncVertexClient
    from gcpjobs.specs.vertex import VertexJob
    from gcpjobs.states import JobState
    from gcpjobs.watch.events import StateChange
    from gcpjobs.watch.poll import PollInterval
    from gcpjobs.watch.ratelimit import RateLimit
    from gcpjobs.watch.shared import JobWatcher

    target = Target(kind="emulator", project=EMULATOR_PROJECT, grpc_address=grpc_address)
    client = AsyncVertexClient(target=target)
    job = VertexJob(name="watched", image="python:3.11", command=["true"])
    limit = asyncio.Semaphore(64)

    async def create() -> Any:
        async with limit:
            return await client.create(job)

    reported: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    rss_before = _rss_mb()  # before the first job: the watch's memory includes its clients'
    tasks: list[asyncio.Task[Any]] = []
    ready = asyncio.Event()

    if side == "gcpjobs":  # each job is watched from its create's reply on, as a worker does
        fast, cap = INTERVAL
        watcher = JobWatcher(interval=PollInterval(fast=fast, cap=cap),
                             rate_limit=RateLimit(BUDGET, burst=10))

        def on_change(change: StateChange) -> None:
            if change.current is JobState.PENDING:
                reported[change.name] = time.time()

        async def submit_and_watch() -> Any:
            status = await create()
            tasks.append(loop.create_task(
                watcher.wait(client, status.name, known=status, on_change=on_change)
            ))
            return status

        created = await asyncio.gather(*(submit_and_watch() for _ in range(n)))
        ready.set()
    else:
        created = await asyncio.gather(*(create() for _ in range(n)))
        channel = grpc.aio.insecure_channel(grpc_address)
        official = aiplatform_v1.JobServiceAsyncClient(
            transport=JobServiceGrpcAsyncIOTransport(channel=channel)
        )
        first_polls = 0

        async def poll(name: str, offset: float) -> None:  # prefect-gcp's _watch_job_run
            nonlocal first_polls
            await asyncio.sleep(offset)
            state = None
            while True:
                got = await official.get_custom_job(name=name)
                if got.state != state and got.state == aiplatform_v1.JobState.JOB_STATE_PENDING:
                    reported[name] = time.time()
                if state is None:
                    first_polls += 1
                    if first_polls == n:
                        ready.set()
                state = got.state
                if state in (aiplatform_v1.JobState.JOB_STATE_SUCCEEDED,
                             aiplatform_v1.JobState.JOB_STATE_FAILED,
                             aiplatform_v1.JobState.JOB_STATE_CANCELLED):
                    return
                await asyncio.sleep(PEER_SECONDS)

        tasks = [loop.create_task(poll(s.name, PEER_SECONDS * i / n))
                 for i, s in enumerate(created)]

    await ready.wait()
    print(json.dumps({"names": [s.name for s in created]}), flush=True)
    cpu_start, wall_start = os.times(), time.monotonic()
    await loop.run_in_executor(None, sys.stdin.readline)  # the window
    cpu_end, wall = os.times(), time.monotonic() - wall_start
    cpu = (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)
    print(json.dumps({
        "reported": reported, "cpu_percent": 100 * cpu / wall, "rss_mb": _rss_mb(),
        "rss_growth_mb": _rss_mb() - rss_before,
    }), flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await client.close()


# --------------------------------------------------------------------------------- parent


def _calls(stats: dict[str, Any]) -> int:
    requests = stats["requests"]
    return int(requests.get("JobService.ListCustomJobs", 0)) + int(
        requests.get("JobService.GetCustomJob", 0)
    )


def measure(server: Any, side: str, n: int, window: float, moves: int) -> dict[str, Any]:
    server.reset()
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", side, str(n), server.grpc_address],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        names: list[str] = json.loads(child.stdout.readline())["names"]
        setup = time.monotonic() - started
        queued = list(names)
        random.Random(n).shuffle(queued)
        moved: dict[str, float] = {}
        before, t0 = server.stats(), time.monotonic()
        while time.monotonic() - t0 < window:
            tick = time.monotonic()
            for _ in range(min(moves, len(queued))):
                name = queued.pop()
                moved[name] = time.time()
                server.advance(name)
            time.sleep(max(0.0, 2.0 - (time.monotonic() - tick)))
        # Reports of the last moves may still be on their way: give them one peer interval.
        time.sleep(PEER_SECONDS + 1)
        after, elapsed = server.stats(), time.monotonic() - t0
        child.stdin.write("stop\n")
        child.stdin.flush()
        result = json.loads(child.stdout.readline())
    finally:
        if child.poll() is None:
            child.stdin.close()
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    delays = [result["reported"][name] - at for name, at in moved.items()
              if name in result["reported"]]
    delays.sort()
    return {
        "side": side, "n": n, "setup_s": setup,
        "calls_per_min": (_calls(after) - _calls(before)) / elapsed * 60,
        "moved": len(moved), "reported": len(delays),
        "delay_median": statistics.median(delays) if delays else float("nan"),
        "delay_p95": delays[int(0.95 * (len(delays) - 1))] if delays else float("nan"),
        "delay_max": delays[-1] if delays else float("nan"),
        "cpu_percent": result["cpu_percent"], "rss_mb": result["rss_mb"],
        "rss_growth_mb": result["rss_growth_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--peer-sizes", default="100,1000")
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--moves", type=int, default=5, help="jobs moved on every 2 s")
    parser.add_argument("--child", nargs=3, metavar=("SIDE", "N", "GRPC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side, n, address = args.child
        asyncio.run(_child(side, int(n), address))
        return

    from gcpjobs.emulator.process import EmulatorProcess

    plan = [("gcpjobs", int(n)) for n in args.sizes.split(",") if n] + [
        ("per-job", int(n)) for n in args.peer_sizes.split(",") if n
    ]
    plan.sort(key=lambda item: (item[1], item[0]))
    rows = []
    with tempfile.TemporaryDirectory() as data, EmulatorProcess(
        Path(data), queued_seconds=None, pending_seconds=None
    ) as server:
        for side, n in plan:
            row = measure(server, side, n, args.window, args.moves)
            print(f"# {row}", file=sys.stderr, flush=True)
            rows.append(row)
    fast, cap = INTERVAL
    print(f"Watching N held emulator jobs for {args.window:g} s while {args.moves} random jobs "
          f"move QUEUED -> PENDING every 2 s. gcpjobs: one watcher, interval {fast:g}-{cap:g} s, "
          f"budget {BUDGET:g} calls/min. per-job: GetCustomJob per job every "
          f"{PEER_SECONDS:g} s (prefect-gcp). Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores.\n")
    print("| N | watcher | API calls/min | change -> report: median / p95 / max (s) "
          "| CPU (% of a core) | RSS (MB; growth while watching) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['n']:,} | {row['side']} | {row['calls_per_min']:.0f} "
              f"| {row['delay_median']:.2f} / {row['delay_p95']:.2f} / {row['delay_max']:.2f} "
              f"({row['reported']}/{row['moved']}) | {row['cpu_percent']:.1f} "
              f"| {row['rss_mb']:.0f} (+{row['rss_growth_mb']:.0f}) |")


if __name__ == "__main__":
    main()
