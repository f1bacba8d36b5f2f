"""What the REST front checks before anything runs: who a request is addressed to, where it comes
from, the admin token, and the limits on what it may carry.

A web page the user opens can send requests to `http://127.0.0.1:8471` (a "simple" request needs
no CORS preflight), and a page on a domain that resolves to 127.0.0.1 (DNS rebinding) can even
read the answers. None of the emulator's own clients is a browser, so the front refuses what only
a browser sends:

- a `Host` that is not the emulator's own address: the address it is bound to or a loopback
  name, with its port (`127.0.0.1:8471`, `localhost:8471`, `[::1]:8471`), or the regional form
  `REGION-HOST:PORT` (`us-central1-127.0.0.1:8471`) that `gcloud` derives from an endpoint
  override; bound to a wildcard address (`--allow-remote`), also the machine's own addresses
  and host name. A request without `Host` is taken (HTTP/1.0 allows it; browsers always send one).
- an `Origin` other than the emulator's own (`http://` + an accepted Host);
- a request in absolute form (a client using the emulator as its HTTP proxy, as gcloud does)
  whose URL names any other host (`accepts_host`; the check is in rest.py);
- a body that is not `application/json` (the only body a page can send cross-origin without a
  preflight is text, a form or multipart);
- on `/_emulator/*`, a request without the admin token: a random value written to
  `DATA_DIR/admin-token` (0600, new each start) that only the user can read.

Only the standard library is imported: `control.py` reads the token without server code.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gcpjobs.emulator.config import ADMIN_TOKEN_FILE

# Request limits, documented in docs/emulator.md (Security model).
MAX_BODY_BYTES = 32 * 1024 * 1024  # a larger body is refused (413) before it is read
MAX_URL_BYTES = 64 * 1024  # the request line; longer: 414
MAX_HEADER_BYTES = 16 * 1024  # one header line; longer: 431
MAX_HEADERS = 100  # more: 431
MAX_JSON_DEPTH = 100  # objects and arrays nested deeper: 400 INVALID_ARGUMENT (protobuf's own limit)

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_WILDCARDS = ("0.0.0.0", "::", "")
# `gcloud run jobs` turns an endpoint override into a regional one, `us-central1-HOST:PORT`.
# No registrable domain has this shape in front of an IP address or `localhost`.
_REGIONAL = re.compile(r"[a-z]+(?:-[a-z]+)+[0-9]+-(.+)")
# Content types a page can send cross-origin without a preflight: never taken, even bodyless.
_SIMPLE_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")


# ------------------------------------------------------------------------------- admin token


def new_admin_token(data_dir: Path) -> str:
    """Write a fresh random token to DATA_DIR/admin-token (0600, atomically); return it."""
    token = secrets.token_urlsafe(32)
    final = data_dir / ADMIN_TOKEN_FILE
    temporary = data_dir / f".{ADMIN_TOKEN_FILE}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, token.encode() + b"\n")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, final)
    return token


def read_admin_token(data_dir: Path) -> str | None:
    """The running emulator's admin token, or None (no emulator started there, or unreadable)."""
    try:
        token = (data_dir / ADMIN_TOKEN_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def remove_admin_token(data_dir: Path, token: str) -> None:
    """Remove the token file if it still holds this emulator's token."""
    if read_admin_token(data_dir) == token:
        with contextlib.suppress(FileNotFoundError):
            (data_dir / ADMIN_TOKEN_FILE).unlink()


def admin_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


# ------------------------------------------------------------------------------- addresses


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the emulator on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bracket(host: str) -> str:
    host = host.strip("[]")
    return f"[{host}]" if ":" in host else host


def _machine_names() -> set[str]:
    """This machine's host name and addresses: what a remote client puts in Host."""
    names = {socket.gethostname()}
    names |= {name.split(".", 1)[0] for name in names}
    try:
        import psutil

        for addresses in psutil.net_if_addrs().values():
            for address in addresses:
                if address.family in (socket.AF_INET, socket.AF_INET6):
                    names.add(address.address.split("%", 1)[0])
    except Exception:
        pass
    return names


def accepted_hosts(bind_host: str, port: int) -> frozenset[str]:
    """Every `Host` value (lower case, `name:port`) taken for an emulator bound to `bind_host`."""
    names = {*_LOOPBACK_NAMES}
    if bind_host.strip("[]") in _WILDCARDS:
        names |= _machine_names()
    else:
        names.add(bind_host)
    hosts = {f"{_bracket(name).lower()}:{port}" for name in names if name}
    if port == 80:  # the default port may be left out
        hosts |= {host.rsplit(":", 1)[0] for host in list(hosts)}
    return frozenset(hosts)


# ------------------------------------------------------------------------------- the checks


def _shown(value: str) -> str:
    """A header value in a message: quoted, short."""
    return json.dumps(value[:80] + ("..." if len(value) > 80 else ""))


class FrontDoor:
    """The checks of one running emulator: its accepted hosts and its admin token."""

    def __init__(self, bind_host: str, port: int, token: str) -> None:
        self.hosts = accepted_hosts(bind_host, port)
        self.origins = frozenset(f"http://{host}" for host in self.hosts)
        self.own = f"{_bracket(bind_host if bind_host not in _WILDCARDS else '127.0.0.1')}:{port}"
        self._token = token.encode()

    def _host_ok(self, host: str) -> bool:
        host = host.strip().lower()
        if host in self.hosts:
            return True
        regional = _REGIONAL.fullmatch(host)
        return regional is not None and regional.group(1) in self.hosts

    def accepts_host(self, host: str) -> bool:
        """Whether `host` (`name:port`) is this emulator's, regional forms included: an
        absolute-form request (`GET http://HOST/... HTTP/1.1`, what a client sends to its HTTP
        proxy) is served only for such a host, so the emulator is never an open proxy."""
        return self._host_ok(host)

    def region_of(self, host: str | None) -> str | None:
        """The region of a regional host (`us-central1-127.0.0.1:8471` → `us-central1`), or
        None for the emulator's own (global) address."""
        if host is None:
            return None
        host = host.strip().lower()
        if host in self.hosts:
            return None
        regional = _REGIONAL.fullmatch(host)
        if regional is None or regional.group(1) not in self.hosts:
            return None
        return host[: -len(regional.group(1)) - 1]

    def refusal(self, headers: Mapping[str, str]) -> str | None:
        """Why a request is refused for where it is addressed or comes from (403), or None."""
        host = headers.get("Host")
        if host is not None and not self._host_ok(host):
            return (f"Host {_shown(host)} is not this emulator's address ({self.own}): the "
                    "emulator answers only requests addressed to it, not web pages on other "
                    "names (DNS rebinding)")
        origin = headers.get("Origin")
        if origin is not None and origin.strip().lower() not in self.origins:
            return (f"Origin {_shown(origin)} is not this emulator (http://{self.own}): the "
                    "emulator does not answer web pages")
        return None

    def admin_allowed(self, headers: Mapping[str, str]) -> bool:
        """Whether the request carries the admin token (Authorization: Bearer, or
        X-Gcpjobs-Admin-Token); compared in constant time."""
        given = headers.get("X-Gcpjobs-Admin-Token")
        if given is None:
            scheme, _, value = headers.get("Authorization", "").strip().partition(" ")
            if scheme.lower() != "bearer":
                return False
            given = value
        return hmac.compare_digest(given.strip().encode("utf-8", "replace"), self._token)


def body_refusal(http_method: str, headers: Mapping[str, str], has_body: bool) -> str | None:
    """Why a request's body (or its declared type) is refused (400), or None: a body must be
    `application/json`; a form or text type is refused even with no body."""
    declared = headers.get("Content-Type")
    media = (declared or "").split(";", 1)[0].strip().lower()
    if media in _SIMPLE_TYPES or (has_body and media != "application/json"):
        what = f"Content-Type {_shown(declared)}" if declared is not None else "no Content-Type"
        return (f"Invalid request: {http_method} with {what}; send the body as JSON with "
                "Content-Type: application/json")
    return None


# ------------------------------------------------------------------------------- JSON bodies


class JsonBodyError(ValueError):
    """A body that is not JSON, or nested deeper than MAX_JSON_DEPTH (one line)."""


def _too_deep(document: Any, limit: int) -> bool:
    stack: list[tuple[Iterable[Any], int]] = []
    if isinstance(document, (dict, list)):
        stack.append((document.values() if isinstance(document, dict) else document, 1))
    while stack:
        children, depth = stack.pop()
        if depth > limit:
            return True
        for child in children:
            if isinstance(child, dict):
                stack.append((child.values(), depth + 1))
            elif isinstance(child, list):
                stack.append((child, depth + 1))
    return False


def load_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads` with a bound on nesting; JsonBodyError (one line) when it is not JSON."""
    try:
        document = json.loads(body)
    except RecursionError:
        raise JsonBodyError(f"objects and arrays nested deeper than {max_depth} levels") from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise JsonBodyError(" ".join(str(error).split())) from None
    if _too_deep(document, max_depth):
        raise JsonBodyError(f"objects and arrays nested deeper than {max_depth} levels")
    return document
