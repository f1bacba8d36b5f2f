"""The emulator under load, hostile output and crashes: what a laptop user (or a CI runner) sees.

Cases (each against its own emulator on free ports of 127.0.0.1; all traffic stays there,
bounded in count and time):

- `rest`: `--connections` clients open a connection at once and each sends one
  GetCustomJob over REST (raw HTTP/1.1, `Connection: close`). Counted: refused or reset
  connections, error answers, no answer within `--timeout`; latency p50 / p99 of the answers.
- `grpc`: the same over gRPC, one channel (its own TCP connection) per client.
- `tails`: unary GetCustomJob latency over gRPC with no open TailLogEntries stream, then with
  `--tails` streams open (the official Logging client), 10 a project (Cloud Logging's limit). Calls that get no answer within 5 s
  count as timed out.
- `restart`: N jobs running (`sleep`), the emulator SIGKILLed (a crash), then started again on
  the same data directory: seconds from the new process to its ready line, and how many job
  processes outlived the crash once it is ready.
- `output`: a job prints `--output-mb` MiB without a newline; the emulator's resident memory is
  sampled while it runs: the peak growth over its RSS before the job, and the largest log entry
  it made (Cloud Logging caps an entry at 256 KB). Stopped early if the growth passes 2 GiB.

    .venv/bin/python benchmarks/emulator_load.py [--cases rest,grpc,tails,restart,output]
        [--connections 1000] [--tails 100] [--restart-sizes 100,1000] [--output-mb 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

PARENT = "projects/gcpjobs-bench/locations/us-central1"
GIB = 1 << 30
TAILS_PER_PROJECT = 10


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _vertex(server: Any) -> Any:
    import grpc
    from google.cloud import aiplatform_v1
    from google.cloud.aiplatform_v1.services.job_service.transports import JobServiceGrpcTransport

    channel = grpc.insecure_channel(server.grpc_address)
    return aiplatform_v1.JobServiceClient(transport=JobServiceGrpcTransport(channel=channel))


def _create(client: Any, command: list[str], display_name: str = "bench") -> str:
    from google.cloud import aiplatform_v1

    job = aiplatform_v1.CustomJob(display_name=display_name, job_spec={"worker_pool_specs": [{
        "machine_spec": {"machine_type": "n1-standard-4"}, "replica_count": 1,
        "container_spec": {"image_uri": "bench", "command": command}}]})
    return str(client.create_custom_job(parent=PARENT, custom_job=job).name)


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


# ------------------------------------------------------------------------------------ rest


async def _one_rest_call(host: str, port: int, path: str, timeout: float) -> tuple[str, float]:
    began = time.monotonic()
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
               "Accept: application/json\r\n\r\n").encode()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            await reader.read()
            writer.close()
    except TimeoutError:
        return "timeout", time.monotonic() - began
    except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
        return "refused", time.monotonic() - began
    except OSError:
        return "refused", time.monotonic() - began
    parts = status_line.split()
    outcome = "ok" if len(parts) > 1 and parts[1] == b"200" else "error"
    return outcome, time.monotonic() - began


def rest_case(server: Any, connections: int, timeout: float) -> dict[str, Any]:
    name = _create(_vertex(server), ["true"])
    path = "/v1/" + name

    async def run_all() -> list[tuple[str, float]]:
        return await asyncio.gather(*(_one_rest_call(server.host, server.rest_port, path, timeout)
                                      for _ in range(connections)))

    began = time.monotonic()
    results = asyncio.run(run_all())
    return _tally(results, time.monotonic() - began)


def _tally(results: list[tuple[str, float]], elapsed: float) -> dict[str, Any]:
    answered = [seconds for outcome, seconds in results if outcome == "ok"]
    counts = {outcome: sum(1 for o, _ in results if o == outcome)
              for outcome in ("ok", "error", "refused", "timeout")}
    return {**counts, "p50": _percentile(answered, 0.5), "p99": _percentile(answered, 0.99),
            "elapsed": elapsed}


# ------------------------------------------------------------------------------------ grpc


def grpc_case(server: Any, connections: int, timeout: float) -> dict[str, Any]:
    import grpc
    from google.cloud import aiplatform_v1

    name = _create(_vertex(server), ["true"])
    request = aiplatform_v1.GetCustomJobRequest(name=name)
    method = "/google.cloud.aiplatform.v1.JobService/GetCustomJob"

    async def one(channel: grpc.aio.Channel) -> tuple[str, float]:
        call = channel.unary_unary(method, request_serializer=aiplatform_v1.GetCustomJobRequest.serialize,
                                   response_deserializer=aiplatform_v1.CustomJob.deserialize)
        began = time.monotonic()
        try:
            await call(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            outcome = {grpc.StatusCode.DEADLINE_EXCEEDED: "timeout",
                       grpc.StatusCode.UNAVAILABLE: "refused"}.get(error.code(), "error")
            return outcome, time.monotonic() - began
        return "ok", time.monotonic() - began

    async def run_all() -> list[tuple[str, float]]:
        # A local subchannel pool each: every channel makes its own TCP connection.
        channels = [grpc.aio.insecure_channel(server.grpc_address,
                                              options=[("grpc.use_local_subchannel_pool", 1)])
                    for _ in range(connections)]
        try:
            return await asyncio.gather(*(one(channel) for channel in channels))
        finally:
            await asyncio.gather(*(channel.close() for channel in channels))

    began = time.monotonic()
    results = asyncio.run(run_all())
    return _tally(results, time.monotonic() - began)


# ----------------------------------------------------------------------------------- tails


def _unary_latencies(client: Any, name: str, calls: int) -> dict[str, Any]:
    from google.api_core import exceptions

    latencies: list[float] = []
    timed_out = 0
    for _ in range(calls):
        began = time.monotonic()
        try:
            client.get_custom_job(name=name, timeout=5.0)
        except exceptions.GoogleAPICallError:
            timed_out += 1
            continue
        latencies.append(time.monotonic() - began)
    return {"p50": _percentile(latencies, 0.5), "p99": _percentile(latencies, 0.99),
            "timed_out": timed_out, "calls": calls}


def tails_case(server: Any, tails: int, calls: int) -> list[dict[str, Any]]:
    import grpc
    from google.cloud import logging_v2
    from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
    from google.cloud.logging_v2.services.logging_service_v2.transports import (
        LoggingServiceV2GrpcTransport,
    )

    client = _vertex(server)
    name = _create(client, ["true"])
    rows = [{"open_tails": 0, **_unary_latencies(client, name, calls)}]
    stop = threading.Event()
    channels: list[Any] = []
    refused = [0]
    tail_method = "LoggingServiceV2.TailLogEntries"

    def hold_tail(index: int) -> None:
        channel = grpc.insecure_channel(server.grpc_address)
        logging = LoggingServiceV2Client(transport=LoggingServiceV2GrpcTransport(channel=channel))
        # Cloud Logging allows 10 open tails a project: spread them as a team of users would.
        project = f"projects/gcpjobs-bench-{index // TAILS_PER_PROJECT}"
        request = logging_v2.types.TailLogEntriesRequest(resource_names=[project])

        def requests() -> Any:
            yield request
            stop.wait()

        try:
            # The GAPIC stream waits for its first response (an empty one once the tail runs).
            for _ in logging.tail_log_entries(requests=requests()):
                if stop.is_set():
                    break
        except Exception:
            if not stop.is_set():
                refused[0] += 1
        finally:
            channels.append(channel)

    holders = [threading.Thread(target=hold_tail, args=(index,), daemon=True)
               for index in range(tails)]
    for holder in holders:
        holder.start()
    # Measured once the server has taken every tail, or after 20 s (a server that starves
    # takes only as many as it has threads for): the row says how many it had taken.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        taken = server.stats()["requests"].get(tail_method, 0) + refused[0]
        if taken >= tails:
            break
        time.sleep(0.2)
    taken = server.stats()["requests"].get(tail_method, 0)
    rows.append({"open_tails": tails, "taken_tails": taken, "refused_tails": refused[0],
                 **_unary_latencies(client, name, calls)})
    stop.set()
    server.stop(timeout=30)  # ends the streams that are still open
    for channel in channels:
        channel.close()
    return rows


# --------------------------------------------------------------------------------- restart


def _job_processes(data_dir: Path) -> int:
    import psutil

    count = 0
    for process in psutil.process_iter(["cwd", "status"]):
        cwd = process.info.get("cwd")
        if cwd and process.info.get("status") != psutil.STATUS_ZOMBIE and Path(cwd).is_relative_to(data_dir):
            count += 1
    return count


def restart_case(size: int) -> dict[str, Any]:
    from gcpjobs.emulator.process import EmulatorProcess

    with tempfile.TemporaryDirectory() as data:
        data_dir = Path(data).resolve()
        server = EmulatorProcess(data_dir).start()
        client = _vertex(server)
        for index in range(size):
            _create(client, ["sleep", "600"], f"unfinished-{index}")
        _wait(lambda: server.stats()["jobs"].get("running", 0) >= size, 600, f"{size} running jobs")
        client.transport.close()
        server.kill()
        began = time.monotonic()
        again = EmulatorProcess(data_dir)
        try:
            again.start(timeout=600)
            ready = time.monotonic() - began
            survivors = _job_processes(data_dir)
        finally:
            again.stop(timeout=120)
        return {"jobs": size, "ready_s": ready, "survivors": survivors}


# ---------------------------------------------------------------------------------- output


def output_case(megabytes: int) -> dict[str, Any]:
    import psutil
    from google.cloud import aiplatform_v1

    from gcpjobs.emulator.process import EmulatorProcess

    program = ("import sys\nchunk = b'x' * (1 << 20)\n"
               f"for _ in range({megabytes}):\n    sys.stdout.buffer.write(chunk)\n"
               "sys.stdout.buffer.flush()\n")
    with tempfile.TemporaryDirectory() as data:
        server = EmulatorProcess(Path(data)).start()
        try:
            process = psutil.Process(server.pid)
            client = _vertex(server)
            baseline = process.memory_info().rss
            name = _create(client, [sys.executable, "-c", program])
            peak = baseline
            began = time.monotonic()
            stopped_early = False
            while True:
                peak = max(peak, process.memory_info().rss)
                if peak - baseline > 2 * GIB:
                    stopped_early = True
                    client.cancel_custom_job(name=name)
                    break
                state = client.get_custom_job(name=name).state
                if state in (aiplatform_v1.JobState.JOB_STATE_SUCCEEDED,
                             aiplatform_v1.JobState.JOB_STATE_FAILED,
                             aiplatform_v1.JobState.JOB_STATE_CANCELLED):
                    break
                time.sleep(0.1)
            elapsed = time.monotonic() - began
            largest = 0 if stopped_early else _largest_entry(server, name)
            return {"mb": megabytes, "growth_mb": (peak - baseline) / (1 << 20),
                    "largest_entry_kb": largest / 1024, "seconds": elapsed,
                    "stopped_early": stopped_early}
        finally:
            server.stop(timeout=60)


def _largest_entry(server: Any, job_name: str) -> int:
    import grpc
    from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
    from google.cloud.logging_v2.services.logging_service_v2.transports import (
        LoggingServiceV2GrpcTransport,
    )

    job_id = job_name.rsplit("/", 1)[-1]
    channel = grpc.insecure_channel(server.grpc_address,
                                    options=[("grpc.max_receive_message_length", 512 << 20)])
    logging = LoggingServiceV2Client(transport=LoggingServiceV2GrpcTransport(channel=channel))
    largest = 0
    request = {"resource_names": ["projects/gcpjobs-bench"], "page_size": 100,
               "filter": f'resource.labels.job_id="{job_id}"'}
    for entry in logging.list_log_entries(request=request):
        largest = max(largest, len(entry.text_payload.encode()))
    channel.close()
    return largest


# ------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="rest,grpc,tails,restart,output")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a client waits")
    parser.add_argument("--tails", type=int, default=100)
    parser.add_argument("--unary-calls", type=int, default=200)
    parser.add_argument("--restart-sizes", default="100,1000")
    parser.add_argument("--output-mb", type=int, default=1024)
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from gcpjobs.emulator.process import EmulatorProcess

    cases = set(options.cases.split(","))
    lines: list[str] = []
    for kind, case in (("REST", rest_case), ("gRPC", grpc_case)):
        if kind.lower() not in cases:
            continue
        with tempfile.TemporaryDirectory() as data, EmulatorProcess(Path(data)) as server:
            row = case(server, options.connections, options.timeout)
        print(f"{kind}: {row}", flush=True)
        lines.append(f"| {kind}, {options.connections:,} connections at once | {row['ok']:,} | "
                     f"{row['refused']:,} | {row['error']:,} | {row['timeout']:,} | "
                     f"{row['p50']:.3f} / {row['p99']:.3f} s | {row['elapsed']:.1f} s |")
    if lines:
        print("\n| load | answered | refused/reset | errors | no answer in "
              f"{options.timeout:g} s | latency p50 / p99 | all done in |")
        print("|---|---|---|---|---|---|---|")
        print("\n".join(lines))
    if "tails" in cases:
        with tempfile.TemporaryDirectory() as data, EmulatorProcess(Path(data)) as server:
            rows = tails_case(server, options.tails, options.unary_calls)
        print("\n| tails opened | taken by the server | GetCustomJob p50 / p99 | "
              "calls timed out (5 s) | tails refused |")
        print("|---|---|---|---|---|")
        for row in rows:
            print(f"| {row['open_tails']} | {row.get('taken_tails', '-')} | "
                  f"{row['p50'] * 1000:.1f} / {row['p99'] * 1000:.1f} ms | "
                  f"{row['timed_out']} of {row['calls']} | {row.get('refused_tails', '-')} |")
    if "restart" in cases:
        rows = []
        for size in [int(s) for s in options.restart_sizes.split(",") if s]:
            row = restart_case(size)
            print(f"restart: {row}", flush=True)
            rows.append(row)
        print("\n| unfinished jobs at the crash | restart → ready | job processes left |")
        print("|---|---|---|")
        for row in rows:
            print(f"| {row['jobs']:,} | {row['ready_s']:.1f} s | {row['survivors']} |")
    if "output" in cases:
        row = output_case(options.output_mb)
        print(f"output: {row}", flush=True)
        print("\n| printed without a newline | emulator RSS growth (peak) | largest log entry | "
              "job time |")
        print("|---|---|---|---|")
        growth = f"{row['growth_mb']:.0f} MB" + (" (stopped at 2 GiB)" if row["stopped_early"] else "")
        print(f"| {row['mb']:,} MiB | {growth} | {row['largest_entry_kb']:,.0f} KB | "
              f"{row['seconds']:.1f} s |")


if __name__ == "__main__":
    main()
