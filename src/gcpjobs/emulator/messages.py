"""Helpers for the protobuf messages the services keep and hand out.

The services hold proto-plus wrappers (`CustomJob`, `run_v2.Job`) and answer with
`google.longrunning.Operation`s, whose metadata and response are packed `Any`s; both kinds of
message pass through here, so a record is copied and a message packed one way everywhere.
"""

from __future__ import annotations

from typing import TypeVar, cast

import proto
from google.protobuf import any_pb2
from google.protobuf.message import Message as RawMessage

Wrapped = TypeVar("Wrapped", bound=proto.Message)


def copy(message: Wrapped) -> Wrapped:
    """A deep copy of a proto-plus message: records are replaced, never changed in place, so a
    reader holding the old one never sees a half-made change."""
    cls = type(message)
    duplicate = type(cls.pb(message))()
    duplicate.CopyFrom(cls.pb(message))
    return cast(Wrapped, cls.wrap(duplicate))


def pack(message: proto.Message | RawMessage) -> any_pb2.Any:
    """`message` in an `Any`, whether a proto-plus wrapper or a raw protobuf message."""
    raw = type(message).pb(message) if isinstance(message, proto.Message) else message
    packed = any_pb2.Any()
    packed.Pack(raw)
    return packed
