"""A local stand-in for Secret Manager, for `env[].value_source.secret_key_ref` in Cloud Run jobs.

Layout: `DATA_DIR/secrets/NAME/VERSION`, one file per version holding the secret's bytes
(UTF-8 text), versions numbered 1, 2, ... as Secret Manager numbers them. `latest` (and an
empty version) is the highest number. Add a version by writing the next file, or with
`POST /_emulator/secrets {"name": NAME, "value": VALUE}`. A reference may name the secret as
`NAME` or `projects/PROJECT/secrets/NAME`; the project is not part of the local layout.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

# Secret Manager secret ids: letters, digits, `-` and `_`, at most 255 characters.
_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_QUALIFIED = re.compile(r"^projects/[^/]+/secrets/([^/]+)(?:/versions/([^/]+))?$")


class SecretError(LookupError):
    """A secret or version the local store does not have, or a malformed reference."""


def _secret_id(reference: str) -> str:
    match = _QUALIFIED.match(reference)
    name = match.group(1) if match else reference
    if not _SECRET_ID.match(name):
        raise SecretError(
            f"Invalid secret name {reference!r}: use NAME or projects/PROJECT/secrets/NAME, where "
            "NAME has only letters, digits, '-' and '_'."
        )
    return name


class SecretStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "secrets"
        self._lock = threading.Lock()  # two concurrent adds must not pick the same number

    def _versions(self, name: str) -> list[int]:
        directory = self.root / name
        if not directory.is_dir():
            return []
        return sorted(int(path.name) for path in directory.iterdir() if path.name.isdigit())

    def add(self, reference: str, value: str) -> int:
        """Store a new version; returns its number."""
        name = _secret_id(reference)
        with self._lock:
            version = (self._versions(name) or [0])[-1] + 1
            directory = self.root / name
            directory.mkdir(parents=True, exist_ok=True)
            temporary = directory / f".{version}.tmp"
            temporary.write_text(value, encoding="utf-8")
            temporary.replace(directory / str(version))
        return version

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
