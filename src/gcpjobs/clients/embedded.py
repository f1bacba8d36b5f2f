"""The embedded emulator: what the client talks to when neither an emulator nor a Google project
is configured.

This is the ONE module on the client side that imports `gcpjobs.emulator` (its `control` part
only: the standard library and psutil, no server code). The emulator runs as a detached
background process that outlives this one and is shared by every client on the machine that
uses the same data dir; `gcpjobs emulator stop` ends it.
"""

from __future__ import annotations

import socket

START_TIMEOUT_SECONDS = 30.0


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def embedded_emulator_addresses() -> tuple[str, str]:
    """Find the emulator of the default data dir, or start one; its gRPC address and REST
    endpoint. Raises EmulatorError (one line) if it cannot start. (`target.py` makes the
    Target of them: this module does not import it, so the two make no circle.)"""
    from gcpjobs.emulator.config import (
        DEFAULT_GRPC_PORT,
        DEFAULT_HOST,
        DEFAULT_REST_PORT,
        EmulatorConfig,
        default_data_dir,
    )
    from gcpjobs.emulator.control import running_emulator, start_detached

    data_dir = default_data_dir()
    info = running_emulator(data_dir)
    if info is None:
        # The documented ports when they are free (so `GCPJOBS_EMULATOR_HOST=127.0.0.1:8470`
        # reaches it); any free ones otherwise: clients find it through the data dir anyway.
        defaults_free = _port_free(DEFAULT_HOST, DEFAULT_GRPC_PORT) and _port_free(
            DEFAULT_HOST, DEFAULT_REST_PORT
        )
        port_pair = (DEFAULT_GRPC_PORT, DEFAULT_REST_PORT) if defaults_free else (0, 0)
        config = EmulatorConfig(
            host=DEFAULT_HOST, grpc_port=port_pair[0], rest_port=port_pair[1], data_dir=data_dir
        )
        info = start_detached(config, timeout=START_TIMEOUT_SECONDS)
    return info.grpc_address, info.rest_endpoint
