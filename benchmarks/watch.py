"""Watching many jobs: gcpjobs' one watcher against a per-job poller, Vertex AI and Cloud Run.

For each kind and N, a child process submits N jobs to an emulator that holds them without
running anything (`queued_seconds=None`: Vertex custom jobs wait in QUEUED, Cloud Run
executions wait before their tasks start, in PENDING), then watches all of them:

- gcpjobs: one `JobWatcher` (interval 1 s after a change, up to 5 s; budget 60 calls a
  minute, bursts of 10), waiting on each job from its create's reply (`known`) on.
- per-job: prefect-gcp's loop for each job through the official async client (one gRPC
  channel), polls spread evenly over 5 s: `GetCustomJob` (Vertex) or `GetExecution` (Cloud
  Run, prefect-gcp's `cloud-run-v2` worker) then sleep 5 s, until the job ends.

Once every job is watched, this process moves `--moves` random held jobs on every 2 s for
`--window` seconds (POST /_emulator/advance: a Vertex job QUEUED -> PENDING; a Cloud Run
execution starts its one task, `sleep 3600`: PENDING -> RUNNING; the emulator's reset stops
it) and notes when. Figures: API calls a minute in the window plus 6 s (the
emulator's counters: Vertex ListCustomJobs + GetCustomJob; Cloud Run ListExecutions +
GetExecution + ListJobs + GetJob), the delay from each move to the child's report of the
job's next state (Vertex: PENDING; Cloud Run: any state past PENDING; median, p95, max, over
every move: after the window the child waits up to `--drain` seconds for the last reports),
and the child's CPU in the window (user + system, % of one core) and memory (RSS at the end,
and its growth once the watch started). Setup: how long submitting the N jobs took.

10,000 per-job pollers are left out by default: on the 2-core machine of NOTES.md a run of
them (`--sizes "" --peer-sizes 10000`) had not finished its first round of Gets after 9
minutes (2,000 Gets a second asked of an emulator that serves ~1,700 with the cores to
itself), so their calls a minute are 10,000 x 12 = 120,000 by construction only.

    .venv/bin/python benchmarks/watch.py [--kind vertex|cloud-run|both]
        [--sizes 100,1000,10000] [--peer-sizes 100,1000] [--window 60] [--moves 5]
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
CREATE_CONCURRENCY = 64  # creates in flight at once while submitting the N jobs
KINDS = ("vertex", "cloud-run")
# The emulator's counters of the calls that read job states, per kind.
READ_METHODS = {
    "vertex": ("JobService.ListCustomJobs", "JobService.GetCustomJob"),
    "cloud-run": ("Executions.ListExecutions", "Executions.GetExecution", "Jobs.ListJobs",
                  "Jobs.GetJob"),
}


# ---------------------------------------------------------------------------------- child


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _official_poll(kind: str, grpc_address: str) -> Any:
    """prefect-gcp's per-job read through the official async client: an async function of a
    name returning (moved on, ended)."""
    import grpc

    channel = grpc.aio.insecure_channel(grpc_address)
    if kind == "vertex":
        from google.cloud import aiplatform_v1
        from google.cloud.aiplatform_v1.services.job_service.transports import (
            JobServiceGrpcAsyncIOTransport,
        )

        jobs = aiplatform_v1.JobServiceAsyncClient(
            transport=JobServiceGrpcAsyncIOTransport(channel=channel)
        )
        ended_states = (aiplatform_v1.JobState.JOB_STATE_SUCCEEDED,
                        aiplatform_v1.JobState.JOB_STATE_FAILED,
                        aiplatform_v1.JobState.JOB_STATE_CANCELLED)

        async def get_custom_job(name: str) -> tuple[bool, bool]:
            got = await jobs.get_custom_job(name=name)
            return got.state == aiplatform_v1.JobState.JOB_STATE_PENDING, got.state in ended_states

        return get_custom_job

    from google.cloud import run_v2
    from google.cloud.run_v2.services.executions.transports import (
        ExecutionsGrpcAsyncIOTransport,
    )

    executions = run_v2.ExecutionsAsyncClient(
        transport=ExecutionsGrpcAsyncIOTransport(channel=channel)
    )

    async def get_execution(name: str) -> tuple[bool, bool]:
        # prefect-gcp's ExecutionV2: running until completion_time is set.
        got = await executions.get_execution(name=name)
        ended = got.completion_time is not None
        return ended or got.start_time is not None, ended

    return get_execution


async def _child(kind: str, side: str, n: int, grpc_address: str) -> None:
    """Submit n jobs, watch them, report when each moved on; stop at lines on stdin."""
    from gcpjobs.clients.cloudrun import AsyncCloudRunClient
    from gcpjobs.clients.target import EMULATOR_PROJECT, Target
    from gcpjobs.clients.vertex import AsyncVertexClient
    from gcpjobs.specs.cloudrun import CloudRunJob
    from gcpjobs.specs.vertex import VertexJob
    from gcpjobs.states import JobState
    from gcpjobs.watch.events import StateChange
    from gcpjobs.watch.poll import PollInterval
    from gcpjobs.watch.ratelimit import RateLimit
    from gcpjobs.watch.shared import JobWatcher

    target = Target(kind="emulator", project=EMULATOR_PROJECT, grpc_address=grpc_address)
    client: AsyncVertexClient | AsyncCloudRunClient
    spec: VertexJob | CloudRunJob
    if kind == "vertex":
        client = AsyncVertexClient(target=target)
        spec = VertexJob(name="watched", image="python:3.11", command=["true"])
    else:
        client = AsyncCloudRunClient(target=target)
        # Moved on, it runs until the emulator is reset: RUNNING, like a real job's long run.
        spec = CloudRunJob(name="watched", image="python:3.11", command=["sleep", "3600"],
                           max_retries=0)
    limit = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def create() -> Any:
        async with limit:
            return await client.create(spec)  # type: ignore[arg-type]

    def moved(state: JobState) -> bool:
        return state is JobState.PENDING if kind == "vertex" else state is not JobState.PENDING

    # The Google library both sides use, loaded before the memory baseline (as it was before).
    if kind == "vertex":
        from google.cloud import aiplatform_v1  # noqa: F401
    else:
        from google.cloud import run_v2  # noqa: F401

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
            if change.previous is not None and moved(change.current):
                reported.setdefault(change.name, time.time())

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
        read = _official_poll(kind, grpc_address)
        first_polls = 0

        async def poll(name: str, offset: float) -> None:  # prefect-gcp's watch loop
            nonlocal first_polls
            await asyncio.sleep(offset)
            first = True
            while True:
                is_moved, ended = await read(name)
                if is_moved:
                    reported.setdefault(name, time.time())
                if first:
                    first = False
                    first_polls += 1
                    if first_polls == n:
                        ready.set()
                if ended:
                    return
                await asyncio.sleep(PEER_SECONDS)

        tasks = [loop.create_task(poll(s.name, PEER_SECONDS * i / n))
                 for i, s in enumerate(created)]

    await ready.wait()
    print(json.dumps({"names": [s.name for s in created]}), flush=True)
    cpu_start, wall_start = os.times(), time.monotonic()
    line = await loop.run_in_executor(None, sys.stdin.readline)  # the window
    cpu_end, wall = os.times(), time.monotonic() - wall_start
    cpu = (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)
    request = json.loads(line)  # the moved names, and how long to wait for their reports
    drain_until = time.monotonic() + request["drain"]
    while time.monotonic() < drain_until and not set(request["moved"]) <= reported.keys():
        await asyncio.sleep(0.2)
    print(json.dumps({
        "reported": reported, "cpu_percent": 100 * cpu / wall, "rss_mb": _rss_mb(),
        "rss_growth_mb": _rss_mb() - rss_before,
    }), flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await client.close()


# --------------------------------------------------------------------------------- parent


def _calls(stats: dict[str, Any], kind: str) -> int:
    requests = stats["requests"]
    return sum(int(requests.get(method, 0)) for method in READ_METHODS[kind])


def _reset(server: Any) -> None:
    """Forget the last measurement's jobs, and wait until the tasks it started are gone (a
    reset of thousands of held Cloud Run executions takes longer than the admin call's
    default timeout; their stopping must not eat into the next measurement)."""
    import psutil

    from gcpjobs.emulator.control import admin_call

    started = time.monotonic()
    admin_call(server.rest_endpoint, "POST", "/_emulator/reset", {}, timeout=900,
               data_dir=server.data_dir)
    emulator = psutil.Process(server.pid)
    while emulator.children(recursive=True) and time.monotonic() - started < 900:
        time.sleep(0.5)
    print(f"# reset in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


def measure(server: Any, kind: str, side: str, n: int, window: float, moves: int,
            drain: float) -> dict[str, Any]:
    _reset(server)
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", kind, side, str(n), server.grpc_address],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        names: list[str] = json.loads(child.stdout.readline())["names"]
        setup = time.monotonic() - started
        print(f"# {kind} {side} {n}: {n} submitted and watched in {setup:.1f} s",
              file=sys.stderr, flush=True)
        held = list(names)
        random.Random(n).shuffle(held)
        moved: dict[str, float] = {}
        before, t0 = server.stats(), time.monotonic()
        by_method_before = dict(before["requests"])
        while time.monotonic() - t0 < window:
            tick = time.monotonic()
            for _ in range(min(moves, len(held))):
                name = held.pop()
                moved[name] = time.time()
                server.advance(name)
            time.sleep(max(0.0, 2.0 - (time.monotonic() - tick)))
        # Reports of the last moves may still be on their way: give them one peer interval.
        time.sleep(PEER_SECONDS + 1)
        after, elapsed = server.stats(), time.monotonic() - t0
        child.stdin.write(json.dumps({"moved": list(moved), "drain": drain}) + "\n")
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
    by_method = {method: round((int(after["requests"].get(method, 0))
                                - int(by_method_before.get(method, 0))) / elapsed * 60)
                 for method in READ_METHODS[kind]}
    return {
        "kind": kind, "side": side, "n": n, "setup_s": setup,
        "calls_per_min": (_calls(after, kind) - _calls(before, kind)) / elapsed * 60,
        "by_method": {method: count for method, count in by_method.items() if count},
        "moved": len(moved), "reported": len(delays),
        "delay_median": statistics.median(delays) if delays else float("nan"),
        "delay_p95": delays[int(0.95 * (len(delays) - 1))] if delays else float("nan"),
        "delay_max": delays[-1] if delays else float("nan"),
        "cpu_percent": result["cpu_percent"], "rss_mb": result["rss_mb"],
        "rss_growth_mb": result["rss_growth_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=(*KINDS, "both"), default="both")
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--peer-sizes", default="100,1000")
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--moves", type=int, default=5, help="jobs moved on every 2 s")
    parser.add_argument("--drain", type=float, default=300.0,
                        help="seconds after the window to wait for the last moves' reports")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "SIDE", "N", "GRPC"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, side, n, address = args.child
        asyncio.run(_child(kind, side, int(n), address))
        return

    from gcpjobs.emulator.process import EmulatorProcess

    kinds = KINDS if args.kind == "both" else (args.kind,)
    plan = [(kind, "gcpjobs", int(n)) for kind in kinds for n in args.sizes.split(",") if n] + [
        (kind, "per-job", int(n)) for kind in kinds for n in args.peer_sizes.split(",") if n
    ]
    plan.sort(key=lambda item: (KINDS.index(item[0]), item[2], item[1]))
    rows = []
    with tempfile.TemporaryDirectory() as data, EmulatorProcess(
        Path(data), queued_seconds=None, pending_seconds=None
    ) as server:
        for kind, side, n in plan:
            row = measure(server, kind, side, n, args.window, args.moves, args.drain)
            print(f"# {row}", file=sys.stderr, flush=True)
            rows.append(row)
    fast, cap = INTERVAL
    print(f"Watching N held emulator jobs for {args.window:g} s while {args.moves} random jobs "
          f"move on every 2 s (Vertex: QUEUED -> PENDING; Cloud Run: PENDING -> RUNNING). "
          f"gcpjobs: one watcher, interval {fast:g}-{cap:g} s, budget {BUDGET:g} calls/min. per-job: GetCustomJob / GetExecution per job every "
          f"{PEER_SECONDS:g} s (prefect-gcp). Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores.\n")
    print("| kind | N | watcher | API calls/min | change -> report: median / p95 / max (s) "
          "| CPU (% of a core) | RSS (MB; growth while watching) | setup (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['kind']} | {row['n']:,} | {row['side']} | {row['calls_per_min']:,.0f} "
              f"| {row['delay_median']:.2f} / {row['delay_p95']:.2f} / {row['delay_max']:.2f} "
              f"({row['reported']}/{row['moved']}) | {row['cpu_percent']:.1f} "
              f"| {row['rss_mb']:.0f} (+{row['rss_growth_mb']:.0f}) | {row['setup_s']:.0f} |")


if __name__ == "__main__":
    main()
