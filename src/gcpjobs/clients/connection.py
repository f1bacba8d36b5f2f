"""What every gcpjobs client shares: credentials, the user agent, one set of GAPIC clients per
event loop, and the private event loop that runs an async client for sync callers.

The Vertex and Cloud Run clients differ in the Google API they call; how they connect,
authenticate and run from synchronous code is the same, and lives here once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from gcpjobs.errors import GcpJobsError

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

T = TypeVar("T")
Api = TypeVar("Api")

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def client_info() -> Any:
    """The GAPIC `ClientInfo` that names gcpjobs in the user agent."""
    from google.api_core.gapic_v1.client_info import ClientInfo

    from gcpjobs import __version__

    return ClientInfo(user_agent=f"gcpjobs/{__version__}")


def scoped(credentials: Any) -> Any:
    """Caller-given credentials with the cloud-platform scope, if they take scopes and have none
    (a service account's credentials made without scopes cannot get a token otherwise);
    anything else is returned as it is."""
    from google.auth.credentials import with_scopes_if_required

    return with_scopes_if_required(credentials, [CLOUD_PLATFORM_SCOPE])


def load_credentials(credentials_file: str | None) -> Any:
    """A service-account key file's credentials, else Application Default Credentials.

    Blocking (ADC may ask the metadata server): call it in a worker thread. Errors are one
    line and never contain key material.
    """
    import google.auth
    from google.auth import exceptions as auth_exceptions

    if credentials_file:
        from google.oauth2 import service_account

        try:
            return service_account.Credentials.from_service_account_file(
                credentials_file, scopes=[CLOUD_PLATFORM_SCOPE]
            )
        except OSError as error:
            raise GcpJobsError(
                f"cannot read the service-account key file {credentials_file} "
                f"({error.strerror or type(error).__name__}); check the path"
            ) from None
        except (ValueError, auth_exceptions.GoogleAuthError) as error:
            # google-auth's messages name missing fields, never values.
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise GcpJobsError(
                f"{credentials_file} is not a service-account key file ({reason}); create one "
                "with `gcloud iam service-accounts keys create`"
            ) from None
    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except auth_exceptions.DefaultCredentialsError:
        raise GcpJobsError(
            "no Google Cloud credentials found; run `gcloud auth application-default login` or "
            "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file"
        ) from None
    return credentials


class LoopBoundApis(Generic[Api]):
    """Transport adapters by endpoint, rebuilt for each event loop.

    gRPC aio channels belong to the loop they were made in; a new loop (a second
    `asyncio.run`) needs new ones, and the old loop is gone, so they cannot be awaited.
    """

    def __init__(self) -> None:
        self._apis: dict[str, Api] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._credentials: Any = None

    async def get(
        self,
        endpoint: str,
        build: Callable[[Any], Api],
        *,
        credentials_file: str | None,
        needs_credentials: bool,
        credentials: Credentials | None = None,
    ) -> Api:
        """The adapter for `endpoint`, built by `build(credentials)` on first use.

        `credentials`, when given (a caller's own object), is used as it is (scoped if it must
        be); otherwise the key file or Application Default Credentials are loaded, once. With
        `needs_credentials=False` (an emulator) neither is touched.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._apis = {}
            self._loop = loop
        api = self._apis.get(endpoint)
        if api is None:
            if needs_credentials and self._credentials is None:
                if credentials is not None:
                    self._credentials = scoped(credentials)
                else:
                    self._credentials = await asyncio.to_thread(load_credentials, credentials_file)
            api = build(self._credentials if needs_credentials else None)
            self._apis[endpoint] = api
        return api

    async def close(self, close_one: Callable[[Api], Awaitable[None]]) -> None:
        """Close every adapter made in the running loop; forget those of a finished one."""
        apis, self._apis = list(self._apis.values()), {}
        same_loop = self._loop is asyncio.get_running_loop()
        self._loop = None
        if same_loop:
            for api in apis:
                await close_one(api)


class BackgroundLoop:
    """A private event loop in a daemon thread, for the sync facades of the async clients.

    It works where a loop is already running (Jupyter). Interrupting a call (Ctrl-C) cancels
    the work on the loop too.
    """

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()
        self.closed = False

    def run(self, coroutine: Coroutine[Any, Any, T], *, what: str) -> T:
        if self.closed:
            coroutine.close()
            raise GcpJobsError(f"this {what} is closed; create a new one")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()

    def stop_soon(self) -> None:
        """From `__del__`: never blocks, never raises."""
        if not self.closed:
            with contextlib.suppress(Exception):
                self._loop.call_soon_threadsafe(self._loop.stop)
