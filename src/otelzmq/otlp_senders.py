"""Send already-encoded OTLP export requests to a receiver.

The senders here take export requests that are already serialized (see
:mod:`otelzmq.replay`) and send them over gRPC or HTTP through the
OpenTelemetry SDK's own OTLP exporters, so that every
``OTEL_EXPORTER_OTLP_*`` variable and its per-signal variant (endpoint,
headers, certificates, insecure, compression, timeout) and the exporters'
retry policy (exponential backoff on UNAVAILABLE and the other transient
gRPC codes, on HTTP 429/502/503/504 and on connection errors, honouring
``RetryInfo`` and ``Retry-After``) behave exactly as for a live
application:

* gRPC: subclasses of the gRPC exporters keep the exporter's channel
  (credentials, compression, options) but give it a stub whose ``Export``
  takes serialized bytes, and make ``_translate_data`` pass the request
  through, so the exporter's ``_export`` (deadline, retries, reconnection)
  sends it unchanged.
* HTTP: the HTTP exporters of opentelemetry-exporter-otlp-proto-http 1.45
  keep their transport, headers, compression and retries in an internal
  client with an ``export(bytes)`` method; we hand it the request.

Both rely on private methods or attributes of the 1.45 exporters, a
conscious trade against re-implementing the OTLP configuration rules. Their
presence is checked when a sender is built, so an incompatible exporter
version fails at once with a clear message instead of losing data.
"""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any, Protocol

__all__ = [
    "GrpcSender",
    "HttpSender",
    "Sender",
    "make_sender",
]

logger = logging.getLogger(__name__)


class Sender(Protocol):
    """Sends one serialized export request; False once retries are exhausted.

    ``last_error`` describes the latest failure, for the summary.
    """

    last_error: str | None

    def send(self, signal: str, request: bytes, resources: int) -> bool: ...

    def shutdown(self) -> None: ...


class _LastError(logging.Handler):
    """Remembers the last error an exporter logged."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call must not break us
            self.message = str(record.msg)


class _RawExport:
    """A gRPC ``Export`` method taking an already-serialized request."""

    def __init__(self, channel: Any, method: str, response_class: type):
        self.Export = channel.unary_unary(
            method,
            request_serializer=_identity,
            response_deserializer=response_class.FromString,
        )


def _identity(data: bytes) -> bytes:
    return data


_GRPC_METHODS = {
    "spans": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}


def _grpc_exporter_classes() -> dict[str, type]:
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
        OTLPLogExporter,
    )
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
        OTLPMetricExporter,
    )
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter,
    )
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceResponse,
    )
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceResponse,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    classes = {}
    for signal, base, response in (
        ("spans", OTLPSpanExporter, ExportTraceServiceResponse),
        ("metrics", OTLPMetricExporter, ExportMetricsServiceResponse),
        ("logs", OTLPLogExporter, ExportLogsServiceResponse),
    ):
        for name in ("_export", "_initialize_channel_and_stub"):
            if not callable(getattr(base, name, None)):
                raise RuntimeError(
                    f"{base.__module__}.{base.__name__} has no {name} method; "
                    "otelzmq replay needs opentelemetry-exporter-otlp-proto-grpc "
                    "1.45"
                )
        classes[signal] = type(
            f"_Raw{base.__name__}",
            (base,),
            {
                "_method": _GRPC_METHODS[signal],
                "_response_class": response,
                "_initialize_channel_and_stub": _raw_channel_and_stub,
                "_translate_data": _pass_request,
                "_count_data": _count_request,
            },
        )
    return classes


def _raw_channel_and_stub(self: Any) -> None:
    """Let the exporter build its channel, then swap in a raw-bytes stub."""
    base = type(self).__mro__[1]
    base._initialize_channel_and_stub(self)
    self._client = _RawExport(self._channel, self._method, self._response_class)


def _pass_request(self: Any, data: tuple[bytes, int]) -> bytes:
    """The request is already serialized: send it as it is."""
    return data[0]


def _count_request(self: Any, data: tuple[bytes, int]) -> int:
    return data[1]


class GrpcSender:
    """Sends export requests with the SDK's OTLP/gRPC exporters.

    Args:
        endpoint: ``http://host:4317`` (plain text) or ``https://...``; None
            uses ``OTEL_EXPORTER_OTLP_[SIGNAL_]ENDPOINT``.

    Raises:
        RuntimeError: the installed exporter lacks the methods used here.
    """

    def __init__(self, endpoint: str | None = None):
        classes = _grpc_exporter_classes()
        self._exporters = {
            signal: cls(endpoint=endpoint) if endpoint else cls()
            for signal, cls in classes.items()
        }
        self.last_error: str | None = None
        # The exporter logs why it gave up but returns only FAILURE: keep
        # the message for the summary.
        self._errors = _LastError()
        self._exporter_logger = logging.getLogger(
            "opentelemetry.exporter.otlp.proto.grpc.exporter"
        )
        self._exporter_logger.addHandler(self._errors)

    def send(self, signal: str, request: bytes, resources: int) -> bool:
        self._errors.message = None
        result = self._exporters[signal]._export((request, resources))
        if getattr(result, "name", "") == "SUCCESS":
            return True
        self.last_error = self._errors.message or "export failed"
        return False

    def shutdown(self) -> None:
        self._exporter_logger.removeHandler(self._errors)
        for exporter in self._exporters.values():
            try:
                exporter.shutdown()
            except Exception:  # noqa: BLE001 - closing must not hide results
                logger.exception("Could not shut the %s exporter down", exporter)


class HttpSender:
    """Sends export requests with the SDK's OTLP/HTTP (protobuf) exporters.

    Args:
        endpoint: base URL such as ``http://host:4318``; ``/v1/traces``,
            ``/v1/metrics`` and ``/v1/logs`` are appended. None uses
            ``OTEL_EXPORTER_OTLP_[SIGNAL_]ENDPOINT``.

    Raises:
        RuntimeError: the installed exporter lacks the internal client used
            here.
    """

    def __init__(self, endpoint: str | None = None):
        from opentelemetry.exporter.otlp.proto.http._log_exporter import (
            OTLPLogExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        self._exporters: dict[str, Any] = {}
        self._clients: dict[str, Any] = {}
        for signal, cls, path in (
            ("spans", OTLPSpanExporter, "v1/traces"),
            ("metrics", OTLPMetricExporter, "v1/metrics"),
            ("logs", OTLPLogExporter, "v1/logs"),
        ):
            url = f"{endpoint.rstrip('/')}/{path}" if endpoint else None
            exporter = cls(endpoint=url) if url else cls()
            client = getattr(exporter, "_client", None)
            if not callable(getattr(client, "export", None)):
                raise RuntimeError(
                    f"{cls.__module__}.{cls.__name__} has no internal client "
                    "with export(bytes); otelzmq replay needs "
                    "opentelemetry-exporter-otlp-proto-http 1.45"
                )
            self._exporters[signal] = exporter
            self._clients[signal] = client
        self.last_error: str | None = None

    def send(self, signal: str, request: bytes, resources: int) -> bool:
        client = self._clients[signal]
        result = client.export(request)
        if getattr(result, "success", False):
            return True
        url = getattr(client, "_endpoint", signal)
        status = getattr(result, "status_code", None)
        reason = getattr(result, "reason", None) or getattr(result, "error", None)
        self.last_error = f"POST {url}: " + (
            f"HTTP {status} {reason or ''}".strip() if status else str(reason)
        )
        return False

    def shutdown(self) -> None:
        for exporter in self._exporters.values():
            try:
                exporter.shutdown()
            except Exception:  # noqa: BLE001 - closing must not hide results
                logger.exception("Could not shut the %s exporter down", exporter)


def make_sender(protocol: str, endpoint: str | None) -> Sender:
    """Build the sender for ``grpc`` or ``http/protobuf``.

    Args:
        protocol: ``grpc`` or ``http/protobuf``.
        endpoint: ``http://`` or ``https://`` URL of the receiver; for HTTP,
            a URL already ending in ``/v1/traces`` (or metrics, logs) is cut
            back to its base. None leaves the choice to the
            ``OTEL_EXPORTER_OTLP_*`` variables.

    Raises:
        ValueError: unknown protocol, or an endpoint without a scheme.
        RuntimeError: the installed exporters lack what is used here.
    """
    if endpoint is not None:
        scheme = urllib.parse.urlsplit(endpoint).scheme
        if scheme not in ("http", "https"):
            raise ValueError(
                f"endpoint {endpoint!r} needs a scheme: http:// (plain text) "
                "or https:// (TLS)"
            )
    if protocol == "grpc":
        return GrpcSender(endpoint)
    if protocol == "http/protobuf":
        if endpoint is not None:
            for path in ("/v1/traces", "/v1/metrics", "/v1/logs"):
                endpoint = endpoint.rstrip("/").removesuffix(path)
        return HttpSender(endpoint)
    raise ValueError(f"unknown OTLP protocol {protocol!r}; use grpc or http/protobuf")
