"""Packing one call for its job: the code archive (uploaded once per distinct content) and the
sealed payload (the function and its arguments, cloudpickled).

Blocking file and network I/O: the async caller runs `prepare_call` in a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gcpjobs.errors import GcpJobsError, SpecError
from gcpjobs.steps.archive import ArchiveError, CodeArchive, code_root_of, scan
from gcpjobs.steps.payload import (
    CallHeader,
    encode_call,
    first_line,
    function_name,
    python_version,
)
from gcpjobs.steps.signing import seal
from gcpjobs.steps.store import PAYLOAD, ArtifactStore, LocalStore, code_key, run_key


@dataclass(frozen=True)
class PreparedCall:
    """What was written for one call, and what it cost."""

    run_id: str
    function: str
    code_digest: str | None
    code_files: int
    code_bytes_uploaded: int  # 0 when the store already had this archive
    payload_bytes: int
    seconds: float

    def describe(self) -> str:
        if self.code_digest is None:
            code = "no code archive"
        elif self.code_bytes_uploaded:
            code = (f"code archive {self.code_digest[:12]} ({self.code_files} files) uploaded, "
                    f"{self.code_bytes_uploaded} bytes")
        else:
            code = (f"code archive {self.code_digest[:12]} ({self.code_files} files) unchanged, "
                    "0 bytes uploaded")
        return f"{code}; payload {self.payload_bytes} bytes; packed in {self.seconds:.3f}s"


def find_code(
    function: Callable[..., Any], code_dir: Path | Literal[False] | None, store: ArtifactStore
) -> CodeArchive | None:
    """The archive to ship with `function` (see archive.py), or None."""
    root = code_root_of(function) if code_dir is None else (code_dir or None)
    if root is None:
        return None
    # A store inside the project would put every earlier payload in the next archive.
    exclude = [store.root] if isinstance(store, LocalStore) else []
    try:
        return scan(root, exclude=exclude)
    except (ArchiveError, OSError) as error:
        raise SpecError(f"cannot archive {root}: {error}", field="code_dir") from None


def upload_code(archive: CodeArchive, store: ArtifactStore) -> int:
    """Put the archive in the store unless it is there already; the bytes uploaded."""
    key = code_key(archive.digest)
    if store.exists(key):
        return 0
    data = archive.build_zip()
    store.write(key, data)
    return len(data)


def prepare_call(
    function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    *,
    code_dir: Path | Literal[False] | None,
    store: ArtifactStore,
    run_id: str,
    key: bytes,
) -> PreparedCall:
    """Upload the code archive if the store lacks it, and write the sealed payload."""
    started = time.perf_counter()
    name = function_name(function)
    archive = find_code(function, code_dir, store)
    header = CallHeader(function=name, code=archive.digest if archive else None,
                        python=python_version())
    try:
        body = encode_call(header, function, args, kwargs)
    except Exception as error:
        raise GcpJobsError(
            f"the call of {name} cannot be pickled to send it to the job "
            f"({type(error).__name__}: {first_line(str(error))}); "
            "pass data that pickles (arrays, frames, plain objects), not open files, locks "
            "or clients"
        ) from error
    envelope = seal(key, "payload", run_id, body)
    try:
        uploaded = upload_code(archive, store) if archive else 0
        store.write(run_key(run_id, PAYLOAD), envelope)
    except OSError as error:
        raise GcpJobsError(
            f"cannot write to the artifact store {store.url}: {error}; check store= (or "
            "$GCPJOBS_STEP_STORE) and its permissions"
        ) from error
    return PreparedCall(
        run_id=run_id,
        function=name,
        code_digest=archive.digest if archive else None,
        code_files=len(archive.files) if archive else 0,
        code_bytes_uploaded=uploaded,
        payload_bytes=len(envelope),
        seconds=time.perf_counter() - started,
    )
