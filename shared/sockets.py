"""The listening socket every server here binds (the API's processes, the services' telemetry
endpoint): the first address ``host`` resolves to, ``SO_REUSEADDR`` so that a restart does not
wait out the old socket's TIME_WAIT."""

from __future__ import annotations

import socket

__all__ = ["listening_socket"]


def listening_socket(host: str, port: int, *, backlog: int) -> socket.socket:
    """A bound, listening TCP socket on ``host``:``port`` (0: a free port)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock
