"""What every async job client offers, whichever service it speaks to: `JobClient`.

The CLI and the integrations drive Vertex custom jobs and Cloud Run executions through this
one shape; each client takes its own spec type in `create`. The shape is the abstract base
`clients.base.AsyncJobClientBase` itself (not a Protocol repeating it), named here so that an
import of this module costs nothing: the base and google-api-core load only when `JobClient`
is read at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from gcpjobs.clients.base import AsyncJobClientBase

    JobClient: TypeAlias = AsyncJobClientBase[Any]


def __getattr__(name: str) -> Any:
    if name == "JobClient":
        from gcpjobs.clients.base import AsyncJobClientBase

        return AsyncJobClientBase
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["JobClient"]
