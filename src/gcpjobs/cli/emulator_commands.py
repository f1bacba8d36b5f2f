"""`gcpjobs emulator start|stop|status`: thin wrappers over `python -m gcpjobs.emulator`.

The emulator has its own argparse entry point (it starts as a subprocess in embedded mode and
must not pay for typer); these commands forward to it so that both spell the flags the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Run the local emulator of Vertex AI custom jobs, Cloud Run jobs, Cloud "
                  "Logging and Secret Manager.", no_args_is_help=True)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where job records and outputs live (default: $GCPJOBS_DATA_DIR/emulator or "
        "~/.local/share/gcpjobs/emulator).",
    ),
]


def _forward(argv: list[str]) -> None:
    from gcpjobs.emulator.__main__ import main as emulator_main

    code = emulator_main(argv, program="gcpjobs emulator")
    if code:
        raise typer.Exit(code)


@app.command()
def start(
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless told).")] = "127.0.0.1",
    grpc_port: Annotated[int, typer.Option(help="gRPC port; 0 picks a free one.")] = 8470,
    rest_port: Annotated[int, typer.Option(help="REST port; 0 picks a free one.")] = 8471,
    data_dir: DataDir = None,
    # Text, not float: `hold` is a value too. The emulator's own parser checks them.
    queued_seconds: Annotated[
        str | None,
        typer.Option(help="Seconds a new job stays QUEUED, or 'hold' until advanced (default 0)."),
    ] = None,
    pending_seconds: Annotated[
        str | None,
        typer.Option(help="Seconds a job stays PENDING, or 'hold' until advanced (default 0)."),
    ] = None,
    cancel_grace_seconds: Annotated[
        float | None,
        typer.Option(help="Seconds between SIGTERM and SIGKILL when a job is cancelled (default 5)."),
    ] = None,
    allow_remote: Annotated[
        bool,
        typer.Option(help="Allow a --host that is not loopback: whoever reaches the ports can run "
                     "commands as you."),
    ] = False,
    detach: Annotated[bool, typer.Option(help="Run in the background and return.")] = False,
) -> None:
    """Start the emulator (foreground unless --detach)."""
    argv = ["start", "--host", host, "--grpc-port", str(grpc_port), "--rest-port", str(rest_port)]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    if queued_seconds is not None:
        argv += ["--queued-seconds", queued_seconds]
    if pending_seconds is not None:
        argv += ["--pending-seconds", pending_seconds]
    if cancel_grace_seconds is not None:
        argv += ["--cancel-grace-seconds", str(cancel_grace_seconds)]
    if allow_remote:
        argv.append("--allow-remote")
    if detach:
        argv.append("--detach")
    _forward(argv)


@app.command()
def stop(data_dir: DataDir = None) -> None:
    """Stop the background emulator."""
    _forward(["stop", *(["--data-dir", str(data_dir)] if data_dir else [])])


@app.command()
def status(data_dir: DataDir = None) -> None:
    """Say whether a background emulator is running, and where."""
    _forward(["status", *(["--data-dir", str(data_dir)] if data_dir else [])])


from gcpjobs.cli.emulator_env import register as _register_env  # noqa: E402  (after the commands: help order)

_register_env(app)
