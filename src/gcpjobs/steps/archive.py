"""The code a remote step needs that its image does not have: a content-addressed archive of
the directory the function comes from.

Which directory (`code_root_of`): the one on `sys.path` that the function's module was
imported from. For `mypkg.train.fit` in `/work/proj/src/mypkg/train.py` that is
`/work/proj/src`; for a script's function (`__main__`) the script's directory; for a notebook
or the REPL the working directory. Functions of installed modules (site-packages, the
standard library) need no archive: the image has them, or should.

What goes in: every file below that directory except hidden files and directories (`.git`,
`.venv`, `.env` ...), `__pycache__`, compiled files, virtual environments, `*.egg-info`,
`node_modules`, and `build`/`dist` at the top; the artifact store too, if it lies inside.

The address (`digest`) is a SHA-256 over each file's path, executable bit and content hash, so
an unchanged directory has the same address on every call and is uploaded once. File hashes
are remembered per process by (size, mtime, inode), so a second call reads no file again.

The job extracts the archive (`install`), recomputing the digest as it goes, and refuses one
whose digest is not the one its signed payload names. Standard library only: the job's entry
point imports this module.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import shutil
import stat
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Beyond these the directory is almost surely not just code (a data set, a home directory).
MAX_FILES = 20_000
MAX_BYTES = 256 * 1024 * 1024

_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})
_SKIPPED_TOP_DIRS = frozenset({"build", "dist"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo", ".egg-info")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so that the same files make the same bytes


class ArchiveError(Exception):
    """The code archive cannot be made, or a job's copy does not match its digest."""


@dataclass(frozen=True)
class ArchiveFile:
    path: str  # relative, with '/' separators
    source: Path
    size: int
    executable: bool
    sha256: str


@dataclass(frozen=True)
class CodeArchive:
    root: Path
    files: tuple[ArchiveFile, ...]
    digest: str

    @property
    def size(self) -> int:
        """Bytes of the files (uncompressed)."""
        return sum(file.size for file in self.files)

    def build_zip(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED,
                             compresslevel=6) as archive:
            for file in self.files:
                info = zipfile.ZipInfo(file.path, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (0o755 if file.executable else 0o644) << 16
                archive.writestr(info, file.source.read_bytes())
        return buffer.getvalue()


# ---------------------------------------------------------------------------- which directory


@functools.lru_cache(maxsize=1)
def _installed_prefixes() -> tuple[Path, ...]:
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    places = [paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib") if name in paths]
    places += site.getsitepackages() if hasattr(site, "getsitepackages") else []
    user_site = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if isinstance(user_site, str):
        places.append(user_site)
    return tuple(Path(place).resolve() for place in places)


def is_installed(path: Path) -> bool:
    """Whether `path` belongs to the interpreter or an installed distribution."""
    resolved = path.resolve()
    return any(resolved.is_relative_to(prefix) for prefix in _installed_prefixes())


def code_root_of(function: Callable[..., Any]) -> Path | None:
    """The `sys.path` directory `function`'s module came from; None when it needs no archive."""
    target: Any = function
    while hasattr(target, "func") and not hasattr(target, "__code__"):  # functools.partial
        target = target.func
    module_name = getattr(target, "__module__", None)
    if not isinstance(module_name, str) or module_name not in sys.modules:
        return None
    module = sys.modules[module_name]
    file = getattr(module, "__file__", None)
    if module_name == "__main__":
        spec = getattr(module, "__spec__", None)
        if file is None:
            return Path.cwd().resolve()  # a notebook or the REPL: local modules sit beside it
        if spec is None or not spec.name or spec.name == "__main__":
            return Path(file).resolve().parent  # `python script.py`: sys.path[0]
        module_name = spec.name  # `python -m pkg.mod`
    if file is None:
        return None  # built in, frozen, or a namespace package
    path = Path(file).resolve()
    if is_installed(path):
        return None
    depth = module_name.count(".") + (1 if path.stem == "__init__" else 0)
    root = path.parent
    for _ in range(depth):
        root = root.parent
    return root


# ------------------------------------------------------------------------------- what goes in


def _is_virtualenv(directory: Path) -> bool:
    return (directory / "pyvenv.cfg").exists()


def _walk(root: Path, excluded: frozenset[Path]) -> Iterator[tuple[str, os.DirEntry[str]]]:
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                name = entry.name
                if name.startswith(".") or name.endswith(_SKIPPED_SUFFIXES):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    path = Path(entry.path)
                    if (name in _SKIPPED_DIRS or (not prefix and name in _SKIPPED_TOP_DIRS)
                            or path in excluded or _is_virtualenv(path)):
                        continue
                    stack.append((path, f"{prefix}{name}/"))
                elif entry.is_file():
                    yield f"{prefix}{name}", entry


_hash_cache: dict[str, tuple[tuple[int, int, int], str]] = {}
_hash_lock = threading.Lock()


def _file_sha256(path: str, signature: tuple[int, int, int]) -> str:
    with _hash_lock:
        cached = _hash_cache.get(path)
    if cached is not None and cached[0] == signature:
        return cached[1]
    hasher = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            hasher.update(chunk)
    digest = hasher.hexdigest()
    with _hash_lock:
        _hash_cache[path] = (signature, digest)
    return digest


def manifest_digest(entries: Iterable[tuple[str, bool, str]]) -> str:
    """The archive's address: over (path, executable, content hash), in path order."""
    digest = hashlib.sha256(b"gcpjobs-code-archive-1\n")
    for path, executable, sha in sorted(entries):
        digest.update(f"{path}\0{'x' if executable else '-'}\0{sha}\n".encode())
    return digest.hexdigest()


def scan(root: Path, *, exclude: Iterable[Path] = ()) -> CodeArchive:
    """The archive of `root` (not built: `build_zip` does that when the store lacks it)."""
    root = root.resolve()
    if not root.is_dir():
        raise ArchiveError(f"{root} is not a directory")
    excluded = frozenset(path.resolve() for path in exclude)
    files: list[ArchiveFile] = []
    total = 0
    for relative, entry in _walk(root, excluded):
        info = entry.stat()
        total += info.st_size
        if len(files) >= MAX_FILES or total > MAX_BYTES:
            raise ArchiveError(
                f"{root} holds more than {MAX_FILES} files or {MAX_BYTES // 2**20} MiB besides "
                "hidden and build directories; give code_dir= the directory of your code only, "
                "or code_dir=False when the image has it"
            )
        signature = (info.st_size, info.st_mtime_ns, info.st_ino)
        files.append(ArchiveFile(
            path=relative,
            source=Path(entry.path),
            size=info.st_size,
            executable=bool(info.st_mode & stat.S_IXUSR),
            sha256=_file_sha256(entry.path, signature),
        ))
    files.sort(key=lambda file: file.path)
    digest = manifest_digest((file.path, file.executable, file.sha256) for file in files)
    return CodeArchive(root=root, files=tuple(files), digest=digest)


# ------------------------------------------------------------------------------ the job's side


def _private_cache() -> Path | None:
    """A per-user directory for extracted archives, or None if it is not safely ours (on a
    shared host another user could plant code there)."""
    getuid = getattr(os, "getuid", None)
    owner = getuid() if getuid is not None else None
    cache = Path(tempfile.gettempdir()) / f"gcpjobs-steps-{owner if owner is not None else 'user'}"
    try:
        cache.mkdir(mode=0o700, exist_ok=True)
        info = cache.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_mode & 0o077:
        return None
    if owner is not None and info.st_uid != owner:
        return None
    return cache


def _extract(archive_bytes: bytes, destination: Path) -> str:
    """Write every member below `destination`; the digest of what was written."""
    entries: list[tuple[str, bool, str]] = []
    with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
        for info in archive.infolist():
            name = info.filename
            parts = name.split("/")
            if info.is_dir() or name.startswith("/") or ".." in parts or "\\" in name:
                raise ArchiveError(f"the code archive holds an unsafe path {name!r}")
            data = archive.read(info)
            executable = bool((info.external_attr >> 16) & stat.S_IXUSR)
            target = destination.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            if executable:
                target.chmod(0o755)
            entries.append((name, executable, hashlib.sha256(data).hexdigest()))
    return manifest_digest(entries)


def install(archive_bytes: bytes, digest: str) -> Path:
    """Extract the archive whose address is `digest` and return its directory, reusing one
    extracted before on this machine. ArchiveError if the content does not match `digest`."""
    cache = _private_cache()
    final = cache / digest if cache is not None else None
    if final is not None and final.is_dir():
        return final
    staging = Path(tempfile.mkdtemp(prefix=f"code-{digest[:12]}-", dir=cache))
    try:
        try:
            found = _extract(archive_bytes, staging)
        except (ArchiveError, OSError):
            raise
        except Exception as error:  # a damaged zip fails in zipfile's or zlib's own ways
            raise ArchiveError(f"the code archive is damaged ({type(error).__name__}: "
                               f"{error}): it was changed in the store") from None
        if found != digest:
            raise ArchiveError(
                f"the code archive's content ({found[:12]}...) is not the one the payload names "
                f"({digest[:12]}...): it was changed in the store"
            )
        if final is None:
            return staging
        try:
            staging.rename(final)
        except OSError:  # another job on this machine extracted it first
            shutil.rmtree(staging, ignore_errors=True)
            if not final.is_dir():
                raise
        return final
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
