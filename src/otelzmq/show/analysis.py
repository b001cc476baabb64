"""What a run did: counts, errors, retries, latencies and phases.

:func:`analyze` turns the spans of a recording into a :class:`Report`, which
the text, JSON and HTML views print. Percentiles use linear interpolation
between the nearest ranks (``statistics.quantiles`` with the inclusive
method), the same as a spreadsheet's PERCENTILE.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from otelzmq.show.clocks import ClockReport, estimate_offsets
from otelzmq.show.model import (
    ATTEMPT_NAME,
    COMPUTE_NAME,
    EXPECTED_NAMES,
    PROXY_FORWARD_NAME,
    PROXY_RETURN_NAME,
    ROOT_NAME,
    WORKER_NAME,
    SpanRecord,
    Trace,
    group_traces,
)

logger = logging.getLogger(__name__)

#: Which kind of host records each span name.
ROLE_OF_NAME = {
    ROOT_NAME: "client",
    ATTEMPT_NAME: "client",
    PROXY_FORWARD_NAME: "proxy",
    PROXY_RETURN_NAME: "proxy",
    WORKER_NAME: "server",
    COMPUTE_NAME: "server",
}

#: Phases of a request, as (key, label), in the order the request meets them.
PHASES = (
    ("client_to_proxy", "client -> proxy"),
    ("proxy_forward", "proxy forwarding"),
    ("queue", "queue before worker"),
    ("worker", "worker, not computing"),
    ("compute", "computing"),
    ("return", "way back to client"),
)


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) of ``values``.

    Raises:
        ValueError: If ``values`` is empty.
    """
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    if q >= 100:
        return ordered[-1]
    if len(ordered) == 1 or q <= 0:
        return ordered[0]
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    whole = int(q)
    if whole == q:
        return cuts[whole - 1]
    # Fractional percentiles (99.9) interpolate between the integer cuts.
    low = cuts[whole - 1] if whole >= 1 else ordered[0]
    high = cuts[whole] if whole < 99 else ordered[-1]
    return low + (high - low) * (q - whole)


@dataclass(frozen=True)
class Latency:
    """Duration statistics of one group of spans, in nanoseconds."""

    key: tuple[str, ...]
    count: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, key: tuple[str, ...], durations: Sequence[float]) -> Latency:
        return cls(
            key=key,
            count=len(durations),
            p50=percentile(durations, 50),
            p95=percentile(durations, 95),
            p99=percentile(durations, 99),
            max=max(durations),
        )


@dataclass(frozen=True)
class Phase:
    """One phase of a request over every complete request (nanoseconds)."""

    key: str
    label: str
    median: float
    p95: float
    share: float


@dataclass(frozen=True)
class Retry:
    trace_id: str
    attempts: int
    nth: object | None
    succeeded: bool


@dataclass(frozen=True)
class Incomplete:
    trace_id: str
    missing: tuple[str, ...]
    orphans: int
    hosts: tuple[str, ...]

    @property
    def missing_roles(self) -> tuple[str, ...]:
        roles = {ROLE_OF_NAME.get(name, "?") for name in self.missing}
        return tuple(sorted(roles))


@dataclass(frozen=True)
class HostSummary:
    host: str
    service: str
    spans: int
    errors: int
    offset_ns: int
    offset_applied: bool


@dataclass
class Report:
    """Everything ``otelzmq show`` tells about one recording."""

    traces: dict[str, Trace]
    corrected: dict[str, Trace]
    clock: ClockReport
    span_count: int
    span_counts: list[tuple[str, str, int]]
    hosts: list[HostSummary]
    errors: list[SpanRecord]
    retries: list[Retry]
    incomplete: list[Incomplete]
    latency_by_name: list[Latency]
    latency_by_host: list[Latency]
    phases: list[Phase]
    phase_requests: int
    phase_samples: dict[str, list[int]] = field(default_factory=dict)

    @property
    def complete_count(self) -> int:
        return len(self.traces) - len(self.incomplete)

    def slowest(self, count: int) -> list[Trace]:
        """The ``count`` longest traces, longest first (clock corrected)."""
        ordered = sorted(
            self.corrected.values(), key=lambda t: (-t.duration_ns, t.trace_id)
        )
        return ordered[: max(count, 0)]

    def find_trace(self, prefix: str) -> list[Trace]:
        """Traces whose id starts with ``prefix`` (case and dashes ignored)."""
        wanted = prefix.lower().replace("-", "").strip()
        if not wanted:
            return []
        if wanted.startswith("0x"):
            wanted = wanted[2:]
        return [t for tid, t in self.corrected.items() if tid.startswith(wanted)]


def request_phases(trace: Trace) -> dict[str, int] | None:
    """Split the successful attempt of a request into its phases.

    Args:
        trace: One request's trace, preferably clock corrected.

    Returns:
        Nanoseconds per phase key of :data:`PHASES`, which add up to the
        attempt's duration; ``None`` if a span of the chain is missing.
    """
    root = trace.root
    attempts = trace.children_of(root, ATTEMPT_NAME) if root else []
    if not attempts:
        attempts = trace.named(ATTEMPT_NAME)
    for attempt in reversed(attempts):
        if attempt.is_error:
            continue
        forwards = trace.children_of(attempt, PROXY_FORWARD_NAME)
        workers = [w for f in forwards for w in trace.children_of(f, WORKER_NAME)]
        if not workers:
            continue
        forward = trace.by_id[workers[0].parent_id or ""]
        worker = workers[0]
        computes = trace.children_of(worker, COMPUTE_NAME)
        if not computes:
            continue
        compute_ns = sum(c.duration_ns for c in computes)
        return {
            "client_to_proxy": forward.start_ns - attempt.start_ns,
            "proxy_forward": forward.duration_ns,
            "queue": worker.start_ns - forward.end_ns,
            "worker": worker.duration_ns - compute_ns,
            "compute": compute_ns,
            "return": attempt.end_ns - worker.end_ns,
        }
    return None


def _phase_table(traces: Iterable[Trace]) -> tuple[list[Phase], dict[str, list[int]]]:
    samples: dict[str, list[int]] = {key: [] for key, _ in PHASES}
    for trace in traces:
        phases = request_phases(trace)
        if phases is None:
            continue
        for key, value in phases.items():
            samples[key].append(value)
    total = sum(sum(values) for values in samples.values())
    rows: list[Phase] = []
    if not samples[PHASES[0][0]]:
        return rows, samples
    for key, label in PHASES:
        values = samples[key]
        rows.append(
            Phase(
                key=key,
                label=label,
                median=percentile(values, 50),
                p95=percentile(values, 95),
                share=sum(values) / total if total > 0 else 0.0,
            )
        )
    return rows, samples


def _latencies(
    spans: Sequence[SpanRecord], key_of: Callable[[SpanRecord], tuple[str, ...]]
) -> list[Latency]:
    groups: dict[tuple[str, ...], list[float]] = {}
    for span in spans:
        groups.setdefault(key_of(span), []).append(span.duration_ns)
    return [Latency.of(key, groups[key]) for key in sorted(groups)]


def _retries(traces: Iterable[Trace]) -> list[Retry]:
    retries: list[Retry] = []
    for trace in traces:
        attempts = trace.named(ATTEMPT_NAME)
        if len(attempts) <= 1:
            continue
        root = trace.root
        nth = None
        for span in [root, *attempts]:
            if span is not None and "otelzmq.nth" in span.attributes:
                nth = span.attributes["otelzmq.nth"]
                break
        succeeded = any(not attempt.is_error for attempt in attempts)
        if root is not None and root.is_error:
            succeeded = False
        retries.append(Retry(trace.trace_id, len(attempts), nth, succeeded))
    return retries


def _incomplete(traces: Iterable[Trace]) -> list[Incomplete]:
    return [
        Incomplete(
            trace_id=trace.trace_id,
            missing=tuple(trace.missing_names()),
            orphans=len(trace.orphans),
            hosts=tuple(trace.hosts),
        )
        for trace in traces
        if not trace.is_complete
    ]


def _hosts(spans: Sequence[SpanRecord], clock: ClockReport) -> list[HostSummary]:
    counts = Counter(span.host for span in spans)
    errors = Counter(span.host for span in spans if span.is_error)
    services: dict[str, str] = {}
    for span in spans:
        services.setdefault(span.host, span.service)
    summaries = []
    for host in sorted(counts):
        offset = clock.hosts.get(host)
        summaries.append(
            HostSummary(
                host=host,
                service=services[host],
                spans=counts[host],
                errors=errors[host],
                offset_ns=offset.offset_ns if offset else 0,
                offset_applied=bool(offset and offset.applied),
            )
        )
    return summaries


def analyze(spans: Iterable[SpanRecord]) -> Report:
    """Build the report of a recording from its spans.

    Args:
        spans: Every span to consider, on each host's own clock.

    Returns:
        The report; all its figures are in nanoseconds.
    """
    span_list = list(spans)
    traces = group_traces(span_list)
    clock = estimate_offsets(traces.values())
    corrected = {tid: clock.correct(trace) for tid, trace in traces.items()}
    counts = Counter((span.service, span.name) for span in span_list)
    phases, samples = _phase_table(corrected.values())
    return Report(
        traces=traces,
        corrected=corrected,
        clock=clock,
        span_count=len(span_list),
        span_counts=[(svc, name, counts[svc, name]) for svc, name in sorted(counts)],
        hosts=_hosts(span_list, clock),
        errors=sorted(
            (span for span in span_list if span.is_error),
            key=lambda s: (s.start_ns, s.host, s.span_id),
        ),
        retries=_retries(traces.values()),
        incomplete=_incomplete(traces.values()),
        latency_by_name=_latencies(span_list, lambda s: (s.name,)),
        latency_by_host=_latencies(span_list, lambda s: (s.host, s.name)),
        phases=phases,
        phase_requests=len(samples[PHASES[0][0]]),
        phase_samples=samples,
    )


__all__ = ["EXPECTED_NAMES", "PHASES", "Report", "analyze", "percentile"]
