"""`GcpJobsCredentials`: the Prefect block that tells the gcpjobs workers how to authenticate.

A work pool (or one deployment) points its `credentials` job variable at a saved block of
this type; the worker turns it into google-auth credentials for the Vertex AI / Cloud Run
clients (`GcpJobsJobConfiguration.client_options`). Key material stays inside the block: it is
a `SecretDict` (shown as `**********` by repr, str and Prefect's UI), errors name the problem
without echoing values, and nothing here logs.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect.blocks.core import Block
from prefect.types import SecretDict
from pydantic import Field, field_validator, model_validator

from gcpjobs.errors import GcpJobsError

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

__all__ = ["CLOUD_PLATFORM_SCOPE", "CredentialsError", "GcpJobsCredentials"]

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# What google-auth needs from a service-account key (named in errors; their values never are).
_REQUIRED_KEY_FIELDS = ("client_email", "private_key", "token_uri")
# Credentials built from key contents, by a digest of those contents: a worker resolves the
# block afresh for every flow run, and handing back the same object lets it reuse one client
# (and its connections) for every run that uses the same key.
_BUILT: dict[str, Credentials] = {}
_BUILT_LOCK = threading.Lock()
_MAX_BUILT = 64


class CredentialsError(GcpJobsError, ValueError):
    """A credentials block cannot give credentials (missing file, not a service-account key
    ...). One line, never containing key material. A ValueError too, so that pydantic reports
    it as the block's validation error when the block itself is being built."""


class GcpJobsCredentials(Block):
    """How the gcpjobs workers authenticate to Google Cloud.

    The three ways ZenML's Vertex step operator offers, as one block: leave both key fields
    empty for the local gcloud login / Application Default Credentials (on GCP, the attached
    service account), give `service_account_file` (a key file on the worker's machine), or
    store the key itself in `service_account_info` (ZenML's stored service connector; here,
    this saved block). `project` names the project jobs run in when the job does not; else
    the key's own project, else the configured default.
    """

    _block_type_name = "gcpjobs Credentials"
    _block_type_slug = "gcpjobs-credentials"

    service_account_file: Path | None = Field(
        default=None,
        description="Path to a service-account JSON key file on the worker's machine.",
    )
    service_account_info: SecretDict | None = Field(
        default=None,
        description="The contents of a service-account JSON key (stored as a secret).",
    )
    project: str | None = Field(
        default=None,
        description="Google Cloud project the jobs run in, unless the job names one; unset "
                    "uses the key's project, then the configured default.",
    )

    @field_validator("service_account_file")
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        # `~/keys/sa.json` typed into the UI means the worker user's home.
        return None if value is None else value.expanduser()

    @model_validator(mode="after")
    def _one_source(self) -> GcpJobsCredentials:
        if self.service_account_file is not None and self.service_account_info is not None:
            raise CredentialsError("give service_account_file or service_account_info, not "
                                   "both (or neither, for Application Default Credentials)")
        return self

    # -- use -------------------------------------------------------------------------------

    def key_info(self) -> dict[str, Any] | None:
        """The service-account key as a mapping (from the file or the stored info), or None
        for Application Default Credentials; CredentialsError (one line) when unreadable."""
        if self.service_account_info is not None:
            info = self.service_account_info.get_secret_value()
            if not isinstance(info, Mapping):
                raise CredentialsError("service_account_info must be the key's JSON object")
            return dict(info)
        if self.service_account_file is None:
            return None
        path = self.service_account_file
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise CredentialsError(f"cannot read the service-account key file {path} ({reason}); "
                                   "check service_account_file") from None
        except UnicodeDecodeError:
            raise CredentialsError(f"{path} is not a JSON key file (not UTF-8 text); check "
                                   "service_account_file") from None
        try:
            document = json.loads(text)
        except ValueError:
            # The parser's message may quote the file's text: not repeated.
            raise CredentialsError(f"{path} is not valid JSON; give a service-account key "
                                   "created with `gcloud iam service-accounts keys create`") \
                from None
        if not isinstance(document, dict):
            raise CredentialsError(f"{path} is not a service-account key (not a JSON object)")
        return document

    def project_id(self) -> str | None:
        """The block's `project`, else the key's `project_id`, else None (for the client to
        find the configured default). Never raises: an unreadable key is reported by
        `get_credentials`."""
        if self.project:
            return self.project
        try:
            info = self.key_info()
        except CredentialsError:
            return None
        project = info.get("project_id") if info else None
        return project if isinstance(project, str) and project.strip() else None

    def get_credentials(self) -> Credentials | None:
        """google-auth service-account credentials (cloud-platform scope), or None to let the
        client use Application Default Credentials; CredentialsError (one line) for a key
        that cannot be used."""
        info = self.key_info()
        if info is None:
            return None
        where = (str(self.service_account_file) if self.service_account_file is not None
                 else "service_account_info")
        missing = [name for name in _REQUIRED_KEY_FIELDS if not info.get(name)]
        if info.get("type", "service_account") != "service_account" or missing:
            what = (f"it lacks {', '.join(missing)}" if missing
                    else f"its type is {str(info.get('type'))[:40]!r}")
            raise CredentialsError(f"{where} is not a service-account key ({what}); create one "
                                   "with `gcloud iam service-accounts keys create`")
        digest = hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode()).hexdigest()
        with _BUILT_LOCK:
            built = _BUILT.get(digest)
        if built is not None:
            return built
        from google.oauth2 import service_account

        try:
            built = service_account.Credentials.from_service_account_info(
                info, scopes=[CLOUD_PLATFORM_SCOPE])
        except Exception as error:
            # google-auth / cryptography messages about a bad private key do not quote it, but
            # only the exception's type is shown, to be sure no key material reaches a log.
            raise CredentialsError(f"{where}: the private key cannot be loaded "
                                   f"({type(error).__name__}); use the key file exactly as "
                                   "downloaded") from None
        with _BUILT_LOCK:
            if len(_BUILT) >= _MAX_BUILT:
                _BUILT.pop(next(iter(_BUILT)))
            built = _BUILT.setdefault(digest, built)
        return built
