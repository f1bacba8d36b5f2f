"""The typer options and arguments the job, logs, attach and step commands share, and their
checks. Light on purpose (typer only; the rest is imported on use): every command module
imports it at start-up.
"""

from __future__ import annotations

from typing import Annotated, Literal

import typer

Transport = Literal["grpc", "rest"]

ProjectOption = Annotated[
    str | None,
    typer.Option(
        "--project",
        help="Google Cloud project (default: the job file's, then the environment's; "
        "with none configured, the local emulator).",
    ),
]
RegionOption = Annotated[
    str | None, typer.Option("--region", help="Region, e.g. us-central1 (default: us-central1).")
]
TransportOption = Annotated[
    str, typer.Option("--transport", help="Wire protocol to the API: grpc or rest.")
]
KindOption = Annotated[
    str | None,
    typer.Option("--kind", help="vertex or cloud-run (default: told by the name)."),
]
EmulatorOption = Annotated[
    bool,
    typer.Option(
        "--emulator",
        help="Use the local emulator even if a Google project is configured "
        "(same as GCPJOBS_TARGET=emulator).",
    ),
]

NameArgument = Annotated[
    str,
    typer.Argument(
        help="A Vertex job id, display name or resource name; or a Cloud Run execution id or "
        "resource name."
    ),
]


def use_emulator(forced: bool) -> None:
    """`--emulator`: every client this process makes resolves to the emulator (the variable
    is what `resolve_target` reads, so remote steps and log readers follow it too)."""
    import os

    from gcpjobs.clients.target import TARGET_ENV, forced_target_kind

    if forced:
        os.environ[TARGET_ENV] = "emulator"
    forced_target_kind()  # a bad GCPJOBS_TARGET is one line before anything else happens


def parse_transport(value: str) -> Transport:
    if value not in ("grpc", "rest"):
        raise typer.BadParameter(f"{value!r} is not a transport; use grpc or rest", param_hint="--transport")
    return value  # type: ignore[return-value]


def parse_kind(value: str | None) -> str | None:
    """The registry's name of the kind `--kind` gives (None: not given)."""
    from gcpjobs.kinds import UnknownKindError, kind_entry, known_kinds

    if value is None:
        return None
    try:
        return kind_entry(value).name
    except UnknownKindError:
        raise typer.BadParameter(f"{value!r} is not a kind; use {' or '.join(known_kinds())}",
                                 param_hint="--kind") from None
