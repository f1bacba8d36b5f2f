"""The two rich consoles the CLI writes to: results on stdout, progress and errors on stderr."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from gcpjobs.clients.target import Target

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


SERVICE_NAMES = {"vertex": "Vertex AI", "cloud-run": "Cloud Run"}


def service_name(kind: str | None) -> str:
    """The API a kind of job goes to, as users know it ("Vertex AI"); both for None."""
    return SERVICE_NAMES.get(kind or "", "Vertex AI and Cloud Run")


def announce_target(target: Target, kind: str | None, region: str) -> None:
    """Say where a command's requests go, before it sends any (on stderr, so that `--json`
    and other stdout stays clean)."""
    err_console.print(f"target: {target.destination(service_name(kind), region)}",
                      highlight=False, soft_wrap=True, markup=False)
