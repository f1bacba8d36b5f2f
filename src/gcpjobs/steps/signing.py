"""Sealed envelopes: what a remote step writes to the artifact store, signed with HMAC-SHA256.

Each call gets its own random key; the caller keeps it in memory and the job reads it from a
per-run Secret Manager secret whose version's name is all its environment holds
(`KEY_SECRET_ENV`; see keys.py). The key is never in the store, the job's spec or any
process's environment. Both sides refuse an envelope whose signature does
not match *before* unpickling anything in it, so a store that others can write to cannot make
either side run their code.

The MAC covers what the envelope is for (`payload` or `result`) and the run's id as well as
the body, so a payload cannot be passed off as a result, nor one run's envelope as another's.

Standard library and `gcpjobs.stepnames` only: the job's entry point imports this module.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

# Where it always was; the name itself is on the ground floor, which the run history reads.
from gcpjobs.stepnames import KEY_SECRET_ENV as KEY_SECRET_ENV

# Where older gcpjobs put the key itself; refused in a step's env so that it is never set by hand.
KEY_ENV = "GCPJOBS_STEP_KEY"
KEY_BYTES = 32

_MAGIC = b"gcpjobs-step-envelope-1\n"
_MAC_BYTES = hashlib.sha256().digest_size


class SignatureError(Exception):
    """An envelope is not one this key sealed for this purpose and run."""


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def key_from_hex(text: str) -> bytes:
    """The key as its secret holds it (hex); ValueError (without the value) if malformed."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise ValueError("the step key is not hex") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"the step key holds {len(key)} bytes, not {KEY_BYTES}")
    return key


def _mac(key: bytes, purpose: str, run_id: str, body: bytes) -> bytes:
    signer = hmac.new(key, digestmod=hashlib.sha256)
    signer.update(f"{purpose}\0{run_id}\0".encode())
    signer.update(body)
    return signer.digest()


def seal(key: bytes, purpose: str, run_id: str, body: bytes) -> bytes:
    return _MAGIC + _mac(key, purpose, run_id, body) + body


def unseal(key: bytes, purpose: str, run_id: str, envelope: bytes) -> bytes:
    """The body of `envelope`, or SignatureError if it was not sealed with `key` for this
    purpose and run (or was changed since)."""
    if not envelope.startswith(_MAGIC) or len(envelope) < len(_MAGIC) + _MAC_BYTES:
        raise SignatureError(f"the {purpose} is not a gcpjobs step envelope")
    mac_end = len(_MAGIC) + _MAC_BYTES
    body = envelope[mac_end:]
    if not hmac.compare_digest(envelope[len(_MAGIC):mac_end], _mac(key, purpose, run_id, body)):
        raise SignatureError(
            f"the {purpose}'s signature does not match: it was changed after it was written, "
            "or belongs to another run"
        )
    return body
