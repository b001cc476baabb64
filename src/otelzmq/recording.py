"""Read the telemetry that hosts recorded as CTF back as OTLP protobufs.

Each host records its spans, metrics and logs as LTTng-style events named
``opentelemetry:resource_spans``, ``opentelemetry:resource_metrics`` and
``opentelemetry:resource_logs``; each has one ``uint8`` sequence field of the
same name holding a serialized OTLP ``ResourceSpans``, ``ResourceMetrics`` or
``ResourceLogs``. :func:`read_recording` finds the traces, decodes them with
:mod:`otelzmq.ctf.reader` and parses the payloads with opentelemetry-proto.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import ResourceMetrics
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from otelzmq.ctf.reader import CtfError, ReadStats, read_events, trace_host

__all__ = [
    "EVENT_SIGNALS",
    "SIGNALS",
    "Record",
    "UndecodablePayloadError",
    "read_recording",
    "read_recording_payloads",
]

logger = logging.getLogger(__name__)

#: Signal names, in the order we report them.
SIGNALS = ("spans", "metrics", "logs")

#: Event name -> (signal, payload field name, protobuf class).
EVENT_SIGNALS: dict[str, tuple[str, str, type]] = {
    "opentelemetry:resource_spans": ("spans", "resource_spans", ResourceSpans),
    "opentelemetry:resource_metrics": (
        "metrics",
        "resource_metrics",
        ResourceMetrics,
    ),
    "opentelemetry:resource_logs": ("logs", "resource_logs", ResourceLogs),
}


@dataclass(frozen=True)
class Record:
    """One recorded OTLP resource batch.

    Attributes:
        host: the folder just above ``ust`` (e.g. ``client-1``); else the
            trace folder's name.
        signal: ``"spans"``, ``"metrics"`` or ``"logs"``.
        timestamp_ns: event time, ns since the Unix epoch.
        vtid: thread that recorded the event, if the trace says.
        message: the parsed ``ResourceSpans``, ``ResourceMetrics`` or
            ``ResourceLogs``.
    """

    host: str
    signal: str
    timestamp_ns: int
    vtid: int | None
    message: Any


class UndecodablePayloadError(ValueError):
    """An event's payload is not the OTLP protobuf its name promises.

    Attributes:
        path: the stream file holding the event.
        offset: byte offset of the event in that file.
        event_name: the CTF event name.
    """

    def __init__(self, message: str, *, path: str, offset: int, event_name: str):
        self.path = path
        self.offset = offset
        self.event_name = event_name
        super().__init__(f"{path} at byte {offset}: {message}")


ErrorCallback = Callable[[Exception], None]


def read_recording(
    paths: str | os.PathLike[str] | Iterable[Any],
    *,
    hosts: Iterable[str] | None = None,
    signals: Iterable[str] | None = None,
    strict: bool = False,
    on_error: ErrorCallback | None = None,
    stats: ReadStats | None = None,
) -> Iterator[Record]:
    """Yield the recorded telemetry under ``paths`` in timestamp order.

    Args:
        paths: ``out/``, ``out/ctf-traces``, host folders or trace folders.
        hosts: keep only these hosts (see :attr:`Record.host`).
        signals: keep only these signals (``spans``, ``metrics``, ``logs``).
        strict: raise on the first damaged trace or undecodable payload.
        on_error: called with each :class:`~otelzmq.ctf.reader.CtfError` or
            :class:`UndecodablePayloadError` when not strict; the damaged part
            is skipped. Without it, each is logged as a warning.
        stats: reader counters to fill (events read, discarded events, ...).

    Raises:
        TraceNotFoundError: a path does not exist or holds no trace.
        ValueError: an unknown signal name.
    """
    pairs = read_recording_payloads(
        paths,
        hosts=hosts,
        signals=signals,
        strict=strict,
        on_error=on_error,
        stats=stats,
    )
    return (record for record, _payload in pairs)


def read_recording_payloads(
    paths: str | os.PathLike[str] | Iterable[Any],
    *,
    hosts: Iterable[str] | None = None,
    signals: Iterable[str] | None = None,
    strict: bool = False,
    on_error: ErrorCallback | None = None,
    stats: ReadStats | None = None,
) -> Iterator[tuple[Record, bytes]]:
    """Like :func:`read_recording`, with each record's serialized payload.

    The payload is the exact protobuf the host recorded, which lets the
    replayer forward it without serializing the message again. Arguments
    and errors are those of :func:`read_recording`.
    """
    wanted_hosts = set(hosts) if hosts is not None else None
    wanted_signals = set(signals) if signals is not None else set(SIGNALS)
    unknown = wanted_signals - set(SIGNALS)
    if unknown:
        raise ValueError(
            f"unknown signal {sorted(unknown)[0]!r}; expected one of "
            f"{', '.join(SIGNALS)}"
        )
    classes = {
        name: entry
        for name, entry in EVENT_SIGNALS.items()
        if entry[0] in wanted_signals
    }

    def keep_trace(path: str) -> bool:
        return wanted_hosts is None or trace_host(path) in wanted_hosts

    def report(error: Exception) -> None:
        if on_error is not None:
            on_error(error)
        else:
            logger.warning("Skipping: %s", error)

    def report_ctf(error: CtfError) -> None:
        report(error)

    events = read_events(
        paths,
        strict=strict,
        on_error=report_ctf,
        stats=stats,
        trace_filter=keep_trace,
    )
    return _records(events, classes, strict, report)


def _records(
    events: Iterator[Any],
    classes: dict[str, tuple[str, str, type]],
    strict: bool,
    report: ErrorCallback,
) -> Iterator[tuple[Record, bytes]]:
    hosts_by_trace: dict[str, str] = {}
    for event in events:
        entry = classes.get(event.name)
        if entry is None:
            continue
        signal, field_name, message_class = entry
        payload = event.fields.get(field_name)
        message = message_class()
        try:
            if not isinstance(payload, (bytes, bytearray)):
                raise DecodeError(f"no byte field {field_name!r}")
            message.ParseFromString(payload)
        except DecodeError as error:
            problem = UndecodablePayloadError(
                f"{event.name} payload is not a valid protobuf ({error})",
                path=event.stream_path,
                offset=event.offset,
                event_name=event.name,
            )
            if strict:
                raise problem from None
            report(problem)
            continue
        host = hosts_by_trace.get(event.trace_path)
        if host is None:
            host = hosts_by_trace[event.trace_path] = trace_host(event.trace_path)
        record = Record(host, signal, event.timestamp_ns, event.vtid, message)
        yield record, payload
