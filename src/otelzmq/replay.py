"""``otelzmq replay``: send recorded telemetry to an OTLP receiver.

The CTF traces that hosts record hold serialized OTLP resources (see
:mod:`otelzmq.recording`). Replaying them means grouping those resources
into export requests (many resources per request, up to
:data:`DEFAULT_MAX_BATCH_RESOURCES` or :data:`DEFAULT_MAX_BATCH_BYTES`) and
sending each request once, with the original timestamps, ids and resources.

Sending reuses the OpenTelemetry SDK's OTLP exporters, so that every
``OTEL_EXPORTER_OTLP_*`` variable and its per-signal variant (endpoint,
headers, certificates, insecure, compression, timeout) and the exporters'
retry policy (exponential backoff on UNAVAILABLE and the other transient
gRPC codes, on HTTP 429/502/503/504 and on connection errors, honouring
``Retry-After``) behave exactly as for a live application:

* gRPC: subclasses of the gRPC exporters whose ``_translate_data`` returns
  the already-built request, so the exporter's ``_export`` (channel,
  credentials, retries) sends it unchanged.
* HTTP: the HTTP exporters of opentelemetry-exporter-otlp-proto-http 1.45
  keep their transport, headers, compression and retries in an internal
  client with an ``export(bytes)`` method; we hand it the serialized
  request. Its presence is checked when the sender is built, so an
  incompatible exporter version fails at once with a clear message instead
  of losing data.

Both rely on a private method or attribute of the exporters, a conscious
trade against re-implementing the OTLP configuration rules.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from otelzmq.ctf.reader import CtfError, ReadStats, TraceNotFoundError, find_traces
from otelzmq.recording import (
    SIGNALS,
    Record,
    UndecodablePayloadError,
    read_recording,
)

__all__ = [
    "DEFAULT_MAX_BATCH_BYTES",
    "DEFAULT_MAX_BATCH_RESOURCES",
    "GrpcSender",
    "HttpSender",
    "ReplaySummary",
    "Sender",
    "count_items",
    "register",
    "replay",
]

logger = logging.getLogger(__name__)

#: Most resources in one export request.
DEFAULT_MAX_BATCH_RESOURCES = 512

#: Most serialized bytes in one export request. gRPC servers (and the
#: OpenTelemetry Collector) refuse messages over 4 MiB by default; a single
#: resource larger than this still goes, alone.
DEFAULT_MAX_BATCH_BYTES = 3 * 1024 * 1024

#: After this many failed requests in a row for one signal (each already
#: retried by the exporter), the rest of that signal is counted as failed
#: without being sent, so a receiver that is down does not cost minutes.
MAX_CONSECUTIVE_FAILURES = 2

PROTOCOLS = ("grpc", "http/protobuf")

#: Errors quoted in the summary (all are logged).
MAX_REPORTED_ERRORS = 10

_PROGRESS_INTERVAL = 0.25

_REQUEST_CLASSES: dict[str, tuple[type, str]] = {
    "spans": (ExportTraceServiceRequest, "resource_spans"),
    "metrics": (ExportMetricsServiceRequest, "resource_metrics"),
    "logs": (ExportLogsServiceRequest, "resource_logs"),
}

_ITEM_NAMES = {"spans": "spans", "metrics": "metric data points", "logs": "log records"}


# --- counting ---------------------------------------------------------------


def count_items(signal: str, message: Any) -> int:
    """Count the spans, metric data points or log records of one resource."""
    if signal == "spans":
        return sum(len(scope.spans) for scope in message.scope_spans)
    if signal == "logs":
        return sum(len(scope.log_records) for scope in message.scope_logs)
    total = 0
    for scope in message.scope_metrics:
        for metric in scope.metrics:
            kind = metric.WhichOneof("data")
            if kind is not None:
                total += len(getattr(metric, kind).data_points)
    return total


@dataclass
class SignalCounts:
    """What happened to one signal's resources and items."""

    resources: int = 0
    items: int = 0
    sent_items: int = 0
    failed_items: int = 0
    requests: int = 0
    failed_requests: int = 0


@dataclass
class ReplaySummary:
    """The outcome of a replay.

    Attributes:
        traces: trace folders read.
        records: OTLP resources decoded from the traces.
        signals: per-signal counts (``spans``, ``metrics``, ``logs``).
        undecodable: events skipped because their payload is not valid OTLP.
        damaged: damaged trace parts (see :class:`~otelzmq.ctf.CtfError`).
        errors: the first few errors, for the report.
        read_stats: the CTF reader's counters (events, discarded events...).
        dry_run: nothing was sent.
        seconds: wall-clock duration.
    """

    traces: int = 0
    records: int = 0
    signals: dict[str, SignalCounts] = field(
        default_factory=lambda: {signal: SignalCounts() for signal in SIGNALS}
    )
    undecodable: int = 0
    damaged: int = 0
    errors: list[str] = field(default_factory=list)
    read_stats: ReadStats = field(default_factory=ReadStats)
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def failed_items(self) -> int:
        return sum(counts.failed_items for counts in self.signals.values())

    @property
    def lost(self) -> bool:
        """Whether any recorded telemetry did not reach the receiver."""
        return bool(self.failed_items or self.undecodable or self.damaged)

    def format(self) -> str:
        """Return the human-readable summary printed at the end."""
        read = self.read_stats
        verb = "decoded (dry run)" if self.dry_run else "sent"
        lines = [
            f"Read {read.events} events ({read.bytes / 1e6:.1f} MB) from "
            f"{self.traces} traces in {self.seconds:.1f} s: {self.records} "
            f"OTLP resources.",
        ]
        for signal in SIGNALS:
            counts = self.signals[signal]
            line = (
                f"  {signal + ':':9}{counts.resources} resources, "
                f"{counts.sent_items} {_ITEM_NAMES[signal]} {verb}"
            )
            if not self.dry_run:
                line += (
                    f" in {counts.requests} requests, {counts.failed_items} "
                    f"failed ({counts.failed_requests} requests)"
                )
            lines.append(line)
        lines.append(
            f"  skipped: {self.undecodable} undecodable events, {self.damaged} "
            f"damaged trace parts"
        )
        if read.discarded_events or read.lost_packets:
            lines.append(
                f"  the tracer itself discarded {read.discarded_events} events "
                f"and lost {read.lost_packets} packets while recording"
            )
        for error in self.errors:
            lines.append(f"  error: {error}")
        if self.lost:
            lines.append("Some telemetry was lost.")
        return "\n".join(lines)


# --- senders ----------------------------------------------------------------


class Sender(Protocol):
    """Sends one export request; returns False once retries are exhausted.

    ``last_error`` describes the latest failure, for the summary.
    """

    last_error: str | None

    def send(self, signal: str, request: Any) -> bool: ...

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

    classes = {}
    for signal, base in (
        ("spans", OTLPSpanExporter),
        ("metrics", OTLPMetricExporter),
        ("logs", OTLPLogExporter),
    ):
        if not callable(getattr(base, "_export", None)):
            raise RuntimeError(
                f"{base.__module__}.{base.__name__} has no _export method; "
                "otelzmq replay needs opentelemetry-exporter-otlp-proto-grpc 1.45"
            )
        classes[signal] = type(
            f"_Encoded{base.__name__}",
            (base,),
            {
                "_translate_data": _pass_request,
                "_count_data": _count_request,
            },
        )
    return classes


def _pass_request(self: Any, data: Any) -> Any:
    """The request is already encoded: send it as it is."""
    return data


def _count_request(self: Any, data: Any) -> int:
    for name in ("resource_spans", "resource_metrics", "resource_logs"):
        resources = getattr(data, name, None)
        if resources is not None:
            return len(resources)
    return 0


class GrpcSender:
    """Sends export requests with the SDK's OTLP/gRPC exporters.

    Args:
        endpoint: ``http://host:4317`` (plain text) or ``https://...``; None
            uses ``OTEL_EXPORTER_OTLP_[SIGNAL_]ENDPOINT``.
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

    def send(self, signal: str, request: Any) -> bool:
        self._errors.message = None
        result = self._exporters[signal]._export(request)
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

    def send(self, signal: str, request: Any) -> bool:
        url = getattr(self._clients[signal], "_endpoint", signal)
        result = self._clients[signal].export(request.SerializeToString())
        if getattr(result, "success", False):
            return True
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
    """Build the sender for ``grpc`` or ``http/protobuf``."""
    if protocol == "grpc":
        return GrpcSender(endpoint)
    if protocol == "http/protobuf":
        return HttpSender(endpoint)
    raise ValueError(f"unknown OTLP protocol {protocol!r}; use grpc or http/protobuf")


# --- replay -----------------------------------------------------------------


class _Batcher:
    """Groups one signal's resources into export requests."""

    def __init__(
        self,
        signal: str,
        counts: SignalCounts,
        sender: Sender | None,
        max_resources: int,
        max_bytes: int,
        report: Callable[[str], None],
    ):
        self.signal = signal
        self.report = report
        self.request_class, self.field_name = _REQUEST_CLASSES[signal]
        self.counts = counts
        self.sender = sender
        self.max_resources = max_resources
        self.max_bytes = max_bytes
        self.pending: list[Any] = []
        self.pending_items = 0
        self.pending_bytes = 0
        self.failures_in_row = 0

    def add(self, message: Any) -> None:
        size = message.ByteSize()
        if self.pending and self.pending_bytes + size > self.max_bytes:
            self.flush()
        items = count_items(self.signal, message)
        self.counts.resources += 1
        self.counts.items += items
        self.pending.append(message)
        self.pending_items += items
        self.pending_bytes += size + 5
        if len(self.pending) >= self.max_resources:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        messages, items = self.pending, self.pending_items
        self.pending, self.pending_items, self.pending_bytes = [], 0, 0
        if self.sender is None:
            self.counts.sent_items += items
            return
        if self.failures_in_row >= MAX_CONSECUTIVE_FAILURES:
            self.counts.failed_items += items
            return
        request = self.request_class()
        getattr(request, self.field_name).extend(messages)
        self.counts.requests += 1
        try:
            ok = self.sender.send(self.signal, request)
        except Exception:  # noqa: BLE001 - count the loss, keep replaying
            logger.exception("Sending %s failed", self.signal)
            ok = False
        if ok:
            self.counts.sent_items += items
            self.failures_in_row = 0
            return
        self.counts.failed_items += items
        self.counts.failed_requests += 1
        self.failures_in_row += 1
        reason = getattr(self.sender, "last_error", None) or "export failed"
        self.report(f"sending {self.signal} failed: {reason}")
        if self.failures_in_row == MAX_CONSECUTIVE_FAILURES:
            logger.error(
                "%d %s requests failed in a row; not sending the remaining %s",
                MAX_CONSECUTIVE_FAILURES,
                self.signal,
                self.signal,
            )


def replay(
    paths: str | os.PathLike[str] | Iterable[Any],
    sender: Sender | None,
    *,
    hosts: Iterable[str] | None = None,
    strict: bool = False,
    max_batch_resources: int = DEFAULT_MAX_BATCH_RESOURCES,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    progress: Callable[[ReplaySummary], None] | None = None,
) -> ReplaySummary:
    """Read the recordings under ``paths`` and send them with ``sender``.

    Args:
        paths: ``out/``, ``out/ctf-traces``, host or trace folders.
        sender: where requests go; None decodes and counts only (dry run).
        hosts: replay only these hosts.
        strict: stop at the first damaged trace or undecodable event.
        max_batch_resources: most resources in one request.
        max_batch_bytes: most serialized bytes in one request.
        progress: called now and then with the summary so far.

    Returns:
        What was read, sent, failed and skipped.

    Raises:
        TraceNotFoundError: a path holds no trace.
        CtfError, UndecodablePayloadError: only when ``strict``.
    """
    if max_batch_resources < 1 or max_batch_bytes < 1:
        raise ValueError("batch limits must be positive")
    started = time.monotonic()
    summary = ReplaySummary(dry_run=sender is None)
    summary.traces = len(find_traces(paths))

    def note(message: str) -> None:
        if len(summary.errors) < MAX_REPORTED_ERRORS:
            summary.errors.append(message)

    def on_error(error: Exception) -> None:
        if isinstance(error, UndecodablePayloadError):
            summary.undecodable += 1
        else:
            summary.damaged += 1
        note(str(error))
        logger.warning("Skipping: %s", error)

    batchers = {
        signal: _Batcher(
            signal,
            summary.signals[signal],
            sender,
            max_batch_resources,
            max_batch_bytes,
            note,
        )
        for signal in SIGNALS
    }
    records = read_recording(
        paths,
        hosts=hosts,
        strict=strict,
        on_error=on_error,
        stats=summary.read_stats,
    )
    next_progress = started + _PROGRESS_INTERVAL
    record: Record
    for record in records:
        summary.records += 1
        batchers[record.signal].add(record.message)
        if progress is not None and summary.records % 64 == 0:
            now = time.monotonic()
            if now >= next_progress:
                summary.seconds = now - started
                progress(summary)
                next_progress = now + _PROGRESS_INTERVAL
    for batcher in batchers.values():
        batcher.flush()
    summary.seconds = time.monotonic() - started
    return summary


# --- command line -------------------------------------------------------------


class _ProgressLine:
    """One self-overwriting status line on a terminal."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.shown = False

    def __call__(self, summary: ReplaySummary) -> None:
        signals = summary.signals
        rate = summary.read_stats.events / summary.seconds if summary.seconds else 0
        text = (
            f"replay: {summary.read_stats.events} events ({rate:,.0f}/s), "
            f"{signals['spans'].sent_items} spans, "
            f"{signals['metrics'].sent_items} points, "
            f"{signals['logs'].sent_items} logs, "
            f"{summary.failed_items} failed"
        )
        self.stream.write("\r" + text[:120] + "\x1b[K")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def register(subparsers: Any) -> None:
    """Add the ``replay`` sub-command."""
    parser = subparsers.add_parser(
        "replay",
        help="send recorded CTF telemetry to an OTLP receiver",
        description=(
            "Read the OTLP spans, metrics and logs recorded in CTF traces and "
            "send them, unchanged, to an OTLP receiver. Exits non-zero when "
            "any telemetry could not be read or sent."
        ),
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="out/, out/ctf-traces, a host folder or a trace folder",
    )
    parser.add_argument(
        "--endpoint",
        help=(
            "receiver URL, e.g. http://127.0.0.1:4317 for gRPC or "
            "http://127.0.0.1:4318 for HTTP (default: OTEL_EXPORTER_OTLP_"
            "[SIGNAL_]ENDPOINT)"
        ),
    )
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help="OTLP transport (default: OTEL_EXPORTER_OTLP_PROTOCOL, else grpc)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="decode and count, send nothing",
    )
    parser.add_argument(
        "--host",
        dest="hosts",
        action="append",
        metavar="NAME",
        help="replay only this host (repeatable)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first damaged trace or undecodable event",
    )
    parser.add_argument(
        "--batch-resources",
        type=int,
        default=DEFAULT_MAX_BATCH_RESOURCES,
        metavar="N",
        help="most resources per export request (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-bytes",
        type=int,
        default=DEFAULT_MAX_BATCH_BYTES,
        metavar="BYTES",
        help="most bytes per export request (default: %(default)s)",
    )
    parser.set_defaults(run=run)


def _protocol(args: argparse.Namespace) -> str:
    if args.protocol:
        return args.protocol
    value = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip() or "grpc"
    if value not in PROTOCOLS:
        logger.warning(
            "Ignoring OTEL_EXPORTER_OTLP_PROTOCOL=%r: expected grpc or "
            "http/protobuf; using grpc",
            value,
        )
        return "grpc"
    return value


def run(args: argparse.Namespace) -> int:
    """Run ``otelzmq replay``; 0 when everything arrived, 1 on loss."""
    if args.batch_resources < 1 or args.batch_bytes < 1:
        print("otelzmq replay: batch limits must be positive", file=sys.stderr)
        return 2
    try:
        find_traces(args.paths)
    except TraceNotFoundError as error:
        print(f"otelzmq replay: {error}", file=sys.stderr)
        return 2

    sender: Sender | None = None
    if not args.dry_run:
        protocol = _protocol(args)
        try:
            sender = make_sender(protocol, args.endpoint)
        except Exception as error:  # noqa: BLE001 - bad configuration
            print(
                f"otelzmq replay: cannot set up OTLP {protocol}: {error}",
                file=sys.stderr,
            )
            return 2

    progress = _ProgressLine(sys.stderr) if sys.stderr.isatty() else None
    try:
        summary = replay(
            args.paths,
            sender,
            hosts=args.hosts,
            strict=args.strict,
            max_batch_resources=args.batch_resources,
            max_batch_bytes=args.batch_bytes,
            progress=progress,
        )
    except (CtfError, UndecodablePayloadError) as error:
        if progress is not None:
            progress.clear()
        print(f"otelzmq replay: stopped (--strict): {error}", file=sys.stderr)
        return 1
    finally:
        if sender is not None:
            sender.shutdown()
    if progress is not None:
        progress.clear()
    print(summary.format())
    return 1 if summary.lost else 0
