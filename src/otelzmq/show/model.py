"""Spans as plain values, grouped into traces with their parent links.

The recording gives OTLP ``ResourceSpans`` messages. This module flattens
them into :class:`SpanRecord` values (one per span, with the host and service
taken from the resource) and groups those by trace id into :class:`Trace`
objects that know their tree. Everything else in :mod:`otelzmq.show` works on
these values, so the analysis can be tested on spans built in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

#: Span names of one request, in the order a request meets them.
ROOT_NAME = "get-nth-prime"
ATTEMPT_NAME = "get-nth-prime-attempt"
PROXY_FORWARD_NAME = "proxy-frontend-to-backend"
WORKER_NAME = "get-nth-prime-response"
COMPUTE_NAME = "compute-nth-prime"
PROXY_RETURN_NAME = "proxy-backend-to-frontend"

#: Every span name a complete request has at least once.
EXPECTED_NAMES = (
    ROOT_NAME,
    ATTEMPT_NAME,
    PROXY_FORWARD_NAME,
    WORKER_NAME,
    COMPUTE_NAME,
    PROXY_RETURN_NAME,
)

#: OTLP ``Span.SpanKind`` numbers to the names the report prints.
KIND_NAMES = {
    0: "UNSPECIFIED",
    1: "INTERNAL",
    2: "SERVER",
    3: "CLIENT",
    4: "PRODUCER",
    5: "CONSUMER",
}

#: OTLP ``Status.StatusCode`` numbers to names.
STATUS_NAMES = {0: "UNSET", 1: "OK", 2: "ERROR"}


@dataclass(frozen=True)
class SpanRecord:
    """One finished span, with the resource facts the report needs.

    Times are nanoseconds since the Unix epoch as the span's own host
    measured them; :mod:`otelzmq.show.clocks` may shift them later.
    """

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    host: str
    service: str = ""
    kind: str = "UNSPECIFIED"
    status: str = "UNSET"
    status_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def is_error(self) -> bool:
        return self.status == "ERROR"


def _any_value(value: Any) -> Any:
    """Turn an OTLP ``AnyValue`` into the matching Python value."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_any_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, which)


def attributes_of(key_values: Iterable[Any]) -> dict[str, Any]:
    """Return OTLP ``KeyValue`` attributes as a dictionary."""
    return {kv.key: _any_value(kv.value) for kv in key_values}


def spans_from_resource_spans(message: Any, fallback_host: str) -> list[SpanRecord]:
    """Flatten one ``ResourceSpans`` message into span records.

    Args:
        message: A parsed ``opentelemetry.proto.trace.v1.ResourceSpans``.
        fallback_host: Host to use when the resource has no
            ``service.instance.id`` (the recording's folder name).

    Returns:
        The spans of every scope, in message order.
    """
    resource = attributes_of(message.resource.attributes)
    host = str(resource.get("service.instance.id") or fallback_host)
    service = str(resource.get("service.name") or "")
    spans: list[SpanRecord] = []
    for scope_spans in message.scope_spans:
        for span in scope_spans.spans:
            spans.append(
                SpanRecord(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_id=span.parent_span_id.hex() or None,
                    name=span.name,
                    start_ns=span.start_time_unix_nano,
                    end_ns=max(span.end_time_unix_nano, span.start_time_unix_nano),
                    host=host,
                    service=service,
                    kind=KIND_NAMES.get(span.kind, str(span.kind)),
                    status=STATUS_NAMES.get(span.status.code, str(span.status.code)),
                    status_message=span.status.message,
                    attributes=attributes_of(span.attributes),
                )
            )
    return spans


def load_spans(
    paths: Sequence[str],
    *,
    hosts: Sequence[str] | None = None,
    on_error: Callable[[Exception], None] | None = None,
) -> list[SpanRecord]:
    """Read every span of a recording.

    Args:
        paths: Recording folders (``out/``, ``out/ctf-traces``, one host).
        hosts: Keep only these hosts (folder name or service.instance.id).
        on_error: Called with each damaged part of the recording skipped.

    Returns:
        The spans, each once, even if a folder was named twice.
    """
    from otelzmq.recording import read_recording

    wanted = set(hosts) if hosts else None
    spans: list[SpanRecord] = []
    for record in read_recording(list(paths), signals={"spans"}, on_error=on_error):
        found = spans_from_resource_spans(record.message, record.host)
        if wanted is not None and record.host not in wanted:
            found = [span for span in found if span.host in wanted]
        spans.extend(found)
    return unique_spans(spans)


def unique_spans(spans: Iterable[SpanRecord]) -> list[SpanRecord]:
    """Drop repeated spans (same trace and span id), keeping the first."""
    seen: set[tuple[str, str]] = set()
    result: list[SpanRecord] = []
    for span in spans:
        key = (span.trace_id, span.span_id)
        if key in seen:
            continue
        seen.add(key)
        result.append(span)
    return result


class Trace:
    """The spans of one trace id, linked into a tree by parent ids.

    Spans whose parent is not in the trace are kept as extra roots and
    counted as orphans, so a partial recording still shows what it has.
    """

    def __init__(self, trace_id: str, spans: Iterable[SpanRecord]) -> None:
        self.trace_id = trace_id
        self.spans = sorted(spans, key=lambda s: (s.start_ns, s.end_ns, s.span_id))
        self.by_id = {span.span_id: span for span in self.spans}
        self.children: dict[str, list[SpanRecord]] = {}
        self.roots: list[SpanRecord] = []
        self.orphans: list[SpanRecord] = []
        for span in self.spans:
            if span.parent_id is None:
                self.roots.append(span)
            elif span.parent_id in self.by_id and span.parent_id != span.span_id:
                self.children.setdefault(span.parent_id, []).append(span)
            else:
                self.roots.append(span)
                self.orphans.append(span)

    @property
    def start_ns(self) -> int:
        return min(span.start_ns for span in self.spans)

    @property
    def end_ns(self) -> int:
        return max(span.end_ns for span in self.spans)

    @property
    def duration_ns(self) -> int:
        """The request's time: its root span, else the whole spread."""
        root = self.root
        if root is not None:
            return root.duration_ns
        return self.end_ns - self.start_ns

    @property
    def root(self) -> SpanRecord | None:
        """The client's ``get-nth-prime`` span, or the single true root."""
        real_roots = [span for span in self.roots if span.parent_id is None]
        for span in real_roots:
            if span.name == ROOT_NAME:
                return span
        return real_roots[0] if len(real_roots) == 1 else None

    @property
    def hosts(self) -> list[str]:
        return sorted({span.host for span in self.spans})

    def children_of(
        self, span: SpanRecord, name: str | None = None
    ) -> list[SpanRecord]:
        """Children of ``span`` in start order, optionally of one name."""
        found = self.children.get(span.span_id, [])
        if name is None:
            return list(found)
        return [child for child in found if child.name == name]

    def named(self, name: str) -> list[SpanRecord]:
        return [span for span in self.spans if span.name == name]

    def walk(self) -> Iterable[tuple[int, SpanRecord]]:
        """Yield ``(depth, span)`` depth first, children in start order."""
        seen: set[str] = set()
        # Spans caught in a parent cycle are reached by no root: list them last.
        root_ids = {span.span_id for span in self.roots}
        starts = self.roots + [s for s in self.spans if s.span_id not in root_ids]
        for start in starts:
            stack: list[tuple[int, SpanRecord]] = [(0, start)]
            while stack:
                depth, span = stack.pop()
                if span.span_id in seen:
                    continue
                seen.add(span.span_id)
                yield depth, span
                for child in reversed(self.children.get(span.span_id, [])):
                    stack.append((depth + 1, child))

    def missing_names(self) -> list[str]:
        """Names a complete request has and this trace lacks."""
        present = {span.name for span in self.spans}
        return [name for name in EXPECTED_NAMES if name not in present]

    @property
    def is_complete(self) -> bool:
        return not self.orphans and not self.missing_names()


def group_traces(spans: Iterable[SpanRecord]) -> dict[str, Trace]:
    """Group spans by trace id, keeping first-seen order of the traces."""
    grouped: dict[str, list[SpanRecord]] = {}
    for span in spans:
        grouped.setdefault(span.trace_id, []).append(span)
    return {trace_id: Trace(trace_id, items) for trace_id, items in grouped.items()}
