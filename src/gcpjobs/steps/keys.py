"""Where a remote step's key lives while the step runs: a Secret Manager secret of its own.

The caller makes a random key per call (signing.py) and keeps it in memory. Before it creates
the job it stores the key (hex) as version 1 of a new secret, `projects/P/secrets/
gcpjobs-step-RUN_ID`, labelled `gcpjobs-step-key=true` and `gcpjobs-submission-id=RUN_ID`
(so that leftovers can be listed) and expiring after `SECRET_TTL` (so that even a leftover
goes away). The job's spec carries only that version's resource name (`KEY_SECRET_ENV`); the
job's entry point reads the key with AccessSecretVersion into memory. The secret is kept until it
expires, so that `fetch_result` can verify the outcome later from any machine; it is deleted at
once when no job was created.

So reading the job (`customJobs.get`, `run.jobs.get`: everything in its spec) no longer gives
the key: a forger needs `secretmanager.versions.access` on that secret as well. On Google
Cloud the job's service account needs that permission; when the spec names a
`service_account`, the caller grants it `roles/secretmanager.secretAccessor` on the secret
itself. On the emulator the secret lives in its local store and the job reaches it through
`GCPJOBS_EMULATOR_HOST`.

The job side (`read_key`) imports the Secret Manager client only when it runs, so importing the
entry point stays cheap.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gcpjobs.errors import GcpJobsError
from gcpjobs.steps.signing import key_from_hex

if TYPE_CHECKING:
    from gcpjobs.clients.target import Target

logger = logging.getLogger("gcpjobs.steps")

SECRET_PREFIX = "gcpjobs-step-"
KEY_LABEL = "gcpjobs-step-key"
ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"
# Longer than any job may run (Vertex and Cloud Run both stop a job after 7 days at most).
SECRET_TTL_SECONDS = 30 * 24 * 3600
# Each Secret Manager call's own deadline.
CALL_TIMEOUT_SECONDS = 60.0


class StepKeyError(GcpJobsError):
    """The step's key could not be stored, read or deleted; the message names the secret and
    the permission, never the key."""


@dataclass(frozen=True)
class KeySecret:
    """A step's key secret: the secret and the version that holds the key."""

    secret: str  # projects/P/secrets/gcpjobs-step-RUN
    version: str  # .../versions/1

    @classmethod
    def of_version(cls, version: str) -> KeySecret:
        return cls(secret=version.split("/versions/", 1)[0], version=version)


def _client(emulator_address: str | None, credentials: Any = None) -> Any:
    from google.cloud import secretmanager_v1

    if emulator_address:
        import grpc
        from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
            SecretManagerServiceGrpcTransport,
        )

        # A plaintext server needs an explicit insecure channel: `api_endpoint` alone speaks TLS.
        channel = grpc.insecure_channel(emulator_address)
        return secretmanager_v1.SecretManagerServiceClient(
            transport=SecretManagerServiceGrpcTransport(channel=channel))
    return secretmanager_v1.SecretManagerServiceClient(credentials=credentials)


def _described(error: BaseException) -> str:
    return f"{type(error).__name__}: {getattr(error, 'message', None) or error}"


class KeyVault:
    """The caller's side: Secret Manager of the step's target (blocking; call in a thread)."""

    def __init__(self, target: Target, credentials: Any = None) -> None:
        self.target = target
        self._credentials = credentials
        self._api: Any = None

    def _secret_manager(self) -> Any:
        if self._api is None:
            credentials = self._credentials
            if not self.target.is_emulator and credentials is None:
                from gcpjobs.clients.connection import load_credentials

                credentials = load_credentials(self.target.credentials_file)
            self._api = _client(self.target.grpc_address if self.target.is_emulator else None,
                                credentials)
        return self._api

    def store(self, run_id: str, key: bytes, *, service_account: str | None = None) -> KeySecret:
        """A new secret holding `key`; StepKeyError (after deleting what was made) if not."""
        from google.api_core import exceptions

        from gcpjobs.specs.labels import SUBMISSION_LABEL

        api = self._secret_manager()
        secret = f"projects/{self.target.project}/secrets/{SECRET_PREFIX}{run_id}"
        try:
            # A retried create whose first reply was lost finds its own: the run id is ours.
            with contextlib.suppress(exceptions.AlreadyExists):
                api.create_secret(request={
                    "parent": f"projects/{self.target.project}",
                    "secret_id": f"{SECRET_PREFIX}{run_id}",
                    "secret": {"replication": {"automatic": {}},
                               "labels": {KEY_LABEL: "true", SUBMISSION_LABEL: run_id},
                               "ttl": {"seconds": SECRET_TTL_SECONDS}},
                }, timeout=CALL_TIMEOUT_SECONDS)
            version = api.add_secret_version(request={
                "parent": secret, "payload": {"data": key.hex().encode("ascii")}},
                timeout=CALL_TIMEOUT_SECONDS)
            if service_account and not self.target.is_emulator:
                self._grant(api, secret, service_account)
        except exceptions.GoogleAPICallError as error:
            self.delete(KeySecret(secret=secret, version=""))
            raise StepKeyError(
                f"cannot keep the remote step's key in Secret Manager ({secret}): "
                f"{_described(error)}; the caller needs roles/secretmanager.admin (or "
                "secretmanager.secrets.create, .delete and .versions.add) in project "
                f"{self.target.project}, and the Secret Manager API enabled"
            ) from None
        return KeySecret(secret=secret, version=str(version.name))

    @staticmethod
    def _grant(api: Any, secret: str, service_account: str) -> None:
        """Let the job's service account read this one secret (best effort: it may already
        have access project-wide, which docs/steps.md describes)."""
        from google.api_core import exceptions

        member = f"serviceAccount:{service_account}"
        try:
            api.set_iam_policy(request={"resource": secret, "policy": {
                "bindings": [{"role": ACCESSOR_ROLE, "members": [member]}]}},
                timeout=CALL_TIMEOUT_SECONDS)
        except exceptions.GoogleAPICallError as error:
            logger.warning("could not grant %s %s on %s (%s); the job can read its key only "
                           "if it has that role otherwise", member, ACCESSOR_ROLE, secret,
                           _described(error))

    def read(self, version: str) -> bytes:
        """The key a step's secret holds (to verify its result later)."""
        from google.api_core import exceptions

        try:
            return key_from_payload(self._secret_manager().access_secret_version(
                name=version, timeout=CALL_TIMEOUT_SECONDS))
        except exceptions.NotFound:
            raise StepKeyError(
                f"the step's key secret {KeySecret.of_version(version).secret} is gone: the "
                "secret expired (after 30 days) or was deleted; the outcome cannot be verified "
                "without it"
            ) from None
        except (exceptions.GoogleAPICallError, ValueError) as error:
            raise StepKeyError(f"cannot read the step's key from {version}: "
                               f"{_described(error)}") from None

    def delete(self, secret: KeySecret) -> None:
        """Delete the step's secret; a failure is logged with how to delete it by hand."""
        from google.api_core import exceptions

        try:
            self._secret_manager().delete_secret(name=secret.secret, timeout=CALL_TIMEOUT_SECONDS)
        except exceptions.NotFound:
            pass
        except Exception as error:  # never hides the step's own outcome or error
            logger.warning("could not delete the remote step's key secret %s (%s); delete it "
                           "with `gcloud secrets delete %s`", secret.secret, _described(error),
                           secret.secret.rsplit("/", 1)[-1])

    def close(self) -> None:
        if self._api is not None:
            self._api.transport.close()


def key_from_payload(response: Any) -> bytes:
    """The key in an AccessSecretVersionResponse, its CRC32C checked when the server sent one."""
    data = bytes(response.payload.data)
    if "data_crc32c" in response.payload:
        import google_crc32c

        if google_crc32c.value(data) != response.payload.data_crc32c:
            raise ValueError("the step key's payload does not match its CRC32C")
    return key_from_hex(data.decode("ascii", errors="replace"))


def read_key(version: str) -> bytes:
    """The job's side: the key from its secret, with the job's own credentials (on Google
    Cloud, its service account; on the emulator, through `GCPJOBS_EMULATOR_HOST`)."""
    from gcpjobs.clients.target import EMULATOR_HOST_ENV

    client = _client(os.environ.get(EMULATOR_HOST_ENV) or None)
    try:
        return key_from_payload(client.access_secret_version(name=version,
                                                             timeout=CALL_TIMEOUT_SECONDS))
    finally:
        client.transport.close()
