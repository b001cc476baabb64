"""OpenTelemetry SDK exporters that record spans, metrics and logs as CTF.

Each exporter encodes its batch with the SDK's own OTLP protobuf encoders
and writes one event per ``ResourceSpans``/``ResourceMetrics``/
``ResourceLogs`` message into its own stream of the process's trace (see
:mod:`otelzmq.ctf.writer`): ``opentelemetry:resource_spans`` and so on, with
the serialized message as the payload and the exporting thread's native id
as ``_vtid``. These are the events an LTTng-UST tracepoint provider of the
same name would record, so either tool's trace can be replayed.

The exporters are registered as the ``ctf`` entry point of the SDK's
exporter groups, so ``OTEL_TRACES_EXPORTER=ctf`` (and the metrics and logs
equivalents) selects them. They are built without arguments there; the
trace folder then comes from ``OTELZMQ_CTF_DIR``, else
``<OTELZMQ_OUT or out>/ctf-traces/<OTELZMQ_HOST_NAME or the host name>``.

Failures never reach the SDK as exceptions: an encoding or I/O error is
logged and the batch is reported as failed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.metrics.view import Aggregation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otelzmq.ctf.metadata import EVENT_IDS
from otelzmq.ctf.writer import (
    DEFAULT_MAX_PACKET_SIZE,
    CtfStream,
    CtfWriterError,
    open_trace,
)

try:
    from opentelemetry.sdk._logs.export import (
        LogRecordExporter,
        LogRecordExportResult,
    )
except ImportError:  # SDK releases before the rename
    from opentelemetry.sdk._logs.export import (  # type: ignore[no-redef]
        LogExporter as LogRecordExporter,
    )
    from opentelemetry.sdk._logs.export import (  # type: ignore[no-redef]
        LogExportResult as LogRecordExportResult,
    )

logger = logging.getLogger(__name__)

#: Environment variable naming the trace folder of all three exporters.
CTF_DIR_ENV = "OTELZMQ_CTF_DIR"


def default_directory() -> str:
    """Return the trace folder used when an exporter is given none.

    Returns:
        ``$OTELZMQ_CTF_DIR`` if set, else ``<out>/ctf-traces/<host>`` where
        ``<out>`` is ``$OTELZMQ_OUT`` or ``out`` and ``<host>`` is
        ``$OTELZMQ_HOST_NAME`` or the machine's host name.
    """
    configured = os.environ.get(CTF_DIR_ENV, "").strip()
    if configured:
        return configured
    out = os.environ.get("OTELZMQ_OUT", "").strip() or "out"
    return os.path.join(out, "ctf-traces", host_name())


def host_name() -> str:
    """Return ``$OTELZMQ_HOST_NAME``, or the machine's host name."""
    return os.environ.get("OTELZMQ_HOST_NAME", "").strip() or socket.gethostname()


class _SignalStream:
    """The stream of one exporter: opened on first use, reopened after fork."""

    def __init__(
        self, directory: str | os.PathLike[str] | None, field: str, max_packet_size: int
    ) -> None:
        if directory is not None and not os.fspath(directory).strip():
            raise ValueError("directory must be a non-empty path or None.")
        if max_packet_size < 1024:
            raise ValueError(f"max_packet_size must be >= 1024, not {max_packet_size}.")
        self.directory = (
            os.fspath(directory) if directory is not None else default_directory()
        )
        self.field = field
        self._event_id = EVENT_IDS[field]
        self._max_packet_size = max_packet_size
        self._stream: CtfStream | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._open_failed = False

    def write(self, payloads: Sequence[bytes]) -> bool:
        """Write one event per payload; return whether all were written."""
        if not payloads and not self._closed:
            return True
        stream = self._current()
        if stream is None:
            return False
        try:
            stream.write(self._event_id, payloads, threading.get_native_id())
        except (OSError, ValueError, CtfWriterError):
            logger.exception(
                "Cannot write %d %s events to %s",
                len(payloads),
                self.field,
                stream.path,
            )
            return False
        return True

    def encode_and_write(
        self, encode: Callable[[Any], Any], items: Any, what: str
    ) -> bool:
        """Encode ``items`` as an OTLP request and write one event per resource.

        Args:
            encode: The SDK's OTLP encoder for this signal.
            items: What the SDK handed to the exporter.
            what: How to name the items in a log message.

        Returns:
            Whether every event was written; failures are logged, never raised.
        """
        try:
            resources = getattr(encode(items), self.field)
            payloads = [resource.SerializeToString() for resource in resources]
        except Exception:
            logger.exception("Cannot encode %s as OTLP", what)
            return False
        return self.write(payloads)

    def flush(self) -> bool:
        """Sync the stream file; return whether that succeeded."""
        stream = self._stream
        if stream is None or stream.pid != os.getpid():
            return True
        try:
            stream.flush()
        except OSError:
            logger.exception("Cannot sync %s", stream.path)
            return False
        return True

    def close(self) -> None:
        """Close the stream; later writes fail. Idempotent."""
        with self._lock:
            self._closed = True
            stream, self._stream = self._stream, None
        if stream is None or stream.pid != os.getpid():
            return
        try:
            stream.close()
        except OSError:
            logger.exception("Cannot close %s cleanly", stream.path)

    def _current(self) -> CtfStream | None:
        with self._lock:
            if self._closed:
                logger.warning("CTF %s exporter already shut down", self.field)
                return None
            stream = self._stream
            if stream is not None and stream.pid == os.getpid():
                return stream

            # first use, or a forked child: never share a parent's file
            if stream is not None:
                stream.abandon()
            try:
                trace = open_trace(
                    self.directory,
                    hostname=host_name(),
                    trace_name=os.path.basename(os.path.abspath(self.directory)),
                )
                self._stream = trace.open_stream(self._max_packet_size)
            except CtfWriterError as exc:
                log = logger.debug if self._open_failed else logger.error
                log("CTF %s exporter cannot write: %s", self.field, exc)
                self._open_failed = True
                return None
            self._open_failed = False
            logger.debug("Recording %s in %s", self.field, self._stream.path)
            return self._stream


class CtfSpanExporter(SpanExporter):
    """Records finished spans as ``opentelemetry:resource_spans`` events.

    Args:
        directory: Trace folder; see :func:`default_directory` when None.
        max_packet_size: Largest CTF packet in bytes (bigger events get a
            packet of their own).

    Raises:
        ValueError: ``directory`` is empty or ``max_packet_size`` < 1 KiB.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
    ) -> None:
        self._stream = _SignalStream(directory, "resource_spans", max_packet_size)

    @property
    def directory(self) -> str:
        """The trace folder."""
        return self._stream.directory

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write the spans, one event per resource; never raises."""
        if self._stream.encode_and_write(encode_spans, spans, f"{len(spans)} spans"):
            return SpanExportResult.SUCCESS
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        """Close the stream file."""
        self._stream.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Sync the stream file to disk (nothing is held in memory)."""
        return self._stream.flush()


class CtfMetricExporter(MetricExporter):
    """Records metric batches as ``opentelemetry:resource_metrics`` events.

    Args:
        directory: Trace folder; see :func:`default_directory` when None.
        preferred_temporality: Passed to :class:`MetricExporter`
            (cumulative for every instrument when None).
        preferred_aggregation: Passed to :class:`MetricExporter`.
        max_packet_size: Largest CTF packet in bytes.

    Raises:
        ValueError: ``directory`` is empty or ``max_packet_size`` < 1 KiB.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        preferred_temporality: dict[type, AggregationTemporality] | None = None,
        preferred_aggregation: dict[type, Aggregation] | None = None,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
    ) -> None:
        super().__init__(
            preferred_temporality=preferred_temporality,
            preferred_aggregation=preferred_aggregation,
        )
        self._stream = _SignalStream(directory, "resource_metrics", max_packet_size)

    @property
    def directory(self) -> str:
        """The trace folder."""
        return self._stream.directory

    def export(
        self,
        metrics_data: MetricsData,
        timeout_millis: float = 10_000,
        **kwargs: object,
    ) -> MetricExportResult:
        """Write the metrics, one event per resource; never raises."""
        if self._stream.encode_and_write(encode_metrics, metrics_data, "metrics"):
            return MetricExportResult.SUCCESS
        return MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Sync the stream file to disk (nothing is held in memory)."""
        return self._stream.flush()

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        """Close the stream file."""
        self._stream.close()


class CtfLogExporter(LogRecordExporter):
    """Records log batches as ``opentelemetry:resource_logs`` events.

    Args:
        directory: Trace folder; see :func:`default_directory` when None.
        max_packet_size: Largest CTF packet in bytes.

    Raises:
        ValueError: ``directory`` is empty or ``max_packet_size`` < 1 KiB.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
    ) -> None:
        self._stream = _SignalStream(directory, "resource_logs", max_packet_size)

    @property
    def directory(self) -> str:
        """The trace folder."""
        return self._stream.directory

    def export(self, batch: Sequence[object]) -> LogRecordExportResult:
        """Write the log records, one event per resource; never raises."""
        what = f"{len(batch)} log records"
        if self._stream.encode_and_write(encode_logs, batch, what):
            return LogRecordExportResult.SUCCESS
        return LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        """Close the stream file."""
        self._stream.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Sync the stream file to disk (nothing is held in memory)."""
        return self._stream.flush()
