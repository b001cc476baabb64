"""Per-host clock offsets estimated from the request/reply spans.

Each host stamps its spans with its own clock. When the hosts are separate
machines their clocks disagree, and a worker span can appear to start before
the client asked. We estimate each host's offset the way NTP does, from
round trips whose two ends are on a reference host:

* A *round-trip span* is a span that waits for a reply: the client's
  ``get-nth-prime-attempt`` (and ``get-nth-prime``, or any span of kind
  CLIENT with an unknown name). When it did not fail, every span its
  request caused on other hosts began inside it. Spans that close before
  their host sends the reply on (the worker's ``get-nth-prime-response``
  and ``compute-nth-prime``) also ended inside it; the proxy's spans send
  from inside and may end after the client has its reply, so only their
  start is used.
* For such a span ``c`` on a reference host and its descendants ``d`` on
  host ``h``, with ``θ`` = h's clock minus the reference clock and
  ``d.last`` = ``d.end`` or ``d.start`` as just said::

      max(d.last - c.end) <= θ <= min(d.start - c.start)

  Every round trip gives such an interval; its midpoint is NTP's offset
  estimate ``((t2 - t1) + (t3 - t4)) / 2``, exact when both directions take
  equally long (for the proxy, off by half its reply-forwarding time, a few
  tens of microseconds).
* Per host, the intervals are intersected and the middle of the
  intersection is the estimate: its bounds come from the fastest trip in
  each direction, the samples NTP's clock filter trusts most. It is applied
  only when zero lies outside the intersection, i.e. when the recording
  shows that the clocks disagree; otherwise the spans already tell a
  consistent story and are left alone. When no offset fits every round
  trip (a clock that jumped), the median of the midpoints is used instead.

The reference hosts are the hosts holding round-trip spans (the clients,
each pinned at zero since a request only involves one client), or else the
host with the most spans. Hosts that no round trip reaches keep offset zero.
This is a small special-purpose solver; no library we depend on has one.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from otelzmq.show.model import (
    ATTEMPT_NAME,
    COMPUTE_NAME,
    ROOT_NAME,
    WORKER_NAME,
    SpanRecord,
    Trace,
)

logger = logging.getLogger(__name__)

#: Span names that cover a whole request/reply exchange.
ROUND_TRIP_NAMES = frozenset({ROOT_NAME, ATTEMPT_NAME})

#: Remote spans that end before their host sends the reply on. The proxy's
#: spans send from inside and may end after the client has its reply, so
#: only their start counts.
FINISHED_BEFORE_REPLY = frozenset({WORKER_NAME, COMPUTE_NAME})


def is_round_trip(span: SpanRecord) -> bool:
    """Return whether ``span`` waits for a reply from other hosts."""
    return span.name in ROUND_TRIP_NAMES or span.kind == "CLIENT"


@dataclass(frozen=True)
class HostOffset:
    """What the recording says about one host's clock.

    Attributes:
        host: The host.
        estimate_ns: Best estimate of the host's clock minus the reference.
        lower_ns: Largest lower bound over the round trips.
        upper_ns: Smallest upper bound over the round trips.
        pairs: How many round trips constrain this host.
        applied: Whether spans of this host are shifted by ``estimate_ns``.
    """

    host: str
    estimate_ns: int
    lower_ns: int
    upper_ns: int
    pairs: int
    applied: bool

    @property
    def consistent(self) -> bool:
        """Whether one offset satisfies every round trip."""
        return self.lower_ns <= self.upper_ns

    @property
    def offset_ns(self) -> int:
        """The shift subtracted from this host's times (0 if not applied)."""
        return self.estimate_ns if self.applied else 0


@dataclass(frozen=True)
class ClockReport:
    """Clock offsets of every host, and how many spans broke causality."""

    reference_hosts: tuple[str, ...]
    hosts: dict[str, HostOffset]
    violations: int

    @property
    def skew_detected(self) -> bool:
        return any(offset.applied for offset in self.hosts.values())

    def offset_ns(self, host: str) -> int:
        offset = self.hosts.get(host)
        return offset.offset_ns if offset is not None else 0

    def correct_span(self, span: SpanRecord) -> SpanRecord:
        shift = self.offset_ns(span.host)
        if shift == 0:
            return span
        return dataclasses.replace(
            span, start_ns=span.start_ns - shift, end_ns=span.end_ns - shift
        )

    def correct(self, trace: Trace) -> Trace:
        """Return ``trace`` with every span moved onto the reference clock."""
        if not self.skew_detected:
            return trace
        return Trace(trace.trace_id, (self.correct_span(s) for s in trace.spans))


def _remote_descendants(trace: Trace, container: SpanRecord) -> list[SpanRecord]:
    """Spans under ``container`` on other hosts, not under a nested round trip."""
    found: list[SpanRecord] = []
    stack = list(trace.children_of(container))
    seen: set[str] = set()
    while stack:
        span = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        if is_round_trip(span) and span.host == container.host:
            continue
        if span.host != container.host:
            found.append(span)
        stack.extend(trace.children_of(span))
    return found


def _interval(container: SpanRecord, remote: SpanRecord) -> tuple[int, int]:
    """Offsets of ``remote``'s host that fit inside the round trip ``container``.

    ``remote`` began after the request left and before the reply came back.
    It also ended before the reply came back if it is a span that closes
    before its host replies; a forwarding span closes after it has sent.
    """
    if remote.name in FINISHED_BEFORE_REPLY:
        low = remote.end_ns - container.end_ns
    else:
        low = remote.start_ns - container.end_ns
    return low, remote.start_ns - container.start_ns


def _round_trip_bounds(
    traces: Iterable[Trace], references: set[str]
) -> dict[str, list[tuple[int, int]]]:
    """Offset interval per host and round trip, relative to the reference."""
    bounds: dict[str, list[tuple[int, int]]] = {}
    for trace in traces:
        for container in trace.spans:
            if container.host not in references or not is_round_trip(container):
                continue
            if container.is_error:
                continue
            per_host: dict[str, tuple[int, int]] = {}
            for span in _remote_descendants(trace, container):
                if span.host in references:
                    continue
                low, high = _interval(container, span)
                if span.host in per_host:
                    old_low, old_high = per_host[span.host]
                    low, high = max(low, old_low), min(high, old_high)
                per_host[span.host] = (low, high)
            for host, interval in per_host.items():
                if interval[0] <= interval[1]:
                    bounds.setdefault(host, []).append(interval)
    return bounds


def count_violations(traces: Iterable[Trace]) -> int:
    """Count cross-host spans that the raw clocks put out of order.

    A child on another host must not start before its parent, and nothing
    a successful round trip caused may lie outside it.
    """
    wrong: set[tuple[str, str]] = set()
    for trace in traces:
        for span in trace.spans:
            parent = trace.by_id.get(span.parent_id or "")
            if parent is not None and parent.host != span.host:
                if span.start_ns < parent.start_ns:
                    wrong.add((trace.trace_id, span.span_id))
            if is_round_trip(span) and not span.is_error:
                for remote in _remote_descendants(trace, span):
                    low, high = _interval(span, remote)
                    if not low <= 0 <= high:
                        wrong.add((trace.trace_id, remote.span_id))
    return len(wrong)


def _reference_hosts(traces: list[Trace]) -> set[str]:
    hosts = {s.host for t in traces for s in t.spans if is_round_trip(s)}
    if hosts:
        return hosts
    counts = Counter(span.host for trace in traces for span in trace.spans)
    if not counts:
        return set()
    return {min(counts, key=lambda host: (-counts[host], host))}


def _combine(host: str, intervals: list[tuple[int, int]]) -> HostOffset:
    lower = max(low for low, _ in intervals)
    upper = min(high for _, high in intervals)
    midpoint = statistics.median((low + high) / 2 for low, high in intervals)
    if lower <= upper:
        # The bounds come from the fastest trip each way, as NTP's clock
        # filter prefers the samples with the least delay.
        estimate = (lower + upper) / 2
        applied = not lower <= 0 <= upper
    else:
        # No single offset fits every round trip (drift, or odd spans):
        # trust the majority.
        estimate = midpoint
        outside = sum(1 for low, high in intervals if not low <= 0 <= high)
        applied = outside * 2 > len(intervals)
        logger.info("Round trips of %s do not agree on one clock offset", host)
    return HostOffset(
        host=host,
        estimate_ns=round(estimate),
        lower_ns=lower,
        upper_ns=upper,
        pairs=len(intervals),
        applied=applied,
    )


def estimate_offsets(traces: Iterable[Trace]) -> ClockReport:
    """Estimate every host's clock offset from the round trips of ``traces``.

    Args:
        traces: Traces as recorded, on each host's own clock.

    Returns:
        The offsets, which :meth:`ClockReport.correct` applies to a trace.
    """
    trace_list = list(traces)
    references = _reference_hosts(trace_list)
    bounds = _round_trip_bounds(trace_list, references)
    hosts = {host: _combine(host, intervals) for host, intervals in bounds.items()}
    for host, offset in sorted(hosts.items()):
        if offset.applied:
            logger.info("Clock of %s is off by %d ns", host, offset.estimate_ns)
    return ClockReport(
        reference_hosts=tuple(sorted(references)),
        hosts=dict(sorted(hosts.items())),
        violations=count_violations(trace_list),
    )
