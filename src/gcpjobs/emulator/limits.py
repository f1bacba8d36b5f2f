"""Size limits every create and update request meets before the emulator stores or runs it.

* **Request size.** Google's API front end refuses a request over 10 MiB with
  INVALID_ARGUMENT "Request payload size exceeds the limit: 10485760 bytes." (the wording seen
  from Cloud Logging, Sheets and other Google APIs over gRPC and REST). The emulator measures
  the request message itself (its protobuf size), whichever transport carried it; the
  transports read at most 32 MiB of a request before refusing it themselves.
* **A process's arguments and environment.** The emulator runs a container's `command + args`
  with its env as a process on this host, where Linux refuses one argument or variable over
  131,072 bytes (MAX_ARG_STRLEN) and all of them together over ARG_MAX (2 MiB here, shared
  with the variables the emulator adds): such a job would be accepted and then fail every
  attempt with "Argument list too long". The emulator refuses it up front instead, at 1 MiB in
  all, and says that this limit is the emulator's, not the service's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import grpc

from gcpjobs.emulator.errors import ServiceError

MAX_REQUEST_BYTES = 10 * 1024 * 1024
REQUEST_TOO_LARGE = f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes."
MAX_ARGUMENT_BYTES = 131_072  # Linux MAX_ARG_STRLEN: one argument or one NAME=value
MAX_PROCESS_BYTES = 1024 * 1024  # all of command, args and env of one container
_HOST_PROCESS = "the gcpjobs emulator runs the container as a process on this host"


def check_request_size(request: Any) -> None:
    """INVALID_ARGUMENT, in Google's words, for a request message over 10 MiB."""
    message = type(request).pb(request) if hasattr(type(request), "pb") else request
    if message.ByteSize() > MAX_REQUEST_BYTES:
        raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, REQUEST_TOO_LARGE)


def process_problems(
    command: Iterable[str], args: Iterable[str], env: Iterable[tuple[str, str]]
) -> Iterator[tuple[str, str]]:
    """(field, message) for each argument or variable this host could not start a process
    with; fields are relative to the container ("args[3]", "env[0].value", "args")."""
    total = 0
    for field, words in (("command", list(command)), ("args", list(args))):
        for index, word in enumerate(words):
            size = len(word.encode("utf-8", "surrogatepass")) + 1
            total += size
            if size > MAX_ARGUMENT_BYTES:
                yield (f"{field}[{index}]", f"This argument is {size - 1:,} bytes; {_HOST_PROCESS}, "
                       f"and Linux allows {MAX_ARGUMENT_BYTES - 1:,} bytes at most for one "
                       "argument. Pass large data in a file instead.")
    for index, (name, value) in enumerate(env):
        size = len(f"{name}={value}".encode("utf-8", "surrogatepass")) + 1
        total += size
        if size > MAX_ARGUMENT_BYTES:
            yield (f"env[{index}].value", f"NAME=value is {size - 1:,} bytes; {_HOST_PROCESS}, "
                   f"and Linux allows {MAX_ARGUMENT_BYTES - 1:,} bytes at most for one "
                   "variable. Pass large data in a file instead.")
    if total > MAX_PROCESS_BYTES:
        yield ("args", f"The command, args and env come to {total:,} bytes; {_HOST_PROCESS}, "
               f"which allows {MAX_PROCESS_BYTES:,} bytes in all for them. Pass large data in a "
               "file instead.")
