"""Sealed envelopes: only the same key, purpose and run open one, and only unchanged."""

from __future__ import annotations

import pytest

from gcpjobs.specs.secrets import looks_secret
from gcpjobs.steps.signing import KEY_ENV, SignatureError, key_from_hex, new_key, seal, unseal


def test_round_trip() -> None:
    key = new_key()
    assert unseal(key, "result", "run1", seal(key, "result", "run1", b"body")) == b"body"


@pytest.mark.parametrize("change", ["body", "mac", "key", "purpose", "run", "truncated", "magic"])
def test_any_change_is_refused(change: str) -> None:
    key = new_key()
    envelope = bytearray(seal(key, "payload", "run1", b"x" * 100))
    purpose, run = "payload", "run1"
    if change == "body":
        envelope[-1] ^= 1
    elif change == "mac":
        envelope[30] ^= 1
    elif change == "key":
        key = new_key()
    elif change == "purpose":
        purpose = "result"
    elif change == "run":
        run = "run2"
    elif change == "truncated":
        envelope = envelope[:20]
    elif change == "magic":
        envelope[0] ^= 1
    with pytest.raises(SignatureError):
        unseal(key, purpose, run, bytes(envelope))


def test_key_text() -> None:
    key = new_key()
    assert key_from_hex(key.hex()) == key
    for bad in ("", "zz", "ab" * 8):
        with pytest.raises(ValueError) as raised:
            key_from_hex(bad)
        assert bad not in str(raised.value) or bad == ""


def test_the_key_variable_looks_secret() -> None:
    assert looks_secret(KEY_ENV)
