"""otelzmq: clients ask servers for the nth prime through a ZeroMQ proxy.

Every request is traced end to end with OpenTelemetry, and every host records
its spans, metrics and logs locally in the Common Trace Format (CTF), the
format LTTng writes, so that a run can be studied offline or replayed into any
OTLP backend.

The roles live in their own modules: :mod:`otelzmq.proxy`,
:mod:`otelzmq.server` (with its worker threads), :mod:`otelzmq.client` and
:mod:`otelzmq.launcher` (``otelzmq up``). :mod:`otelzmq.propagation` carries
trace context through ZeroMQ frames and can be used on its own.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("otelzmq")
except PackageNotFoundError:  # pragma: no cover - running from a bare tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
