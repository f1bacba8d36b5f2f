"""`google.cloud.secretmanager.v1.SecretManagerService` over the local secret store: CreateSecret,
GetSecret, ListSecrets, DeleteSecret, AddSecretVersion and AccessSecretVersion, with the real
service's error codes and wording.

What a remote step's caller and its job share the step's key through (docs/steps.md), and what
any code in a job can use locally (jobs get `GCPJOBS_EMULATOR_HOST`). Not emulated: IAM (every
caller may do everything, as with every emulated API here), version states (every version is
ENABLED), etags, rotation, expiry (a `ttl` or `expire_time` is recorded and shown
as `expire_time`; nothing is deleted when it passes), regional secrets.
"""

from __future__ import annotations

import re
import time

import grpc
from google.cloud.secretmanager_v1 import types as sm
from google.protobuf import empty_pb2, timestamp_pb2

from gcpjobs.emulator import names
from gcpjobs.emulator.errors import ServiceError, invalid
from gcpjobs.emulator.paging import (
    InvalidPageSize,
    InvalidPageToken,
    decode_page_token,
    effective_page_size,
    encode_page_token,
)
from gcpjobs.emulator.secrets.store import SecretExists, SecretRecord, SecretStore, is_secret_id

# Secret Manager refuses a payload over 64 KiB.
MAX_PAYLOAD_BYTES = 64 * 1024
# A project id or number as a resource name segment takes (the real API answers NOT_FOUND or
# INVALID_ARGUMENT for anything else; nothing here ever reaches a path).
_PROJECT = r"[A-Za-z0-9][A-Za-z0-9.:-]{0,99}"
_PARENT = re.compile(rf"^projects/({_PROJECT})$")
_SECRET = re.compile(rf"^projects/({_PROJECT})/secrets/([^/]+)$")
_VERSION = re.compile(rf"^projects/({_PROJECT})/secrets/([^/]+)/versions/([^/]+)$")
# Label keys and values as the API takes them (lower case letters, digits, `_` and `-`).
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _parent(text: str) -> str:
    match = _PARENT.match(text)
    if match is None:
        raise invalid(f"Invalid resource field value in the request: parent {text!r} must be "
                       "projects/PROJECT")
    names.check_project_id(match.group(1))
    return match.group(1)


def _secret_name(text: str) -> tuple[str, str]:
    match = _SECRET.match(text)
    if match is None or not is_secret_id(match.group(2)):
        raise invalid(f"Invalid resource field value in the request: {text!r} is not "
                       "projects/PROJECT/secrets/SECRET_ID")
    names.check_project_id(match.group(1))
    return match.group(1), match.group(2)


def _version_name(text: str) -> tuple[str, str, str]:
    match = _VERSION.match(text)
    if match is None or not is_secret_id(match.group(2)):
        raise invalid(f"Invalid resource field value in the request: {text!r} is not "
                       "projects/PROJECT/secrets/SECRET_ID/versions/VERSION")
    version = match.group(3)
    if version != "latest" and not (version.isdigit() and int(version) > 0):
        raise invalid(f"Invalid resource field value in the request: version {version!r} must "
                       "be a positive number or 'latest'")
    names.check_project_id(match.group(1))
    return match.group(1), match.group(2), version


def _check_labels(labels: dict[str, str]) -> None:
    if len(labels) > 64:
        raise invalid(f"A secret takes at most 64 labels, not {len(labels)}")
    for key, value in labels.items():
        if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
            raise invalid(f"Invalid label {key!r}: keys are 1-63 lower case letters, digits, "
                           "'_' and '-' starting with a letter; values are 0-63 of the same")


class SecretManagerService:
    def __init__(self, store: SecretStore) -> None:
        self.store = store

    # A secret is visible in the project it was created in (one made without the API, by
    # files or the admin route, in every project).
    def _record(self, project: str, secret_id: str) -> SecretRecord | None:
        record = self.store.record(secret_id)
        if record is None or record.project not in (None, project):
            return None
        return record

    def _found(self, name: str) -> tuple[str, SecretRecord]:
        project, secret_id = _secret_name(name)
        record = self._record(project, secret_id)
        if record is None:
            raise ServiceError(grpc.StatusCode.NOT_FOUND, f"Secret [{name}] not found.")
        return project, record

    @staticmethod
    def _secret(project: str, record: SecretRecord) -> sm.Secret:
        return sm.Secret(
            name=f"projects/{project}/secrets/{record.secret_id}",
            replication=sm.Replication(automatic=sm.Replication.Automatic()),
            create_time=_timestamp(record.create_time),
            labels=record.labels,
            expire_time=None if record.expire_time is None else _timestamp(record.expire_time),
        )

    # ----------------------------------------------------------------------- the methods

    def create_secret(self, request: sm.CreateSecretRequest) -> sm.Secret:
        project = _parent(request.parent)
        if not is_secret_id(request.secret_id):
            raise invalid(f"Invalid secret_id {request.secret_id!r}: use 1-255 letters, "
                           "digits, '-' and '_'")
        labels = dict(request.secret.labels)
        _check_labels(labels)
        name = f"projects/{project}/secrets/{request.secret_id}"
        now = time.time()
        # As the real service, a `ttl` (input only) is answered as the `expire_time` it sets.
        expire_time = None
        if "ttl" in request.secret:
            expire_time = now + request.secret.ttl.total_seconds()
        elif "expire_time" in request.secret:
            expire_time = request.secret.expire_time.timestamp()
        try:
            record = self.store.create(SecretRecord(secret_id=request.secret_id, project=project,
                                                    labels=labels, create_time=now,
                                                    expire_time=expire_time))
        except SecretExists:
            raise ServiceError(grpc.StatusCode.ALREADY_EXISTS,
                               f"Secret [{name}] already exists.") from None
        return self._secret(project, record)

    def get_secret(self, request: sm.GetSecretRequest) -> sm.Secret:
        project, record = self._found(request.name)
        return self._secret(project, record)

    def list_secrets(self, request: sm.ListSecretsRequest) -> sm.ListSecretsResponse:
        project = _parent(request.parent)
        if request.filter:
            raise invalid("This emulator does not filter secrets; list without a filter")
        try:
            size = effective_page_size(request.page_size)
            offset = decode_page_token(request.page_token, "", scope=request.parent)
        except (InvalidPageSize, InvalidPageToken) as error:
            raise invalid(str(error)) from None
        records = [record for secret_id in self.store.secret_ids()
                   if (record := self._record(project, secret_id)) is not None]
        page = records[offset:offset + size]
        following = offset + size
        return sm.ListSecretsResponse(
            secrets=[self._secret(project, record) for record in page],
            next_page_token=(encode_page_token(following, "", scope=request.parent)
                             if following < len(records) else ""),
            total_size=len(records),
        )

    def delete_secret(self, request: sm.DeleteSecretRequest) -> empty_pb2.Empty:
        _, record = self._found(request.name)
        if not self.store.delete(record.secret_id):
            raise ServiceError(grpc.StatusCode.NOT_FOUND, f"Secret [{request.name}] not found.")
        return empty_pb2.Empty()

    def add_secret_version(self, request: sm.AddSecretVersionRequest) -> sm.SecretVersion:
        project, record = self._found(request.parent)
        data = bytes(request.payload.data)
        if len(data) > MAX_PAYLOAD_BYTES:
            raise invalid(f"Secret payload data is {len(data)} bytes; the limit is "
                           f"{MAX_PAYLOAD_BYTES} bytes")
        if "data_crc32c" in request.payload and request.payload.data_crc32c != crc32c(data):
            raise invalid("Checksum mismatch: the payload's data_crc32c is not the CRC32C of "
                           "its data; the data was corrupted on the way")
        number = self.store.add_bytes(record.secret_id, data)
        return sm.SecretVersion(
            name=f"projects/{project}/secrets/{record.secret_id}/versions/{number}",
            create_time=_timestamp(time.time()),
            state=sm.SecretVersion.State.ENABLED,
            client_specified_payload_checksum="data_crc32c" in request.payload,
        )

    def access_secret_version(
        self, request: sm.AccessSecretVersionRequest
    ) -> sm.AccessSecretVersionResponse:
        project, secret_id, version = _version_name(request.name)
        record = self._record(project, secret_id)
        found = None if record is None else self.store.read(secret_id, version)
        if found is None:
            if record is None or version == "latest":
                raise ServiceError(grpc.StatusCode.NOT_FOUND,
                                   f"Secret [projects/{project}/secrets/{secret_id}] not found "
                                   "or has no versions.")
            raise ServiceError(grpc.StatusCode.NOT_FOUND,
                               f"Secret Version [{request.name}] not found.")
        number, data = found
        return sm.AccessSecretVersionResponse(
            name=f"projects/{project}/secrets/{secret_id}/versions/{number}",
            payload=sm.SecretPayload(data=data, data_crc32c=crc32c(data)),
        )


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli), which Secret Manager checks payloads with; `google-crc32c` (a
    dependency of the Google clients) computes it in C when it is there."""
    try:
        import google_crc32c
    except ImportError:  # pragma: no cover - installed with google-resumable-media
        return _crc32c_python(data)
    value: int = google_crc32c.value(data)
    return value


def _crc32c_python(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF
