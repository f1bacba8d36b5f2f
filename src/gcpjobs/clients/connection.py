"""What every gcpjobs client shares: credentials, the user agent, one set of GAPIC clients per
event loop, and the private event loop that runs an async client for sync callers.

The Vertex and Cloud Run clients differ in the Google API they call; how they connect,
authenticate and run from synchronous code is the same, and lives here once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from gcpjobs.clients.target import CREDENTIALS_ENV
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


# The credentials file types Google's libraries load (their "type" field), and the fields
# google-auth needs in the two common ones: used only to say what is wrong with a file it refused.
_CREDENTIAL_TYPES = frozenset({
    "service_account", "authorized_user", "external_account",
    "external_account_authorized_user", "impersonated_service_account", "gdch_service_account",
})
_SERVICE_ACCOUNT = "service_account"
_REQUIRED_FIELDS = {
    _SERVICE_ACCOUNT: ("client_email", "private_key", "token_uri"),
    "authorized_user": ("client_id", "client_secret", "refresh_token"),
}
_CREATE_KEY = "`gcloud iam service-accounts keys create`"


def _read_credentials_file(path: str) -> tuple[str | None, dict[str, Any]]:
    """What is wrong with the credentials file at `path` before its fields are looked at (None:
    nothing), and its JSON object. The problem never quotes the file: it may hold a key."""
    try:  # as google-auth opens it (no `~` expansion)
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return "does not exist", {}
    except IsADirectoryError:
        return "is a directory, not a file", {}
    except OSError as error:
        return f"cannot be read ({error.strerror or type(error).__name__})", {}
    if not raw.strip():
        return "is empty", {}
    try:
        document = json.loads(raw.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError too
        return "is not JSON", {}
    if not isinstance(document, dict):
        return "is JSON but not a credentials file (one is a JSON object)", {}
    kind = document.get("type")
    if kind is None:
        return 'is JSON but not a credentials file (it has no "type" field)', {}
    if not isinstance(kind, str) or kind not in _CREDENTIAL_TYPES:
        return ('is JSON but not a credentials file (its "type" is none that Google\'s '
                "libraries know)"), {}
    return None, document


def _describe(kind: str) -> str:
    return "a service-account key file" if kind == _SERVICE_ACCOUNT else (
        f'a credentials file of type "{kind}"'
    )


def _refused(document: dict[str, Any]) -> str:
    """Why google-auth refused a credentials file of a known type (by field names only)."""
    kind = str(document["type"])
    missing = [field for field in _REQUIRED_FIELDS.get(kind, ()) if field not in document]
    if missing:
        return f"is {_describe(kind)} without the field(s) {', '.join(missing)}"
    which = "e.g. private_key" if kind == _SERVICE_ACCOUNT else "check its values"
    return f"is {_describe(kind)} that google-auth cannot load (a malformed field? {which})"


def load_credentials(credentials_file: str | None) -> Any:
    """A service-account key file's credentials, else Application Default Credentials.

    Blocking (ADC may ask the metadata server): call it in a worker thread. Errors are one
    line that names the file and what is wrong with it, never its content (it may hold a key).
    """
    import google.auth
    from google.auth import exceptions as auth_exceptions

    if credentials_file:
        from google.oauth2 import service_account

        problem, document = _read_credentials_file(credentials_file)
        if problem is None and document["type"] != _SERVICE_ACCOUNT:
            problem = f"is {_describe(document['type'])}, not a service-account key file"
        if problem is None:
            try:
                return service_account.Credentials.from_service_account_file(
                    credentials_file, scopes=[CLOUD_PLATFORM_SCOPE]
                )
            except (OSError, ValueError, auth_exceptions.GoogleAuthError):
                problem = _refused(document)
        raise GcpJobsError(
            f"the credentials_file {credentials_file} {problem}; give the path of a "
            f"service-account key file (create one with {_CREATE_KEY})"
        )
    from_environment = os.environ.get(CREDENTIALS_ENV)
    if from_environment:
        # google-auth reads this file first, and a bad one is not "no credentials": say which.
        problem, document = _read_credentials_file(from_environment)
        if problem is None:
            try:
                credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
            except (auth_exceptions.DefaultCredentialsError, ValueError):
                problem = _refused(document)
            else:
                return credentials
        raise GcpJobsError(
            f"{CREDENTIALS_ENV} is set to {from_environment}, which {problem}; point it at a "
            f"service-account key file (create one with {_CREATE_KEY}), or unset it and run "
            "`gcloud auth application-default login`"
        )
    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except auth_exceptions.DefaultCredentialsError:
        raise GcpJobsError(
            "no Google Cloud credentials found; run `gcloud auth application-default login` or "
            f"set {CREDENTIALS_ENV} to a service-account key file"
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
