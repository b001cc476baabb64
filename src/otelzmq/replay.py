"""``otelzmq replay``: send recorded telemetry to an OTLP receiver.

The CTF traces that hosts record hold serialized OTLP resources (see
:mod:`otelzmq.recording`). Replaying them means grouping those resources
into export requests (many resources per request, up to
:data:`DEFAULT_MAX_BATCH_RESOURCES` or :data:`DEFAULT_MAX_BATCH_BYTES`) and
sending each request once, with the original timestamps, ids and resources.

Each resource goes out as the very bytes the host recorded: a request is
the concatenation of its resources framed as protobuf field 1, which is how
``ExportTraceServiceRequest``, ``ExportMetricsServiceRequest`` and
``ExportLogsServiceRequest`` hold them. Nothing is re-encoded, so what the
receiver gets is exactly what was recorded, and a replay costs little more
than reading the trace. Requests go out from one background thread while
the next batch is read.

The requests are sent by :mod:`otelzmq.otlp_senders`, through the
OpenTelemetry SDK's own OTLP exporters.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from otelzmq.ctf.reader import (
    CtfError,
    ReadStats,
    TraceNotFoundError,
    find_traces,
    trace_host,
)
from otelzmq.otlp_senders import Sender, make_sender
from otelzmq.recording import (
    SIGNALS,
    UndecodablePayloadError,
    read_recording_payloads,
)

__all__ = [
    "DEFAULT_MAX_BATCH_BYTES",
    "DEFAULT_MAX_BATCH_RESOURCES",
    "ReplaySummary",
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
            f"{self.traces} traces in {self.seconds:.2f} s: {self.records} "
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


# --- replay -----------------------------------------------------------------


def _frame(payload: bytes) -> bytes:
    """Encode ``payload`` as field 1 (length-delimited) of a protobuf message.

    Field 1 is ``resource_spans``, ``resource_metrics`` and ``resource_logs``
    in the three export requests, so concatenated frames are a request.
    """
    size = len(payload)
    header = bytearray(b"\x0a")
    while size >= 0x80:
        header.append((size & 0x7F) | 0x80)
        size >>= 7
    header.append(size)
    return bytes(header) + payload


@dataclass
class _Request:
    signal: str
    frames: list[bytes]
    items: int


class _Pipeline:
    """Sends requests from one background thread, in order.

    Reading and decoding the next batch overlaps with the network round
    trip of the previous one; the queue holds at most two requests, so
    memory stays bounded.
    """

    def __init__(self, sender: Sender, summary: ReplaySummary, note: Callable):
        self.sender = sender
        self.summary = summary
        self.note = note
        self.failures_in_row = {signal: 0 for signal in SIGNALS}
        self.queue: queue.Queue[_Request | None] = queue.Queue(maxsize=2)
        self.thread = threading.Thread(
            target=self._work, name="otelzmq-replay-sender", daemon=True
        )
        self.thread.start()

    def put(self, request: _Request) -> None:
        self.queue.put(request)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()

    def _work(self) -> None:
        while True:
            request = self.queue.get()
            if request is None:
                return
            try:
                self._send(request)
            except Exception:  # noqa: BLE001 - the reader must never block
                logger.exception("Replay sender failed on a %s request", request.signal)
                self.summary.signals[request.signal].failed_items += request.items

    def _send(self, request: _Request) -> None:
        signal = request.signal
        counts = self.summary.signals[signal]
        if self.failures_in_row[signal] >= MAX_CONSECUTIVE_FAILURES:
            counts.failed_items += request.items
            return
        counts.requests += 1
        data = b"".join(request.frames)
        try:
            ok = self.sender.send(signal, data, len(request.frames))
        except Exception:  # noqa: BLE001 - count the loss, keep replaying
            logger.exception("Sending %s failed", signal)
            ok = False
        if ok:
            counts.sent_items += request.items
            self.failures_in_row[signal] = 0
            return
        counts.failed_items += request.items
        counts.failed_requests += 1
        self.failures_in_row[signal] += 1
        reason = getattr(self.sender, "last_error", None) or "export failed"
        self.note(f"sending {signal} failed: {reason}")
        if self.failures_in_row[signal] == MAX_CONSECUTIVE_FAILURES:
            logger.error(
                "%d %s requests failed in a row; not sending the remaining %s",
                MAX_CONSECUTIVE_FAILURES,
                signal,
                signal,
            )


class _Batcher:
    """Groups one signal's resources into export requests."""

    def __init__(
        self,
        signal: str,
        counts: SignalCounts,
        pipeline: _Pipeline | None,
        max_resources: int,
        max_bytes: int,
    ):
        self.signal = signal
        self.counts = counts
        self.pipeline = pipeline
        self.max_resources = max_resources
        self.max_bytes = max_bytes
        self.frames: list[bytes] = []
        self.items = 0
        self.size = 0

    def add(self, message: Any, payload: bytes) -> None:
        frame = _frame(payload)
        if self.frames and self.size + len(frame) > self.max_bytes:
            self.flush()
        items = count_items(self.signal, message)
        self.counts.resources += 1
        self.counts.items += items
        self.frames.append(frame)
        self.items += items
        self.size += len(frame)
        if len(self.frames) >= self.max_resources:
            self.flush()

    def flush(self) -> None:
        if not self.frames:
            return
        request = _Request(self.signal, self.frames, self.items)
        self.frames, self.items, self.size = [], 0, 0
        if self.pipeline is None:
            self.counts.sent_items += request.items
        else:
            self.pipeline.put(request)


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

    Each resource is forwarded as the exact bytes the host recorded, after
    being parsed once to check it and count its items.

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
    hosts = list(hosts) if hosts is not None else None
    wanted = set(hosts) if hosts is not None else None
    summary.traces = sum(
        wanted is None or trace_host(trace) in wanted for trace in find_traces(paths)
    )
    errors_lock = threading.Lock()

    def note(message: str) -> None:
        with errors_lock:
            if len(summary.errors) < MAX_REPORTED_ERRORS:
                summary.errors.append(message)

    def on_error(error: Exception) -> None:
        if isinstance(error, UndecodablePayloadError):
            summary.undecodable += 1
        else:
            summary.damaged += 1
        note(str(error))
        logger.warning("Skipping: %s", error)

    pairs = read_recording_payloads(
        paths,
        hosts=hosts,
        strict=strict,
        on_error=on_error,
        stats=summary.read_stats,
    )
    pipeline = _Pipeline(sender, summary, note) if sender is not None else None
    try:
        batchers = {
            signal: _Batcher(
                signal,
                summary.signals[signal],
                pipeline,
                max_batch_resources,
                max_batch_bytes,
            )
            for signal in SIGNALS
        }
        next_progress = started + _PROGRESS_INTERVAL
        for record, payload in pairs:
            summary.records += 1
            batchers[record.signal].add(record.message, payload)
            if progress is not None and summary.records % 64 == 0:
                now = time.monotonic()
                if now >= next_progress:
                    summary.seconds = now - started
                    progress(summary)
                    next_progress = now + _PROGRESS_INTERVAL
        for batcher in batchers.values():
            batcher.flush()
    finally:
        if pipeline is not None:
            pipeline.close()
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
        traces = find_traces(args.paths)
    except TraceNotFoundError as error:
        print(f"otelzmq replay: {error}", file=sys.stderr)
        return 2
    if args.hosts:
        known = sorted({trace_host(trace) for trace in traces})
        unknown = sorted(set(args.hosts) - set(known))
        if unknown:
            print(
                f"otelzmq replay: no trace of host {', '.join(unknown)} under "
                f"{' '.join(args.paths)}; hosts found: {', '.join(known)}",
                file=sys.stderr,
            )
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
