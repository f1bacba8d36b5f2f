"""Which client serves a kind of job, and which kind a job's name says it is.

The CLI, remote steps and integrations pick a client from a kind ("vertex" or "cloud-run")
or from a name a user typed; the clients' modules are imported only for the kind used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gcpjobs.errors import GcpJobsError

if TYPE_CHECKING:
    from gcpjobs.clients.protocol import JobClient

KINDS = ("vertex", "cloud-run")


def client_for_kind(kind: str, **options: Any) -> JobClient:
    """A new async client for `kind`, with the clients' keyword options (project, region,
    transport, credentials ...)."""
    if kind == "cloud-run":
        from gcpjobs.clients.cloudrun import AsyncCloudRunClient

        return AsyncCloudRunClient(**options)
    if kind == "vertex":
        from gcpjobs.clients.vertex import AsyncVertexClient

        return AsyncVertexClient(**options)
    raise GcpJobsError(f"unknown kind {kind!r}; use one of: {', '.join(KINDS)}")


def kind_of_name(name: str) -> str | None:
    """The kind a job name says it is: Vertex custom jobs have numeric ids, Cloud Run
    executions live under `/executions/`; None for a bare name that could be either."""
    text = name.strip()
    if "/customJobs" in text or text.isdigit():
        return "vertex"
    if "/executions/" in text:
        return "cloud-run"
    return None
