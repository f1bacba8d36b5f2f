"""`python -m gcpjobs.emulator start|stop|status` (argparse: starts fast, no typer).

    start [--host H] [--grpc-port N] [--rest-port N] [--data-dir DIR]
          [--queued-seconds S|hold] [--pending-seconds S|hold] [--cancel-grace-seconds S]
          [--pass-env NAME ...] [--detach]
    stop [--data-dir DIR]
    status [--data-dir DIR]

`hold` (or a negative number) keeps new jobs in that state until `POST /_emulator/advance`.
The typer CLI (`gcpjobs emulator ...`) forwards to `main()`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from gcpjobs.emulator.config import (
    DEFAULT_GRPC_PORT,
    DEFAULT_HOST,
    DEFAULT_HTTP_TIMEOUT_SECONDS,
    DEFAULT_REST_PORT,
    MAX_TIMING_SECONDS,
    EmulatorConfig,
    default_data_dir,
)
from gcpjobs.errors import GcpJobsError

PROGRAM = "python -m gcpjobs.emulator"


class _OneLineParser(argparse.ArgumentParser):
    """Bad flags: one line and exit 2, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _seconds(text: str) -> float | None:
    if text.strip().lower() in ("hold", "none", "null"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds or 'hold', got {text!r}") from None
    if value != value or value in (float("inf"),):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds, got {text!r}")
    if value > MAX_TIMING_SECONDS:
        raise argparse.ArgumentTypeError(
            f"expected at most {MAX_TIMING_SECONDS:g} seconds (one day), got {text!r}")
    return None if value < 0 else value


def _grace(text: str) -> float:
    value = _seconds(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}")
    return value


def _timeout(text: str) -> float:
    value = _seconds(text)
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535 (0 picks a free one), got {value}")
    return value


def _parser(program: str) -> argparse.ArgumentParser:
    parser = _OneLineParser(prog=program, description="The gcpjobs emulator of Vertex AI custom jobs and Cloud Run jobs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{start,stop,status}")

    start = commands.add_parser("start", help="run the emulator (foreground unless --detach)")
    start.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default 127.0.0.1)")
    start.add_argument("--grpc-port", type=_port, default=DEFAULT_GRPC_PORT, help="0 picks a free port")
    start.add_argument("--rest-port", type=_port, default=DEFAULT_REST_PORT, help="0 picks a free port")
    start.add_argument("--data-dir", type=Path, default=None, help="where records and outputs live")
    start.add_argument("--queued-seconds", type=_seconds, default=0.0,
                       help="seconds a job stays QUEUED; 'hold' until advanced")
    start.add_argument("--pending-seconds", type=_seconds, default=0.0,
                       help="seconds a job stays PENDING; 'hold' until advanced")
    start.add_argument("--cancel-grace-seconds", type=_grace, default=5.0,
                       help="SIGTERM→SIGKILL grace when stopping a job's processes")
    start.add_argument("--pass-env", action="append", default=[], metavar="NAME",
                       help="also give jobs this variable of the emulator's environment "
                            "(repeatable; shell patterns such as 'AWS_*' allowed)")
    start.add_argument("--http-timeout", type=_timeout, default=DEFAULT_HTTP_TIMEOUT_SECONDS,
                       help="seconds before the REST port closes an idle connection, or one "
                       "whose request has not all arrived (default 60)")
    start.add_argument("--allow-remote", action="store_true",
                       help="allow a --host that is not loopback: whoever reaches the ports "
                       "can run commands as this user")
    start.add_argument("--detach", action="store_true", help="run in the background and return")

    for name, text in (("stop", "stop the background emulator"),
                       ("status", "say whether an emulator runs, and where")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--data-dir", type=Path, default=None)
    return parser


def _data_dir(value: Path | None) -> Path:
    return (value if value is not None else default_data_dir()).expanduser().resolve()


def _raise_open_file_limit(wanted: int = 8192) -> None:
    """Room for a thousand connections at once (macOS starts processes with 256 files)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ImportError, ValueError, OSError):
        pass  # the limit stays; connections past it wait in the listen backlog


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "this user"


def main(argv: Sequence[str] | None = None, program: str = PROGRAM) -> int:
    """`program` is how errors name the command (`gcpjobs emulator` from the CLI)."""
    arguments = _parser(program).parse_args(argv)
    data_dir = _data_dir(arguments.data_dir)
    try:
        if arguments.command == "start":
            from gcpjobs.emulator.transports.front import is_loopback

            if not is_loopback(arguments.host) and not arguments.allow_remote:
                print(f"{program}: refusing to listen on {arguments.host}: it is not a loopback "
                      "address, and whoever reaches the ports can run any command as this user; "
                      "pass --allow-remote to do it anyway", file=sys.stderr)
                return 2
            # Before anything is created: records, logs, secrets and the token are private.
            os.umask(0o077)
            _raise_open_file_limit()
            config = EmulatorConfig(
                host=arguments.host,
                grpc_port=arguments.grpc_port,
                rest_port=arguments.rest_port,
                data_dir=data_dir,
                queued_seconds=arguments.queued_seconds,
                pending_seconds=arguments.pending_seconds,
                cancel_grace_seconds=arguments.cancel_grace_seconds,
                pass_env=tuple(arguments.pass_env),
                allow_remote=arguments.allow_remote,
                http_timeout_seconds=arguments.http_timeout,
            )
            if arguments.allow_remote and not is_loopback(arguments.host):
                print(f"{program}: WARNING: listening on {arguments.host} (--allow-remote): "
                      "whoever can reach the emulator's ports can run any command as "
                      f"{_user()} on this machine", file=sys.stderr, flush=True)
            if arguments.detach:
                from gcpjobs.emulator.control import describe, start_detached

                print(describe(start_detached(config)), flush=True)
                return 0
            from gcpjobs.emulator.server import serve

            serve(config)
            return 0
        from gcpjobs.emulator.control import describe, running_emulator, stop_detached

        if arguments.command == "stop":
            if stop_detached(data_dir):
                print(f"gcpjobs emulator stopped (data_dir={data_dir})")
            else:
                print(f"no gcpjobs emulator running for data_dir={data_dir}")
            return 0
        info = running_emulator(data_dir)
        if info is None:
            print(f"no gcpjobs emulator running for data_dir={data_dir}")
            return 1
        print(describe(info))
        return 0
    except GcpJobsError as error:
        print(f"{program}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
