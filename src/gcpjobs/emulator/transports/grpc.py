"""gRPC transport: a generic handler per service, the official messages on the wire."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from typing import Any

import grpc

from gcpjobs.emulator.dispatch import Dispatcher, Method
from gcpjobs.emulator.errors import ServiceError, internal_message
from gcpjobs.emulator.logging.service import MAX_OPEN_TAILS

_log = logging.getLogger(__name__)


class BindError(OSError):
    """The gRPC port could not be bound."""


def _behaviour(dispatcher: Dispatcher, method: Method) -> Callable[[Any, grpc.ServicerContext], Any]:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return dispatcher.call(method, request)
        except ServiceError as error:
            context.abort(error.code, error.message)
        except Exception as error:  # a bug must still answer, and be visible in the log
            _log.exception("%s failed", method.key)
            context.abort(grpc.StatusCode.INTERNAL, internal_message(error))

    return handle


def _streaming_behaviour(
    dispatcher: Dispatcher, method: Method
) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
    """A bidi stream: the service yields responses, or None while it has nothing to send (so
    that a stream the client closed ends within one poll)."""

    def handle(requests: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        responses: Any = None
        try:
            responses = dispatcher.call(method, requests)
            for response in responses:
                if not context.is_active():
                    break
                if response is not None:
                    yield response
        except ServiceError as error:
            context.abort(error.code, error.message)
        except Exception as error:
            _log.exception("%s failed", method.key)
            context.abort(grpc.StatusCode.INTERNAL, internal_message(error))
        finally:
            # Closed now, not when collected: the service frees what the stream held (its
            # place under the cap on open tails) as soon as the stream ends.
            close = getattr(responses, "close", None)
            if close is not None:
                close()

    return handle


def _handlers(dispatcher: Dispatcher) -> Iterable[grpc.GenericRpcHandler]:
    by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
    for method in dispatcher.methods.values():
        if method.streaming:
            handler = grpc.stream_stream_rpc_method_handler(
                _streaming_behaviour(dispatcher, method),
                request_deserializer=method.deserialize,
                response_serializer=method.serialize,
            )
        else:
            handler = grpc.unary_unary_rpc_method_handler(
                _behaviour(dispatcher, method),
                request_deserializer=method.deserialize,
                response_serializer=method.serialize,
            )
        by_service.setdefault(method.service, {})[method.name] = handler
    return [grpc.method_handlers_generic_handler(service, handlers)
            for service, handlers in by_service.items()]


# A sync gRPC server runs each stream on a pool thread for the stream's whole life. The pool
# therefore has the unary workers plus one thread for every stream the services may hold open
# (the Logging service caps open tails at this many), so streams never starve unary calls.
MAX_OPEN_STREAMS = MAX_OPEN_TAILS
MAX_REQUEST_READ_BYTES = 32 * 1024 * 1024


def start_grpc_server(
    dispatcher: Dispatcher, host: str, port: int, *, max_workers: int = 16
) -> tuple[grpc.Server, int]:
    """Bind and start; returns the server and the port it listens on (port 0 picks one).
    `max_workers` threads serve unary calls, beside `MAX_OPEN_STREAMS` for streams."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers + MAX_OPEN_STREAMS,
                                   thread_name_prefix="grpc"),
        # Without so_reuseport 0, a second emulator could bind the same port and share its
        # traffic. Requests up to the REST front's 32 MiB are read (gRPC's default is 4 MiB),
        # so one over the API's 10 MiB gets the service's INVALID_ARGUMENT (limits.py), as
        # from Google's front end, rather than gRPC's own RESOURCE_EXHAUSTED.
        options=[("grpc.so_reuseport", 0),
                 ("grpc.max_receive_message_length", MAX_REQUEST_READ_BYTES)],
    )
    server.add_generic_rpc_handlers(tuple(_handlers(dispatcher)))
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as error:
        raise BindError(f"cannot listen for gRPC on {host}:{port}: {error}") from None
    if not bound:
        raise BindError(f"cannot listen for gRPC on {host}:{port} (is the port in use?)")
    server.start()
    return server, bound
