"""The job's side of a remote step: `python -m gcpjobs.steps.entrypoint RUN_URL`.

1. Read the call's key from the Secret Manager secret version `$GCPJOBS_STEP_KEY_SECRET` names
   (keys.py; into memory only: it is never put in any environment), then the payload from
   `RUN_URL/payload`, and verify its signature; a payload that does not verify is refused
   (nothing is unpickled).
2. Mark the run started (so a caller can tell "never started" from "died while running").
3. Extract the code archive the payload names, check it against its digest, and put it first
   on `sys.path`.
4. Run the function (awaiting it if it is a coroutine function).
5. Write the outcome (the return value, or the exception with its traceback), sealed with the
   same key, to `RUN_URL/result`.

Exit status: 0 the function returned; 1 it raised; 2 the step could not run (the payload was
refused, the key or the store could not be read, or the store not written). This module
starts fast: importing it loads no Google library, no pydantic and, for a local store, not
even fsspec; the Secret Manager client is loaded when the key is read.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections.abc import Sequence

from gcpjobs.steps.archive import ArchiveError, install
from gcpjobs.steps.payload import (
    ENTRYPOINT_MODULE,
    RUN_ID_ENV,
    Outcome,
    PayloadError,
    decode_call,
    encode_outcome,
    load_call,
    python_version,
)
from gcpjobs.steps.signing import KEY_SECRET_ENV, SignatureError, seal, unseal
from gcpjobs.steps.store import (
    PAYLOAD,
    RESULT,
    STARTED,
    ArtifactStore,
    code_key,
    open_store,
    run_key,
    split_run_url,
)

EXIT_RETURNED = 0
EXIT_RAISED = 1
EXIT_NOT_RUN = 2


def _say(text: str) -> None:
    print(f"gcpjobs step: {text}", file=sys.stderr, flush=True)


def _type_name(error: BaseException) -> str:
    kind = type(error)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _raised(error: BaseException, *, skip_frames: int = 0) -> Outcome:
    """The outcome for an exception; its traceback without the entry point's own frames."""
    trace = error.__traceback__
    for _ in range(skip_frames):
        if trace is not None and trace.tb_next is not None:
            trace = trace.tb_next
    text = "".join(traceback.format_exception(type(error), error, trace))
    try:
        import cloudpickle

        pickled = cloudpickle.dumps(error)
    except Exception:  # an exception holding something unpicklable: its name and text remain
        pickled = b""
    return Outcome(kind="raised", pickled=pickled, type_name=_type_name(error),
                   message=str(error), traceback=text)


def _call(pickled: bytes) -> Outcome:
    try:
        function, args, kwargs = load_call(pickled)
    except BaseException as error:  # e.g. a module the image lacks
        return _raised(error)
    try:
        value = function(*args, **kwargs)
        if hasattr(value, "__await__") and hasattr(value, "send"):  # a coroutine
            import asyncio

            value = asyncio.run(value)
    except BaseException as error:  # SystemExit and KeyboardInterrupt are outcomes too
        return _raised(error, skip_frames=1)
    try:
        import cloudpickle

        return Outcome(kind="returned", pickled=cloudpickle.dumps(value))
    except Exception as error:
        if hasattr(error, "add_note"):  # Python 3.11+
            error.add_note(f"the return value of {getattr(function, '__qualname__', function)} "
                           "could not be pickled to send it back")
        return _raised(error)


def _refused(reason: str) -> Outcome:
    return Outcome(kind="refused", message=reason)


def _mark_started(store: ArtifactStore, run_id: str) -> None:
    try:
        store.write(run_key(run_id, STARTED), b"")
    except Exception as error:  # only a hint for the caller is lost; the step can still run
        _say(f"cannot mark the run started: {error}")


def _run(store: ArtifactStore, run_id: str, key: bytes) -> Outcome:
    try:
        body = unseal(key, "payload", run_id, store.read(run_key(run_id, PAYLOAD)))
        header, pickled = decode_call(body)
    except (SignatureError, PayloadError) as error:
        return _refused(str(error))
    _say(f"running {header.function}")
    if header.python != python_version():
        _say(f"warning: the caller runs Python {header.python} and this job {python_version()}; "
             "a function pickled by value may not load")
    started = threading.Thread(target=_mark_started, args=(store, run_id), daemon=True)
    started.start()  # in the background: on a remote store this is a round trip
    try:
        if header.code is not None:
            try:
                directory = install(store.read(code_key(header.code)), header.code)
            except FileNotFoundError:
                return _refused(f"the code archive {code_key(header.code)} is not in the store")
            except ArchiveError as error:
                return _refused(str(error))
            sys.path.insert(0, str(directory))
        return _call(pickled)
    finally:
        started.join()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) != 1:
        _say(f"usage: python -m {ENTRYPOINT_MODULE} RUN_URL")
        return EXIT_NOT_RUN
    # Taken out of the environment: the function and what it starts have no use for it.
    key_secret = os.environ.pop(KEY_SECRET_ENV, "")
    if not key_secret:
        _say(f"{KEY_SECRET_ENV} is not set; remote steps are started by gcpjobs.remote / "
             "run_remote")
        return EXIT_NOT_RUN
    try:
        store_url, run_id = split_run_url(arguments[0])
    except ValueError as error:
        _say(str(error))
        return EXIT_NOT_RUN
    try:
        from gcpjobs.steps.keys import read_key

        key = read_key(key_secret)
    except Exception as error:  # the Secret Manager client's, or a malformed key
        _say(f"cannot read the step's key from Secret Manager ({key_secret}): "
             f"{type(error).__name__}: {getattr(error, 'message', None) or error}; on Google "
             "Cloud the job's service account needs roles/secretmanager.secretAccessor on it")
        return EXIT_NOT_RUN
    os.environ[RUN_ID_ENV] = run_id
    try:
        store = open_store(store_url)  # fsspec, or the store's own package, may be missing
        outcome = _run(store, run_id, key)
    except Exception as error:  # the store's (the function's own are in the outcome)
        _say(f"cannot read the step from {arguments[0]}: {type(error).__name__}: {error}")
        return EXIT_NOT_RUN
    try:
        store.write(run_key(run_id, RESULT),
                    seal(key, "result", run_id, encode_outcome(outcome)))
    except Exception as error:
        _say(f"cannot write the result to {store.url_of(run_key(run_id, RESULT))}: {error}")
        return EXIT_NOT_RUN
    if outcome.kind == "refused":
        _say(f"refused: {outcome.message}")
        return EXIT_NOT_RUN
    _say(f"{outcome.kind}; result written to {store.url_of(run_key(run_id, RESULT))}")
    return EXIT_RETURNED if outcome.kind == "returned" else EXIT_RAISED


if __name__ == "__main__":
    sys.exit(main())
