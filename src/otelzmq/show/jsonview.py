"""The report as JSON, with keys that stay stable (docs/show.md lists them).

Durations are milliseconds as floats (``*to_ms``); trace and span ids are the
lowercase hex that OTLP backends show. Lists are sorted so that two runs of
``otelzmq show --json`` on one recording give identical output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from otelzmq.show.analysis import Latency, Report

#: Bumped when a key changes meaning or disappears.
SCHEMA = "otelzmq.show/1"


def to_ms(nanoseconds: float) -> float:
    return round(nanoseconds / 1e6, 6)


def _latency(latency: Latency, names: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = dict(zip(names, latency.key, strict=True))
    row.update(
        count=latency.count,
        p50_ms=to_ms(latency.p50),
        p95_ms=to_ms(latency.p95),
        p99_ms=to_ms(latency.p99),
        max_ms=to_ms(latency.max),
    )
    return row


def report_to_dict(
    report: Report, *, sources: Sequence[str], slowest: int = 5
) -> dict[str, Any]:
    """Return the summary of ``report`` as plain JSON-ready values."""
    clock = report.clock
    return {
        "schema": SCHEMA,
        "sources": list(sources),
        "traces": {
            "total": len(report.traces),
            "complete": report.complete_count,
            "incomplete": len(report.incomplete),
        },
        "spans": {
            "total": report.span_count,
            "by_service_and_name": [
                {"service": service, "name": name, "count": count}
                for service, name, count in report.span_counts
            ],
        },
        "hosts": [
            {
                "host": host.host,
                "service": host.service,
                "spans": host.spans,
                "errors": host.errors,
                "clock_offset_ms": to_ms(host.offset_ns),
                "clock_corrected": host.offset_applied,
            }
            for host in report.hosts
        ],
        "errors": [
            {
                "trace_id": span.trace_id,
                "span_id": span.span_id,
                "host": span.host,
                "name": span.name,
                "reason": span.status_message,
            }
            for span in report.errors
        ],
        "retries": [
            {
                "trace_id": retry.trace_id,
                "nth": retry.nth,
                "attempts": retry.attempts,
                "succeeded": retry.succeeded,
            }
            for retry in report.retries
        ],
        "incomplete": [
            {
                "trace_id": item.trace_id,
                "missing_spans": list(item.missing),
                "missing_roles": list(item.missing_roles),
                "orphan_spans": item.orphans,
                "hosts": list(item.hosts),
            }
            for item in report.incomplete
        ],
        "latency": {
            "by_name": [_latency(lat, ("name",)) for lat in report.latency_by_name],
            "by_host": [
                _latency(lat, ("host", "name")) for lat in report.latency_by_host
            ],
        },
        "clock": {
            "skew_detected": clock.skew_detected,
            "violations": clock.violations,
            "reference_hosts": list(clock.reference_hosts),
            "hosts": [
                {
                    "host": offset.host,
                    "offset_ms": to_ms(offset.estimate_ns),
                    "lower_ms": to_ms(offset.lower_ns),
                    "upper_ms": to_ms(offset.upper_ns),
                    "round_trips": offset.pairs,
                    "consistent": offset.consistent,
                    "applied": offset.applied,
                }
                for offset in clock.hosts.values()
            ],
        },
        "phases": {
            "requests": report.phase_requests,
            "clock_corrected": clock.skew_detected,
            "phases": [
                {
                    "phase": phase.key,
                    "label": phase.label,
                    "median_ms": to_ms(phase.median),
                    "p95_ms": to_ms(phase.p95),
                    "share": round(phase.share, 6),
                }
                for phase in report.phases
            ],
        },
        "slowest": [
            {
                "trace_id": trace.trace_id,
                "duration_ms": to_ms(trace.duration_ns),
                "spans": len(trace.spans),
                "hosts": trace.hosts,
            }
            for trace in report.slowest(slowest)
        ],
    }
