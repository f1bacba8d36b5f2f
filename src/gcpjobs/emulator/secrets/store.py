"""A local stand-in for Secret Manager's storage: what Cloud Run's `env[].value_source.
secret_key_ref` reads, and what the emulator's Secret Manager API (service.py) serves.

Layout: `DATA_DIR/secrets/NAME/VERSION`, one file per version holding the secret's bytes,
versions numbered 1, 2, ... as Secret Manager numbers them. `latest` (and an empty version) is
the highest number. Add a version by writing the next file, with
`POST /_emulator/secrets {"name": NAME, "value": VALUE}`, or with the Secret Manager API's
AddSecretVersion. A reference may name the secret as `NAME` or `projects/PROJECT/secrets/NAME`.

A secret made with the API's CreateSecret also has `NAME/.secret.json` (its project, labels and
create time): the API finds it only in that project. One made by writing files or through the
admin route has none and is found in every project, as before. Secret ids are one namespace
across projects here (a local store has no use for two secrets of the same id).

Private: directories are made 0700 and version files 0600, whatever the umask.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# Secret Manager secret ids: letters, digits, `-` and `_`, at most 255 characters.
_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_QUALIFIED = re.compile(r"^projects/[^/]+/secrets/([^/]+)(?:/versions/([^/]+))?$")
METADATA_FILE = ".secret.json"


class SecretError(LookupError):
    """A secret or version the local store does not have, or a malformed reference."""


class SecretExists(SecretError):
    """CreateSecret of an id the store already has."""


def is_secret_id(name: str) -> bool:
    return bool(_SECRET_ID.match(name))


def _secret_id(reference: str) -> str:
    match = _QUALIFIED.match(reference)
    name = match.group(1) if match else reference
    if not is_secret_id(name):
        raise SecretError(
            f"Invalid secret name {reference!r}: use NAME or projects/PROJECT/secrets/NAME, where "
            "NAME has only letters, digits, '-' and '_'."
        )
    return name


@dataclass(frozen=True)
class SecretRecord:
    """What CreateSecret recorded about a secret (project None: made without the API)."""

    secret_id: str
    project: str | None
    labels: dict[str, str] = field(default_factory=dict)
    create_time: float = 0.0
    expire_time: float | None = None  # recorded and shown; nothing expires here


def _write_private(path: Path, data: bytes) -> None:
    """Write `path` through a 0600 temporary file renamed over it (never a partial file)."""
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # an older file of that name kept its own mode
        os.write(descriptor, data)
    finally:
        os.close(descriptor)
    temporary.replace(path)


class SecretStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "secrets"
        # Two concurrent adds must not pick the same number, nor an add race a delete.
        self._lock = threading.Lock()

    def _directory(self, name: str) -> Path:
        directory = self.root / name
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.mkdir(mode=0o700, exist_ok=True)
        return directory

    def _versions(self, name: str) -> list[int]:
        directory = self.root / name
        if not directory.is_dir():
            return []
        return sorted(int(path.name) for path in directory.iterdir() if path.name.isdigit())

    # ------------------------------------------------------------------ the Cloud Run side

    def add(self, reference: str, value: str) -> int:
        """Store a new version of text; returns its number."""
        return self.add_bytes(_secret_id(reference), value.encode("utf-8"))

    def resolve(self, reference: str, version: str) -> str:
        """The value of `version` ("latest", "" or a number) of a secret; SecretError if absent."""
        name = _secret_id(reference)
        versions = self._versions(name)
        if not versions:
            raise SecretError(
                f"Secret {name!r} was not found in the emulator's local secret store "
                f"({self.root / name}/VERSION); add it with POST /_emulator/secrets "
                f'{{"name": "{name}", "value": ...}}.'
            )
        wanted = version.strip() or "latest"
        if wanted == "latest":
            number = versions[-1]
        elif wanted.isdigit() and int(wanted) in versions:
            number = int(wanted)
        else:
            raise SecretError(
                f"Version {wanted!r} of secret {name!r} was not found in the emulator's local "
                f"secret store; it has versions {', '.join(map(str, versions))} and 'latest'."
            )
        return (self.root / name / str(number)).read_text(encoding="utf-8")

    # --------------------------------------------------------------------- the API's side

    def add_bytes(self, name: str, data: bytes) -> int:
        """Store a new version of secret id `name`; returns its number."""
        with self._lock:
            version = (self._versions(name) or [0])[-1] + 1
            _write_private(self._directory(name) / str(version), data)
        return version

    def create(self, record: SecretRecord) -> SecretRecord:
        """Record a new secret; SecretExists if the id is taken (in any project)."""
        with self._lock:
            if self.exists(record.secret_id):
                raise SecretExists(record.secret_id)
            document = {"project": record.project, "labels": record.labels,
                        "create_time": record.create_time or time.time(),
                        "expire_time": record.expire_time}
            _write_private(self._directory(record.secret_id) / METADATA_FILE,
                           json.dumps(document).encode())
        return self.record(record.secret_id) or record

    def exists(self, name: str) -> bool:
        return (self.root / name).is_dir()

    def record(self, name: str) -> SecretRecord | None:
        """The secret's record: None if there is no such secret; project None for one made
        without the API (by files or the admin route)."""
        directory = self.root / name
        if not directory.is_dir():
            return None
        try:
            document = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return SecretRecord(secret_id=name, project=None,
                                create_time=directory.stat().st_mtime)
        return SecretRecord(secret_id=name, project=document.get("project"),
                            labels=dict(document.get("labels") or {}),
                            create_time=float(document.get("create_time") or 0.0),
                            expire_time=(None if document.get("expire_time") is None
                                         else float(document["expire_time"])))

    def read(self, name: str, version: str) -> tuple[int, bytes] | None:
        """(number, bytes) of `version` ("latest" or a number); None if there is none."""
        versions = self._versions(name)
        if not versions:
            return None
        if version == "latest":
            number = versions[-1]
        elif version.isdigit() and int(version) in versions:
            number = int(version)
        else:
            return None
        try:
            return number, (self.root / name / str(number)).read_bytes()
        except FileNotFoundError:  # deleted meanwhile
            return None

    def version_times(self, name: str, version: str) -> float | None:
        path = self.root / name / version
        return path.stat().st_mtime if path.is_file() else None

    def delete(self, name: str) -> bool:
        """Delete the secret and all its versions; False if there was none."""
        with self._lock:
            directory = self.root / name
            if not directory.is_dir():
                return False
            # Renamed first, so that no reader sees half a secret while it is removed.
            doomed = self.root / f".deleting-{name}-{time.monotonic_ns()}"
            directory.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        return True

    def secret_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(path.name for path in self.root.iterdir()
                      if path.is_dir() and is_secret_id(path.name))
