"""What goes inside the sealed envelopes: the call (function and arguments) and its outcome.

Each body is a small JSON header followed by a cloudpickle. The header is what either side
must know before unpickling anything: which code archive to put on `sys.path` first (the
pickle may name modules that only the archive has), and, for an outcome, the exception's type
name and remote traceback, so those survive even when the exception itself cannot be rebuilt.

Standard library, cloudpickle and `gcpjobs.stepnames` only: the job's entry point imports
this module.
"""

from __future__ import annotations

import json
import pickle
import struct
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

# Where it always was; the name itself is on the ground floor, which the run history reads.
from gcpjobs.stepnames import ENTRYPOINT_MODULE as ENTRYPOINT_MODULE

FORMAT = 1
# Set in a step's job, to its run id: code can tell it runs remotely (and `remote` skips
# checking settings again when the job imports the user's module).
RUN_ID_ENV = "GCPJOBS_STEP_RUN_ID"

OutcomeKind = Literal["returned", "raised", "refused"]
_LENGTH = struct.Struct(">I")


class PayloadError(Exception):
    """A body that is not what this version of gcpjobs writes."""


def first_line(text: str | None) -> str:
    """The first non-blank line of a message (messages gcpjobs shows are one line)."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def python_version() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def function_name(function: Callable[..., Any]) -> str:
    target: Any = function
    while hasattr(target, "func") and not hasattr(target, "__code__"):  # functools.partial
        target = target.func
    qualname = getattr(target, "__qualname__", None) or type(target).__qualname__
    module = getattr(target, "__module__", None)
    return f"{module}.{qualname}" if module else str(qualname)


def _frame(header: Mapping[str, Any], pickled: bytes) -> bytes:
    text = json.dumps(dict(header), separators=(",", ":")).encode()
    return _LENGTH.pack(len(text)) + text + pickled


def _unframe(body: bytes, what: str) -> tuple[dict[str, Any], bytes]:
    try:
        (length,) = _LENGTH.unpack_from(body)
        header = json.loads(body[_LENGTH.size:_LENGTH.size + length])
    except (struct.error, ValueError) as error:
        raise PayloadError(f"the {what} has no readable header ({error})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else None
        raise PayloadError(
            f"the {what} is in format {found!r}, not {FORMAT}: caller and job run different "
            "gcpjobs versions; install the caller's version in the image"
        )
    return header, body[_LENGTH.size + length:]


# ----------------------------------------------------------------------------------- the call


@dataclass(frozen=True)
class CallHeader:
    function: str  # module.qualname, for messages
    code: str | None  # the code archive's digest, or None when the image has the code
    python: str  # the caller's major.minor: functions pickled by value need the same one
    format: int = FORMAT


def _attribute_path(root: Any, qualname: str) -> Any:
    for part in qualname.split("."):
        root = getattr(root, part)
    return root


def resolve_function(module_name: str, qualname: str, unwrap: int = 1) -> Any:
    """In the job: the function a decorator wrapped, found from its module's attribute by
    following `__wrapped__` `unwrap` times (a `remote` wrapper, maybe inside a Prefect task)."""
    import importlib

    found = _attribute_path(importlib.import_module(module_name), qualname)
    for _ in range(unwrap):
        found = found.__wrapped__
    return found


class _WrappedFunction:
    """Pickles a decorated module-level function by reference (its module and name), as
    cloudpickle does for plain ones. cloudpickle would pickle it by value, because the
    module's attribute is the decorator's wrapper, and a function pickled by value loses its
    file name: its remote traceback would show no file and no source lines."""

    def __init__(self, module_name: str, qualname: str, unwrap: int) -> None:
        self.module_name = module_name
        self.qualname = qualname
        self.unwrap = unwrap

    def __reduce__(self) -> tuple[Any, tuple[str, str, int]]:
        return resolve_function, (self.module_name, self.qualname, self.unwrap)


_MAX_UNWRAP = 4


def _by_reference(function: Callable[..., Any]) -> Any:
    module_name = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", "")
    module = sys.modules.get(module_name) if isinstance(module_name, str) else None
    if module is None or module_name == "__main__" or "<locals>" in qualname:
        return function
    try:
        found = _attribute_path(module, qualname)
    except AttributeError:
        return function
    for unwrap in range(1, _MAX_UNWRAP + 1):
        found = getattr(found, "__wrapped__", None)
        if found is None:
            break
        if found is function:
            return _WrappedFunction(module.__name__, qualname, unwrap)
    return function


def encode_call(
    header: CallHeader, function: Callable[..., Any], args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> bytes:
    import cloudpickle

    call = (_by_reference(function), args, dict(kwargs))
    pickled = cloudpickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL)
    return _frame(asdict(header), pickled)


def decode_call(body: bytes) -> tuple[CallHeader, bytes]:
    """The header, and the pickled call to load once the code is on `sys.path`."""
    header, pickled = _unframe(body, "payload")
    try:
        return CallHeader(**header), pickled
    except TypeError as error:
        raise PayloadError(f"the payload's header is not understood ({error})") from None


def load_call(pickled: bytes) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    function, args, kwargs = pickle.loads(pickled)
    return function, tuple(args), dict(kwargs)


# -------------------------------------------------------------------------------- the outcome


@dataclass(frozen=True)
class Outcome:
    """How the call ended: a value, an exception, or a payload the job refused to run."""

    kind: OutcomeKind
    pickled: bytes = b""  # the value, or the exception (empty if it could not be pickled)
    type_name: str | None = None  # the exception's module.qualname
    message: str | None = None  # str(exception), or why the job refused
    traceback: str | None = None  # formatted in the job
    format: int = FORMAT


def encode_outcome(outcome: Outcome) -> bytes:
    header = asdict(outcome)
    pickled = header.pop("pickled")
    return _frame(header, pickled)


def decode_outcome(body: bytes) -> Outcome:
    header, pickled = _unframe(body, "result")
    if header.get("kind") not in ("returned", "raised", "refused"):
        raise PayloadError(f"the result's kind {header.get('kind')!r} is not understood")
    try:
        return Outcome(pickled=pickled, **header)
    except TypeError as error:
        raise PayloadError(f"the result's header is not understood ({error})") from None
