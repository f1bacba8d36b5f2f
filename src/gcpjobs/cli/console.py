"""The two rich consoles the CLI writes to: results on stdout, progress and errors on stderr."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console

from gcpjobs.kinds import UnknownKindError, builtin_kinds, kind_entry

if TYPE_CHECKING:
    from gcpjobs.clients.target import Target

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def service_name(kind: str | None) -> str:
    """The API a kind of job goes to, as users know it: the kind registry's label ("Vertex
    AI"). For None (a command over every kind) the built-in kinds' labels, which are the kinds
    such commands go over ("Vertex AI and Cloud Run"); the same for a kind no entry serves,
    since the command will refuse that kind itself."""
    if kind:
        try:
            return kind_entry(kind).label
        except UnknownKindError:
            pass
    labels = [kind_entry(name).label for name in builtin_kinds()]
    return " and ".join([", ".join(labels[:-1]), labels[-1]] if len(labels) > 1 else labels)


def announce_target(target: Target, kind: str | None, region: str) -> None:
    """Say where a command's requests go, before it sends any (on stderr, so that `--json`
    and other stdout stays clean)."""
    err_console.print(f"target: {target.destination(service_name(kind), region)}",
                      highlight=False, soft_wrap=True, markup=False)
