"""Loopback ports: pick a free one, or check that a requested one is free."""

from __future__ import annotations

import socket

from fedsim.errors import FedsimError

__all__ = ["LOOPBACK", "free_port", "require_free_port"]

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A port on ``host`` that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def require_free_port(port: int, host: str = LOOPBACK, *, what: str = "port") -> int:
    """Return ``port`` if it can be bound on ``host``, else raise a one-line FedsimError."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise FedsimError(
                f"{what} {host}:{port} is already in use ({exc.strerror}); choose another port or leave it unset"
            ) from exc
    return port
