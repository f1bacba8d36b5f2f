"""Runs a job's replicas as local process trees, keeps their output, and kills them completely.

This module knows processes, not Vertex or Cloud Run: the caller (vertex/runner.py,
cloudrun/runner.py) decides the command, environment and working directory of each replica.
Each replica runs in its own session (so its process group is its own) from a small environment
of its own (JobEnvironment, not the emulator's), its stdout and stderr are kept as JSONL
entries (a line each, a line over Cloud Logging's 256 KB entry limit cut into pieces), and
stopping it kills the whole tree: the process group plus every descendant psutil can see
(children that started their own session included), SIGTERM first, SIGKILL after a grace
period. After a crash of the emulator, `stop_leftovers` finds what it left running by the
marker every job process carries in its environment, and by the pids it wrote down.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

from gcpjobs.emulator.clock import rfc3339_now
from gcpjobs.emulator.names import path_under

SERVICE_LOG = "service"  # name of the job-level log the emulator itself writes
_REPLICAS_FILE = "replicas.json"
_POLL_SECONDS = 0.02


def job_dir(data_dir: Path, job_id: str) -> Path:
    # names.path_under: ValueError for an id that could lead outside DATA_DIR/jobs.
    return path_under(data_dir / "jobs", job_id)


def logs_dir(data_dir: Path, job_id: str) -> Path:
    return job_dir(data_dir, job_id) / "logs"


# --------------------------------------------------------------------------------------- logs


@dataclass(frozen=True)
class LogEntry:
    time: str  # RFC 3339, UTC, microseconds
    replica: str  # "workerpool0-0", or "service" for the emulator's own lines
    stream: str  # "stdout" | "stderr" | "service"
    text: str


class JsonlLog:
    """An append-only JSONL file, one flushed line per entry; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, stream: str, text: str) -> None:
        line = json.dumps({"time": rfc3339_now(), "stream": stream, "text": text}) + "\n"
        with self._lock:
            if not self._file.closed:
                self._file.write(line)
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def write_notes(path: Path, lines: Iterable[str]) -> None:
    """Append the emulator's own lines (stream "service") to a JSONL log."""
    log = JsonlLog(path)
    try:
        for text in lines:
            log.write(SERVICE_LOG, text)
    finally:
        log.close()


def write_service_log(data_dir: Path, job_id: str, lines: Iterable[str]) -> None:
    write_notes(logs_dir(data_dir, job_id) / f"{SERVICE_LOG}.jsonl", lines)


def read_replica_logs(data_dir: Path, job_id: str, replica: str | None = None) -> Iterator[LogEntry]:
    """Every kept line of a job (or of one replica), oldest first.

    Lines of different replicas are merged by time; lines of one replica keep their order.
    """
    directory = logs_dir(data_dir, job_id)
    if not directory.is_dir():
        return iter(())
    entries: list[LogEntry] = []
    for path in sorted(directory.glob("*.jsonl")):
        if replica is not None and path.stem != replica:
            continue
        with path.open(encoding="utf-8") as handle:
            for raw in handle:
                try:
                    item = json.loads(raw)
                except ValueError:  # a line cut short by a crash
                    continue
                entries.append(LogEntry(item["time"], path.stem, item["stream"], item["text"]))
    entries.sort(key=lambda entry: entry.time)  # stable: per-file order is kept on equal times
    return iter(entries)


# Cloud Logging refuses an entry over 256 KB ("LogEntry ... size limit 256 KB"): output is cut
# into entries of at most this many bytes as it streams, so a job printing without newlines
# (progress bars, binary dumps) never makes one entry, or one buffer, of its whole output.
MAX_ENTRY_BYTES = 256 * 1024
_READ_BYTES = 64 * 1024


def _utf8_cut(data: bytes, limit: int) -> int:
    """Where to cut `data` at most `limit` bytes in without splitting a UTF-8 character (a
    continuation byte never starts a piece); `limit` if no character boundary is near."""
    cut = limit
    while cut > limit - 4 and cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut if cut > limit - 4 and cut > 0 else limit


def split_output(pending: bytes, *, final: bool) -> tuple[list[bytes], bytes]:
    """The entries complete in `pending` and what is left over for the next read.

    A newline ends an entry (it and a carriage return before it are not part of the text);
    a run of more than MAX_ENTRY_BYTES without one is cut into pieces of at most
    MAX_ENTRY_BYTES, never inside a UTF-8 character. A carriage return alone does not end an
    entry (a progress bar redrawing its line stays whole until its piece is full). So every
    byte printed is in an entry, in order, except the line endings that ended one.
    `final`: the stream has ended, the rest is an entry too.
    """
    entries: list[bytes] = []
    start = 0
    while True:
        # Far enough for a full piece and the "\r\n" after it: a line of exactly the limit is
        # one entry, not the line and then an empty one.
        newline = pending.find(b"\n", start, start + MAX_ENTRY_BYTES + 2)
        if newline >= 0:
            end = newline - 1 if newline > start and pending[newline - 1] == 0x0D else newline
            if end - start <= MAX_ENTRY_BYTES:
                entries.append(pending[start:end])
                start = newline + 1
                continue
        waiting = len(pending) - start
        if waiting <= MAX_ENTRY_BYTES:
            break
        if waiting == MAX_ENTRY_BYTES + 1 and pending[-1] == 0x0D and not final:
            break  # a full piece and a carriage return: the next read says if "\n" follows
        cut = start + _utf8_cut(pending[start:start + MAX_ENTRY_BYTES + 1], MAX_ENTRY_BYTES)
        entries.append(pending[start:cut])
        start = cut
    rest = pending[start:]
    if final and rest:
        entries.append(rest)
        rest = b""
    return entries, rest


def _pump(source: IO[bytes], log: JsonlLog, stream: str) -> None:
    """Copy a replica's stream into its log, entry by entry, holding at most one entry's worth
    (plus one read) in memory whatever the job prints."""
    pending = b""
    with source:
        while True:
            # read1: what the pipe has now (up to _READ_BYTES), not a wait for a full buffer.
            chunk = source.read1(_READ_BYTES) if hasattr(source, "read1") else source.read(_READ_BYTES)
            entries, pending = split_output(pending + chunk, final=not chunk)
            for raw in entries:
                log.write(stream, raw.decode("utf-8", errors="replace"))
            if not chunk:
                return


# ------------------------------------------------------------------------------ process trees


def _gone(process: psutil.Process) -> bool:
    # A zombie has finished; where no init reaps orphans (some containers) it stays one.
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@dataclass(frozen=True)
class _ProcessTable:
    """One reading of the host's processes: by pid, and each pid's children and group."""

    processes: dict[int, psutil.Process]
    children: dict[int, list[int]]
    groups: dict[int, list[int]]

    @classmethod
    def read(cls) -> _ProcessTable:
        processes: dict[int, psutil.Process] = {}
        children: dict[int, list[int]] = {}
        groups: dict[int, list[int]] = {}
        for process in psutil.process_iter(["ppid"]):
            try:
                group = os.getpgid(process.pid)
            except (ProcessLookupError, PermissionError):
                continue
            processes[process.pid] = process
            children.setdefault(process.info["ppid"], []).append(process.pid)
            groups.setdefault(group, []).append(process.pid)
        return cls(processes, children, groups)

    def tree(self, root: psutil.Process | None, pgid: int) -> set[psutil.Process]:
        """The root, the process group `pgid`, and every descendant of either (not this
        process)."""
        return self.trees([] if root is None else [root], [pgid])

    def trees(self, roots: Iterable[psutil.Process], pgids: Iterable[int]) -> set[psutil.Process]:
        """The roots, the process groups `pgids`, and every descendant of any (not this
        process)."""
        pending = [pid for pgid in pgids for pid in self.groups.get(pgid, [])]
        pending.extend(root.pid for root in roots if self.processes.get(root.pid) == root)
        found: set[int] = set()
        while pending:
            pid = pending.pop()
            if pid not in found:
                found.add(pid)
                pending.extend(self.children.get(pid, []))
        found.discard(os.getpid())
        return {self.processes[pid] for pid in found}


class _SharedReads:
    """Readings of the process table shared by the threads that ask at the same time.

    Killing a tree needs the whole table (descendants that left the group are found only
    through their parents), and a graceful stop kills every running job's tree at once: a
    reading each would cost (jobs x processes) and a thousand jobs took minutes. A caller
    gets a reading begun after it asked (so it sees every process forked before), and every
    caller waiting for one shares the next.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._reading = False
        self._done = 0  # readings finished
        self._latest: _ProcessTable | None = None
        self._error: BaseException | None = None

    def fresh(self) -> _ProcessTable:
        with self._changed:
            # One under way began before this call: not fresh enough, wait for the one after.
            wanted = self._done + (2 if self._reading else 1)
            while self._done < wanted:
                if self._reading:
                    self._changed.wait()
                    continue
                self._reading = True
                self._changed.release()
                table: _ProcessTable | None = None
                error: BaseException | None = None
                try:
                    table = _ProcessTable.read()
                except Exception as failure:  # psutil errors: every waiter gets them
                    error = failure
                finally:
                    self._changed.acquire()
                    self._reading = False
                    self._changed.notify_all()
                # Waiters woken in `finally` run once this thread waits or returns.
                self._done += 1
                self._latest, self._error = table, error
            if self._error is not None:
                raise self._error
            assert self._latest is not None
            return self._latest


_process_tables = _SharedReads()


def _tree(root: psutil.Process | None, pgid: int) -> set[psutil.Process]:
    """The root, its process group, and every descendant of either, as they are now."""
    return _process_tables.fresh().tree(root, pgid)


def _signal_all(processes: Iterable[psutil.Process], pgids: Iterable[int], signum: int) -> None:
    for pgid in pgids:
        if pgid > 1:  # 0 would be the emulator's own group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signum)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(signum)


def _wait_gone(processes: Iterable[psutil.Process], deadline: float) -> set[psutil.Process]:
    """Wait until every process is gone or `deadline` (time.monotonic()) passes; those left.

    Not `psutil.wait_procs`: its `wait` reaps a child of this process (a replica's root is
    one, and the thread that waits for the replica would then lose its exit status), it waits
    on for a zombie that no init reaps, where `_gone` takes a zombie as finished, and it gives
    each process 1/N of a second per pass, where this loop looks at all of them every 20 ms.
    """
    alive = {p for p in processes if not _gone(p)}
    while alive and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
        alive = {p for p in alive if not _gone(p)}
    return alive


def signal_text(number: int) -> str:
    """`9` → "signal 9 (SIGKILL)": how exit messages name the signal that ended a process."""
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    return f"signal {number} ({name})"


def kill_process_tree(root_pid: int | None, *, pgid: int, grace: float) -> None:
    """SIGTERM the tree, wait up to `grace` seconds, SIGKILL whatever is left.

    `root_pid` is the replica's own process, or None when it has already been reaped (its pid
    may belong to someone else by now); the group `pgid` (the replica started its own session,
    so it is the replica's pid) still holds whatever it left behind. This never reaps a child:
    the thread that waits for the replica does that.
    """
    root: psutil.Process | None = None
    if root_pid is not None:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(root_pid)
    members = _tree(root, pgid)
    _signal_all(members, [pgid], signal.SIGTERM)
    _wait_gone(members, time.monotonic() + grace)
    # Look again: something may have forked while we waited.
    members = {p for p in _tree(root, pgid) if not _gone(p)}
    if members:
        _signal_all(members, [pgid], signal.SIGKILL)
        _wait_gone(members, time.monotonic() + 5.0)


def crash_process_tree(root_pid: int, *, pgid: int) -> None:
    """SIGKILL the whole tree at once, with no SIGTERM first: what a machine that died, or an
    out-of-memory kill, does to a replica (the `/_emulator/crash` fault)."""
    root: psutil.Process | None = None
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(root_pid)
    members = _tree(root, pgid)
    _signal_all(members, [pgid], signal.SIGKILL)
    _wait_gone(members, time.monotonic() + 5.0)


# ----------------------------------------------------------------------------------- replicas


# The marker every job process carries (children inherit it): how the next start finds what a
# crashed emulator left running, even a process whose pid it never got to record.
INSTANCE_ENV = "GCPJOBS_EMULATOR_INSTANCE"
EMULATOR_HOST_ENV = "GCPJOBS_EMULATOR_HOST"  # the same name the clients read (clients/target.py)
EMULATOR_REST_HOST_ENV = "GCPJOBS_EMULATOR_REST_HOST"
# Copied from the emulator's environment when set: what a program needs to find its user's
# files and speak its language, nothing that could hold a credential.
_HOST_VARIABLES = ("HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ")
_DEFAULT_LOCALE = "C.UTF-8"


def instance_marker(data_dir: Path) -> str:
    """The value of INSTANCE_ENV for the emulator of `data_dir` (one per data dir: the lock
    file lets one emulator at a time use it, so at start every process carrying it is a
    leftover)."""
    resolved = str(data_dir.expanduser().resolve())
    return hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:24]


@dataclass
class JobEnvironment:
    """What every job process starts from, instead of the emulator's own environment (the
    user's shell, with whatever tokens it holds): docs/emulator.md, Job environment.

    * PATH: this Python's bin directory first (a job running `python` gets the emulator's
      Python and its packages), then the emulator's PATH;
    * HOME, USER, LOGNAME, the locale (LANG, LANGUAGE, LC_*; C.UTF-8 when none is set), TZ;
    * TMPDIR: a `tmp` directory inside the process's working directory;
    * PYTHONUNBUFFERED=1 (lines reach the log as they are printed);
    * GCPJOBS_EMULATOR_HOST / GCPJOBS_EMULATOR_REST_HOST: this emulator, so that code in a job
      can call the emulated APIs; GCPJOBS_EMULATOR_INSTANCE: the crash-recovery marker;
    * the emulator's variables named by `passed` (`--pass-env NAME`, shell-style patterns
      such as `AWS_*` allowed).

    The caller adds what the service sets (CLOUD_ML_JOB_ID, CLOUD_RUN_TASK_INDEX, ...) and the
    job's own env on top. The addresses are set once the servers listen.
    """

    data_dir: Path
    passed: Sequence[str] = ()
    emulator_host: str = ""
    emulator_rest_host: str = ""

    def for_process(self, workdir: Path) -> dict[str, str]:
        host = os.environ
        env = {name: host[name] for name in _HOST_VARIABLES if host.get(name)}
        env.update({name: value for name, value in host.items() if name.startswith("LC_")})
        if not any(name in env for name in ("LANG", "LC_ALL", "LC_CTYPE")):
            env["LANG"] = _DEFAULT_LOCALE
        env["PATH"] = os.pathsep.join(
            part for part in (os.path.dirname(sys.executable), host.get("PATH", os.defpath)) if part
        )
        temporary = workdir / "tmp"
        temporary.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(temporary)
        env["PYTHONUNBUFFERED"] = "1"
        for pattern in self.passed:
            env.update({name: value for name, value in host.items() if fnmatch.fnmatchcase(name, pattern)})
        if self.emulator_host:
            env[EMULATOR_HOST_ENV] = self.emulator_host
        if self.emulator_rest_host:
            env[EMULATOR_REST_HOST_ENV] = self.emulator_rest_host
        env[INSTANCE_ENV] = instance_marker(self.data_dir)
        return env


def command_line(
    replica: str, command: Sequence[str], args: Sequence[str], image: str, field: str
) -> tuple[list[str], str]:
    """What a container runs on this host (`command + args`), and a note saying so for the log.

    `field` names the request field to fix when there is nothing to run
    ("container_spec.command", "containers[0].command").
    """
    if command:
        return [*command, *args], (
            f"{replica}: runs {command[0]!r} on this host; image {image} was recorded, not pulled."
        )
    if args:
        # No command means "the image's entrypoint", which the emulator does not have: the
        # arguments are the closest thing to a command line it can run.
        return [*args], (
            f"{replica}: has no command, so the emulator runs its args {args[0]!r} ... "
            f"as the command line; image {image} was recorded, not pulled."
        )
    raise LaunchError(
        replica,
        f"The replica {replica} has no command: the gcpjobs emulator cannot run the image's "
        f"entrypoint; set {field}.",
    )


@dataclass(frozen=True)
class ReplicaLaunch:
    """Everything needed to start one replica."""

    name: str  # "workerpool1-0"
    argv: Sequence[str]
    env: Mapping[str, str]
    workdir: Path
    log_path: Path


class LaunchError(Exception):
    """A replica could not be started (program missing, not executable)."""

    def __init__(self, replica: str, message: str) -> None:
        super().__init__(message)
        self.replica = replica
        self.message = message


@dataclass(frozen=True)
class ReplicaExit:
    replica: str
    returncode: int  # negative: killed by that signal (subprocess convention)
    at: float  # time.monotonic()


class ReplicaProcess:
    """One started process tree: its output pumped into a JSONL log, its exit reported on the
    `on_exit` condition (which the caller also waits on), its whole tree killable."""

    def __init__(self, launch: ReplicaLaunch, on_exit: threading.Condition) -> None:
        self.launch = launch
        self._on_exit = on_exit
        self._log = JsonlLog(launch.log_path)
        self._threads: list[threading.Thread] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.exit: ReplicaExit | None = None
        self.created: float = 0.0

    def start(self) -> None:
        self.launch.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.process = subprocess.Popen(
                list(self.launch.argv),
                cwd=self.launch.workdir,
                env=dict(self.launch.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                close_fds=True,
                # The emulator keeps its own files private (umask 077); what a job writes is
                # the job's, made as a login shell would make it.
                umask=0o022,
            )
        except FileNotFoundError:
            self._log.close()
            raise LaunchError(
                self.launch.name,
                f"The replica {self.launch.name} could not start: command "
                f"{self.launch.argv[0]!r} was not found on this host (the emulator runs the "
                "container's command locally instead of the image; install it or fix the command).",
            ) from None
        except OSError as error:  # not executable, not a program (no #! line), ...
            self._log.close()
            raise LaunchError(
                self.launch.name,
                f"The replica {self.launch.name} could not start: command "
                f"{self.launch.argv[0]!r} failed on this host: {error.strerror or error}.",
            ) from None
        with contextlib.suppress(psutil.Error):
            self.created = psutil.Process(self.process.pid).create_time()
        assert self.process.stdout is not None and self.process.stderr is not None
        for source, stream in ((self.process.stdout, "stdout"), (self.process.stderr, "stderr")):
            thread = threading.Thread(
                target=_pump,
                args=(source, self._log, stream),
                name=f"log-{self.launch.name}-{stream}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        waiter = threading.Thread(target=self._wait, name=f"wait-{self.launch.name}", daemon=True)
        waiter.start()
        self._threads.append(waiter)

    def _wait(self) -> None:
        assert self.process is not None
        returncode = self.process.wait()
        with self._on_exit:
            self.exit = ReplicaExit(self.launch.name, returncode, time.monotonic())
            self._on_exit.notify_all()

    def kill(self, grace: float) -> None:
        if self.process is None:
            return
        pid = self.process.pid
        with self._on_exit:
            reaped = self.exit is not None
        kill_process_tree(None if reaped else pid, pgid=pid, grace=grace)

    def crash(self) -> bool:
        """SIGKILL the running tree (see `crash_process_tree`); False if it has already exited."""
        if self.process is None:
            return False
        with self._on_exit:
            if self.exit is not None:
                return False
        crash_process_tree(self.process.pid, pgid=self.process.pid)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """After the tree is gone: let the log pumps drain, then close the log."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._log.close()


def stop_all(replicas: Sequence[ReplicaProcess], grace: float) -> None:
    """Kill every replica's tree in parallel (the grace period is paid once), then close their
    logs once the output has drained."""
    killers = [
        threading.Thread(target=replica.kill, args=(grace,), daemon=True) for replica in replicas
    ]
    for thread in killers:
        thread.start()
    for thread in killers:
        thread.join()
    for replica in replicas:
        replica.close()


def record_pids(job_path: Path, running: Sequence[ReplicaProcess]) -> None:
    """Write which processes are running for this job, read back by `kill_leftovers` after a
    crash of the emulator to stop what it left behind."""
    records = [
        {"name": r.launch.name, "pid": r.process.pid, "create_time": r.created}
        for r in running
        if r.process is not None
    ]
    job_path.mkdir(parents=True, exist_ok=True)
    temporary = job_path / (_REPLICAS_FILE + ".tmp")
    temporary.write_text(json.dumps(records), encoding="utf-8")
    temporary.replace(job_path / _REPLICAS_FILE)


def forget_pids(job_path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (job_path / _REPLICAS_FILE).unlink()


def _recorded_roots(job_paths: Iterable[Path]) -> tuple[list[psutil.Process], list[int]]:
    """The processes the `replicas.json` of these jobs name (those still the same process) and
    their groups; the files are read, not removed."""
    roots: list[psutil.Process] = []
    groups: list[int] = []
    for job_path in job_paths:
        try:
            records = json.loads((job_path / _REPLICAS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for record in records:
            pid = int(record["pid"])
            # The group outlives its leader; Linux does not hand out a pid that is still a live
            # group's id, so whatever is in group `pid` was started by this replica.
            groups.append(pid)
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                # The pid may have been reused since: only a process started then is ours.
                if abs(process.create_time() - float(record["create_time"])) <= 0.01:
                    roots.append(process)
    return roots, groups


def _marked(marker: str) -> list[psutil.Process]:
    """This user's processes whose environment carries INSTANCE_ENV=`marker` (one pass over
    the table; other users' environments are not readable, and not ours anyway)."""
    uid = os.getuid()
    found: list[psutil.Process] = []
    for process in psutil.process_iter(["uids"]):
        uids = process.info["uids"]
        if uids is None or uids.real != uid or process.pid == os.getpid():
            continue
        try:
            # /proc/PID/environ is the environment the process was started with: a job that
            # removes the variable from its own os.environ is still found.
            if process.environ().get(INSTANCE_ENV) == marker:
                found.append(process)
        except psutil.Error:
            continue
    return found


def stop_leftovers(data_dir: Path, job_paths: Iterable[Path], grace: float) -> int:
    """Stop every process a crashed emulator of `data_dir` left running; returns how many.

    Two ways to find them, because either alone misses some:

    * the marker: every job process starts with INSTANCE_ENV set to this data dir's marker
      and its children inherit it, so a replica is found even when the emulator died between
      starting it and writing its pid down (3 of 144 replicas survived a crash that way), and
      so is a grandchild that started its own session;
    * the record: the pids in each unfinished job's `replicas.json` (`job_paths`), their
      process groups and descendants, for a process that was started with a cleared
      environment (`env -i`) after its pid was written.

    All of them are stopped together, SIGTERM, one `grace` period, SIGKILL: a thousand
    unfinished jobs cost two readings of the process table and one grace period, not one each
    (a restart with 300 took 36 s). Meant for start-up, when the data dir's lock says no other
    emulator runs its jobs.
    """
    paths = list(job_paths)
    marker = instance_marker(data_dir)
    roots, groups = _recorded_roots(paths)
    roots.extend(_marked(marker))
    table = _process_tables.fresh()
    members = table.trees(roots, groups)
    stopped = {process.pid for process in members}
    if members:
        _signal_all(members, groups, signal.SIGTERM)
        _wait_gone(members, time.monotonic() + grace)
        # Look again: something may have forked while we waited (children carry the marker).
        roots.extend(_marked(marker))
        members = {p for p in _process_tables.fresh().trees(roots, groups) if not _gone(p)}
        stopped.update(process.pid for process in members)
        if members:
            _signal_all(members, groups, signal.SIGKILL)
            _wait_gone(members, time.monotonic() + 5.0)
    for job_path in paths:
        with contextlib.suppress(FileNotFoundError):
            (job_path / _REPLICAS_FILE).unlink()
    return len(stopped)
