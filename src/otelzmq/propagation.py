"""Carry OpenTelemetry context through a ZeroMQ frame.

ZeroMQ messages have no headers, so a message that should continue a trace
gives one of its frames to the context. This module fills that frame from
the current context and reads it back, through the global propagator of the
OpenTelemetry API: W3C trace context and baggage by default, and whatever
``OTEL_PROPAGATORS`` or :func:`opentelemetry.propagate.set_global_textmap`
selects otherwise.

The frame holds the propagator's headers as a small JSON object, for
example ``{"traceparent": "00-...-01"}``. An empty frame means "no context".

Example, in any pyzmq code::

    from opentelemetry import trace
    from otelzmq.propagation import extract_context, inject_context

    # sender
    with tracer.start_as_current_span("send", kind=trace.SpanKind.PRODUCER):
        socket.send_multipart([inject_context(), payload])

    # receiver
    context_frame, payload = socket.recv_multipart()
    with tracer.start_as_current_span(
        "receive", context=extract_context(context_frame),
        kind=trace.SpanKind.CONSUMER,
    ):
        ...

``examples/traced_pair.py`` is the same as a program to run.

Extraction never raises: a missing, oversized or malformed frame gives back
the caller's context unchanged, so the receiver's span simply starts a new
trace.
"""

from __future__ import annotations

import json
import logging

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.context import Context

logger = logging.getLogger(__name__)

#: Largest context frame read; a bigger one is ignored as malformed.
MAX_CONTEXT_BYTES = 8 * 1024

Carrier = dict[str, str]


def inject_context(context: Context | None = None) -> bytes:
    """Return a frame carrying ``context`` (default: the current one).

    Returns:
        The encoded headers, or ``b""`` when the propagator wrote nothing
        (no active span and no baggage).
    """
    carrier: Carrier = {}
    propagate.inject(carrier, context=context)
    if not carrier:
        return b""
    return json.dumps(carrier, separators=(",", ":")).encode("utf-8")


def decode_carrier(frame: bytes) -> Carrier | None:
    """Decode a context frame into headers, or None if it is unusable."""
    if not frame:
        return None
    if len(frame) > MAX_CONTEXT_BYTES:
        logger.debug("Ignoring a %d-byte context frame: too large", len(frame))
        return None
    try:
        value = json.loads(frame.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        logger.debug("Ignoring a context frame that is not JSON: %r", frame[:64])
        return None
    if not isinstance(value, dict):
        logger.debug("Ignoring a context frame that is not an object")
        return None
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def extract_context(frame: bytes, context: Context | None = None) -> Context:
    """Return ``context`` updated with what ``frame`` carries.

    Args:
        frame: A context frame as produced by :func:`inject_context`.
        context: The context to extend (default: the current one).

    Returns:
        The extracted context, or ``context`` unchanged when the frame is
        empty or malformed. Never raises.
    """
    if context is None:
        context = otel_context.get_current()
    carrier = decode_carrier(frame)
    if carrier is None:
        return context
    try:
        return propagate.extract(carrier, context=context)
    except Exception:  # a third-party propagator must not break a request
        logger.warning("The propagator failed on a context frame", exc_info=True)
        return context
