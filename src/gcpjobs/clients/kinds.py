"""Which client serves a kind of job, and which kind a job's name says it is.

The CLI, remote steps and integrations pick a client from a kind ("vertex" or "cloud-run")
or from a name a user typed. Both answers come from the kind registry (`gcpjobs.kinds`), so
a clients' module is imported only for the kind used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gcpjobs import kinds as registry

if TYPE_CHECKING:
    from gcpjobs.clients.protocol import JobClient

# The kinds gcpjobs serves itself: commands that cover "every kind" by default go over these.
KINDS = registry.builtin_kinds()


def client_for_kind(kind: str, **options: Any) -> JobClient:
    """A new async client for `kind`, with the clients' keyword options (project, region,
    transport, credentials ...); UnknownKindError (one line, listing the kinds) for another."""
    client: JobClient = registry.kind_entry(kind).load("client_class")(**options)
    return client


def kind_of_name(name: str) -> str | None:
    """The kind a job name says it is: Vertex custom jobs have numeric ids, Cloud Run
    executions live under `/executions/`; None for a bare name that could be either."""
    return registry.kind_of_name(name)
