"""Small pyzmq helpers shared by the hosts."""

from __future__ import annotations

import errno

import zmq

from otelzmq.config import DEFAULT_MAX_MESSAGE_BYTES
from otelzmq.exceptions import PortInUseError


def bind(socket: zmq.Socket, role: str, endpoint: str) -> None:
    """Bind ``socket`` to ``endpoint``, naming the port if it is taken.

    Raises:
        PortInUseError: If another process holds the address.
    """
    try:
        socket.bind(endpoint)
    except zmq.ZMQError as error:
        if error.errno == errno.EADDRINUSE:
            raise PortInUseError(role, endpoint) from None
        raise


def limit_message_size(
    socket: zmq.Socket, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> None:
    """Make libzmq drop peers that send messages larger than ``max_bytes``."""
    socket.setsockopt(zmq.MAXMSGSIZE, max_bytes)


def receive(socket: zmq.Socket) -> tuple[list[bytes], str | None]:
    """Receive a whole multipart message and the sender's IP address.

    Returns:
        The frames as bytes, and the peer's address as libzmq reports it
        for TCP connections (None for inproc or when unknown).
    """
    frames = socket.recv_multipart(copy=False)
    try:
        peer = frames[0].get("Peer-Address")
    except zmq.ZMQError:
        peer = None
    return [frame.bytes for frame in frames], peer
