"""Sync REST GAPIC clients seen through their async twins' shape, so that each kind's calls
are written once for both transports.

The gRPC transport uses a GAPIC `*AsyncClient`. The REST transport uses the sync GAPIC client
(`transport="rest"`) with each call in a worker thread: the GAPIC async REST transport needs
`aiohttp` and google-auth's aio extras, which gcpjobs does not depend on, and a thread per
in-flight REST call keeps the event loop free without them. `ThreadedGapicClient` makes that
sync client answer like the async one: `await client.get_job(...)`, and the long-running
operations it returns are awaited (`await operation.result(timeout)`) in a thread too.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any


class ThreadedOperation:
    """A sync `google.api_core.operation.Operation` whose `result()` is awaited in a thread;
    anything else (its metadata) is read as it is."""

    def __init__(self, operation: Any) -> None:
        self._operation = operation

    async def result(self, timeout: float | None = None) -> Any:
        return await asyncio.to_thread(self._operation.result, timeout=timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._operation, name)


class ThreadedGapicClient:
    """A sync GAPIC client whose methods are coroutines: each call runs in a worker thread.

    A method's reply comes back as it is (a pager reads its page's fields without I/O), except
    a long-running operation, which comes back as a `ThreadedOperation`.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    @property
    def transport(self) -> Any:
        """The sync client's transport (its host and credentials, as an async client's)."""
        return self._client.transport

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        function = getattr(self._client, method)

        async def call(**kwargs: Any) -> Any:
            from google.api_core.operation import Operation

            reply = await asyncio.to_thread(functools.partial(function, **kwargs))
            return ThreadedOperation(reply) if isinstance(reply, Operation) else reply

        return call

    async def close(self) -> None:
        await asyncio.to_thread(self._client.transport.close)


async def close_gapic(client: Any) -> None:
    """Close an async GAPIC client's transport, or a `ThreadedGapicClient`'s."""
    if isinstance(client, ThreadedGapicClient):
        await client.close()
    else:
        await client.transport.close()
