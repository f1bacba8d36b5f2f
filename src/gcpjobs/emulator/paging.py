"""Paging of list replies (AIP-158), shared by every list method the emulator serves.

The real services document no page-size cap; the emulator uses a small one so that a client
that forgets to follow next_page_token fails here, not in production. Page tokens are opaque,
bound to the request that issued them (filter and scope), survive restarts, and refuse
tampering.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


class InvalidPageToken(ValueError):
    """A page_token the server refuses (not issued by it, altered, or for another request)."""


class InvalidPageSize(ValueError):
    """A negative page_size."""


def effective_page_size(requested: int) -> int:
    """The number of jobs a page holds: 0 means DEFAULT_PAGE_SIZE; larger than MAX_PAGE_SIZE
    is lowered to it (AIP-158: coerce, do not fail); a negative size is refused."""
    if requested < 0:
        raise InvalidPageSize(f"page_size must not be negative (got {requested}); use 0 for the "
                              f"default of {DEFAULT_PAGE_SIZE} or up to {MAX_PAGE_SIZE}")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


# Not a secret: the MAC only detects altered or hand-made tokens, it does not defend against
# an attacker. A fixed key keeps tokens valid across emulator restarts.
_TOKEN_KEY = b"gcpjobs-emulator-page-token-v1"
_TOKEN_VERSION = 1


def encode_page_token(offset: int, filter_text: str, *, scope: str = "") -> str:
    """An opaque next_page_token for the page that starts at `offset` of this listing.

    `scope` binds the token to anything else that must stay the same between pages (the
    parent, for instance); `filter_text` is bound always.
    """
    if offset < 0:
        raise ValueError(f"offset must not be negative, got {offset}")
    payload = json.dumps(
        [_TOKEN_VERSION, offset, _digest(filter_text), _digest(scope)], separators=(",", ":")
    ).encode()
    mac = hmac.new(_TOKEN_KEY, payload, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(payload + mac).decode().rstrip("=")


def decode_page_token(token: str, filter_text: str, *, scope: str = "") -> int:
    """The offset a page token points at; "" (no token) is offset 0.

    Raises `InvalidPageToken` for a token this server did not issue, one that was altered, or
    one issued for a different filter or scope.
    """
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise _not_ours() from None
    payload, mac = raw[:-12], raw[-12:]
    expected = hmac.new(_TOKEN_KEY, payload, hashlib.sha256).digest()[:12]
    if len(raw) <= 12 or not hmac.compare_digest(mac, expected):
        raise _not_ours()
    try:
        version, offset, filter_digest, scope_digest = json.loads(payload)
    except (ValueError, TypeError):  # also a JSON value that is not a four-item list
        raise _not_ours() from None
    if version != _TOKEN_VERSION or type(offset) is not int or offset < 0:
        raise _not_ours()
    if filter_digest != _digest(filter_text):
        raise InvalidPageToken(
            "Invalid page_token: it was issued for a different filter; send the same filter as "
            "the first page, or omit page_token to start from the first page"
        )
    if scope_digest != _digest(scope):
        raise InvalidPageToken(
            "Invalid page_token: it was issued for a different list request; omit page_token "
            "to start from the first page"
        )
    return offset


def _not_ours() -> InvalidPageToken:
    return InvalidPageToken(
        "Invalid page_token: it is not a token this server issued or it was altered; pass "
        "next_page_token unchanged, or omit page_token to start from the first page"
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str  # "" on the last page


def page_of(
    items: Sequence[T], *, page_size: int, page_token: str, filter_text: str = "", scope: str = ""
) -> Page[T]:
    """The page of `items` (already filtered and in list order) that a request asks for.

    Raises InvalidPageSize / InvalidPageToken; the caller turns them into INVALID_ARGUMENT.
    """
    size = effective_page_size(page_size)
    offset = decode_page_token(page_token, filter_text, scope=scope)
    more = offset + size < len(items)
    token = encode_page_token(offset + size, filter_text, scope=scope) if more else ""
    return Page(list(items[offset : offset + size]), token)
