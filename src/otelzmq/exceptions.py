"""The errors otelzmq raises where a caller can act on them.

- :class:`OtelZmqError` is the base of everything below.
- :class:`ProtocolError`: a message does not follow the wire protocol; its
  text is sent back to the peer in an error reply.
- :class:`PortInUseError`: a socket could not bind because its port is
  taken; carries the endpoint so the operator knows which one.
- :class:`RequestFailed`: a client gave up on a request after its retries.
"""

from __future__ import annotations


class OtelZmqError(Exception):
    """Base class of otelzmq's own errors."""


class ProtocolError(OtelZmqError):
    """A message that does not follow ``docs/protocol.md``."""


class PortInUseError(OtelZmqError):
    """A socket could not bind because the address is already in use.

    Attributes:
        endpoint: The endpoint that could not be bound.
        role: Which socket it was for (``frontend``, ``backend`` ...).
    """

    def __init__(self, role: str, endpoint: str) -> None:
        super().__init__(
            f"cannot bind the {role} socket to {endpoint}: the port is already "
            "in use (is another proxy running? choose other ports with "
            f"--{role}-port)"
        )
        self.role = role
        self.endpoint = endpoint


class RequestFailed(OtelZmqError):
    """A request got no usable reply after every attempt.

    Attributes:
        nth: The n that was asked for.
        attempts: How many times the request was sent.
    """

    def __init__(self, nth: int, attempts: int, reason: str) -> None:
        super().__init__(
            f"request for nth={nth} failed after {attempts} attempt(s): {reason}"
        )
        self.nth = nth
        self.attempts = attempts
        self.reason = reason
