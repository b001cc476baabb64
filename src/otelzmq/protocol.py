"""The frames of a request and of a reply, and their validation.

A request, as the client's REQ socket hands it over (ZeroMQ adds and strips
the routing envelope), is two frames::

    [context, nth]

and a reply is three::

    [context, status, body]

``context`` carries W3C trace context (see :mod:`otelzmq.propagation`); it
may be empty. ``nth`` is the position asked for, in ASCII decimal. ``status``
is ``OK`` with the prime in ASCII decimal as ``body``, or ``ERROR`` with a
one-line UTF-8 reason. ``docs/protocol.md`` is the full description.
"""

from __future__ import annotations

from dataclasses import dataclass

from otelzmq.exceptions import ProtocolError

REQUEST_FRAMES = 2
REPLY_FRAMES = 3
STATUS_OK = b"OK"
STATUS_ERROR = b"ERROR"

#: Longest decimal text accepted for n, so a huge number is refused before
#: it is converted.
_MAX_DIGITS = 20

# Connector messages, sent by clients to the proxy.
CONNECT = b"CONNECT"
DISCONNECT = b"DISCONNECT"
HEARTBEAT = b"HEARTBEAT"
CONNECTOR_MESSAGES = (CONNECT, DISCONNECT, HEARTBEAT)

# Published by the proxy when it shuts down.
KILL = b"KILL"


@dataclass(frozen=True)
class Reply:
    """A decoded reply: either a prime or an error reason."""

    context: bytes
    prime: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def encode_request(context: bytes, nth: int) -> list[bytes]:
    """Return the frames of a request for the nth prime."""
    return [context, str(nth).encode("ascii")]


def parse_nth(frame: bytes, maximum: int) -> int:
    """Decode and check the n of a request.

    Args:
        frame: The nth frame as received.
        maximum: The largest n this server computes.

    Returns:
        n, between 1 and ``maximum``.

    Raises:
        ProtocolError: With a reason fit to send back to the peer.
    """
    if not frame:
        raise ProtocolError("the nth frame is empty")
    if len(frame) > _MAX_DIGITS:
        raise ProtocolError(f"nth is too long ({len(frame)} bytes)")
    text = frame.decode("ascii", errors="replace").strip()
    if not text.lstrip("+-").isdigit():
        raise ProtocolError(f"nth must be a decimal integer, got {text!r}")
    nth = int(text)
    if nth < 1:
        raise ProtocolError(f"nth must be at least 1, got {nth}")
    if nth > maximum:
        raise ProtocolError(f"nth must be at most {maximum}, got {nth}")
    return nth


def decode_request(frames: list[bytes], maximum: int) -> tuple[bytes, int]:
    """Split a request into its context frame and a checked n.

    Raises:
        ProtocolError: If the frame count or n is wrong.
    """
    if len(frames) != REQUEST_FRAMES:
        raise ProtocolError(
            f"a request has {REQUEST_FRAMES} frames (context, nth), got {len(frames)}"
        )
    return frames[0], parse_nth(frames[1], maximum)


def encode_reply(context: bytes, prime: int) -> list[bytes]:
    """Return the frames of a successful reply."""
    return [context, STATUS_OK, str(prime).encode("ascii")]


def encode_error(context: bytes, reason: str) -> list[bytes]:
    """Return the frames of an error reply."""
    return [context, STATUS_ERROR, reason.encode("utf-8", errors="replace")]


def decode_reply(frames: list[bytes]) -> Reply:
    """Decode a reply.

    Raises:
        ProtocolError: If the reply does not follow the protocol.
    """
    if len(frames) != REPLY_FRAMES:
        raise ProtocolError(
            f"a reply has {REPLY_FRAMES} frames (context, status, body), "
            f"got {len(frames)}"
        )
    context, status, body = frames
    if status == STATUS_ERROR:
        return Reply(context, None, body.decode("utf-8", errors="replace"))
    if status != STATUS_OK:
        raise ProtocolError(f"unknown reply status {status[:16]!r}")
    try:
        prime = int(body.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError(f"the reply body {body[:32]!r} is not an integer") from None
    return Reply(context, prime, None)


def ordinal(n: int) -> str:
    """Return n with its English ordinal suffix: 1st, 2nd, 1001st, 12th."""
    if 10 <= n % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
