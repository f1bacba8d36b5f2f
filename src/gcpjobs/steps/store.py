"""The artifact store: where a remote step's code, payload and result live, by URL.

A store is a root URL: a local directory (the default; a job on the emulator runs on this
host and reads it directly) or any fsspec URL a job can reach, such as `gs://BUCKET/PREFIX`
(`pip install 'gcpjobs[gcs]'`). Inside it:

    code/DIGEST.zip            a code archive, named by its content (see archive.py)
    runs/RUN_ID/payload        the call, sealed (see signing.py)
    runs/RUN_ID/started        written by the job once it has verified the payload
    runs/RUN_ID/result         the outcome, sealed

RUN_ID is the job's submission id, and the job's only argument is the run's URL, so a job
record says where its result is.

A local store is read and written with plain file I/O: fsspec costs about 0.1 s to import,
which the job's entry point should not pay when it does not need it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from gcpjobs.errors import SpecError

PAYLOAD = "payload"
STARTED = "started"
RESULT = "result"
_RUNS = "runs"
# Protocols whose files live in the caller's process or machine only: a job cannot read them.
_PRIVATE_PROTOCOLS = frozenset({"memory", "cached", "simplecache", "filecache", "blockcache"})
_LOCAL_PROTOCOLS = frozenset({"file", "local"})


def run_key(run_id: str, name: str) -> str:
    return f"{_RUNS}/{run_id}/{name}"


def code_key(digest: str) -> str:
    return f"code/{digest}.zip"


def _protocol(url: str) -> str | None:
    head, sep, _ = url.partition("://")
    return head.lower() if sep else None


def _is_local(url: str) -> bool:
    protocol = _protocol(url)
    return protocol is None or protocol in _LOCAL_PROTOCOLS


class ArtifactStore:
    """Bytes under keys (`runs/ID/result`), below one root URL."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    @property
    def is_local(self) -> bool:
        return False

    def url_of(self, key: str) -> str:
        return f"{self.url}/{key}"

    def run_url(self, run_id: str) -> str:
        return self.url_of(f"{_RUNS}/{run_id}")

    def read(self, key: str) -> bytes:
        """The bytes under `key`; FileNotFoundError if there are none."""
        raise NotImplementedError

    def write(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def read_if_exists(self, key: str) -> bytes | None:
        try:
            return self.read(key)
        except FileNotFoundError:
            return None


class LocalStore(ArtifactStore):
    def __init__(self, url: str) -> None:
        path = url.split("://", 1)[1] if "://" in url else url
        self.root = Path(path)
        super().__init__(str(self.root))

    @property
    def is_local(self) -> bool:
        return True

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def write(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then renamed: a reader never sees half an envelope.
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def exists(self, key: str) -> bool:
        return (self.root / key).exists()


class FsspecStore(ArtifactStore):
    """Any fsspec filesystem (gcsfs for gs://); object stores write each object atomically."""

    def __init__(self, url: str) -> None:
        import fsspec

        super().__init__(url)
        self._fs: Any
        self._fs, root = fsspec.core.url_to_fs(self.url)
        self._root = str(root).rstrip("/")

    def _path(self, key: str) -> str:
        return f"{self._root}/{key}"

    def read(self, key: str) -> bytes:
        data = self._fs.cat_file(self._path(key))
        return bytes(data)

    def write(self, key: str, data: bytes) -> None:
        self._fs.pipe_file(self._path(key), data)

    def exists(self, key: str) -> bool:
        return bool(self._fs.exists(self._path(key)))


def open_store(url: str) -> ArtifactStore:
    """The store at `url` (already checked by `check_store_url` on the caller's side)."""
    return LocalStore(url) if _is_local(url) else FsspecStore(url)


def split_run_url(run_url: str) -> tuple[str, str]:
    """`STORE/runs/RUN_ID` -> (STORE, RUN_ID); ValueError for anything else."""
    store_url, sep, run_id = run_url.rstrip("/").rpartition(f"/{_RUNS}/")
    if not sep or not store_url or not run_id or "/" in run_id:
        raise ValueError(f"{run_url!r} is not a run URL (STORE/{_RUNS}/RUN_ID)")
    return store_url, run_id


def check_store_url(value: Any, *, field: str = "store") -> str:
    """A store URL a job can reach, normalised (local paths made absolute), or a one-line
    SpecError saying what to give instead."""
    hint = "give a local directory or gs://BUCKET/PREFIX"
    if not isinstance(value, str | os.PathLike):
        raise SpecError(f"must be a directory or a URL, not {type(value).__name__}; {hint}",
                        field=field)
    text = os.fspath(value).strip()
    if not text:
        raise SpecError(f"is empty; {hint}", field=field)
    protocol = _protocol(text)
    if protocol is None or protocol in _LOCAL_PROTOCOLS:
        path = Path(text.split("://", 1)[1] if protocol else text).expanduser()
        # Jobs run in their own working directory: only an absolute path means the same there.
        path = path.resolve()
        if path.exists() and not path.is_dir():
            raise SpecError(f"{str(path)!r} is a file, not a directory; {hint}", field=field)
        return str(path)
    if protocol in _PRIVATE_PROTOCOLS:
        raise SpecError(f"{protocol}:// lives in this process only and a job cannot read it; "
                        f"{hint}", field=field)
    import fsspec

    try:
        fsspec.get_filesystem_class(protocol)
    except ValueError:
        raise SpecError(f"{protocol}:// is not a filesystem fsspec knows; {hint}",
                        field=field) from None
    except ImportError:
        extra = " (pip install 'gcpjobs[gcs]')" if protocol in ("gs", "gcs") else ""
        raise SpecError(f"{protocol}:// needs a package that is not installed{extra}",
                        field=field) from None
    location = text.split("://", 1)[1].strip("/")
    if not location:
        raise SpecError(f"{text!r} names no bucket or directory; e.g. {protocol}://BUCKET/PREFIX",
                        field=field)
    return f"{protocol}://{location}"
