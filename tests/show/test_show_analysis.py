"""Counts, percentiles and phases on spans with known timings."""

from __future__ import annotations

import pytest

from otelzmq.show.analysis import analyze, percentile, request_phases
from otelzmq.show.model import group_traces
from tests.show.showkit import MS, T0, US, Recorder, Timings, standard_run


def test_percentile_interpolates_between_ranks() -> None:
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 100) == 100
    assert percentile([7], 99) == 7
    assert percentile([1, 3], 50) == 2
    with pytest.raises(ValueError):
        percentile([], 50)


def test_phases_of_one_request_add_up_to_the_attempt(recorder: Recorder) -> None:
    timings = Timings(
        network=300 * US, forward=40 * US, backend=70 * US, compute=2 * MS
    )
    recorder.request(T0, timings=timings)
    (trace,) = group_traces(recorder.spans()).values()

    phases = request_phases(trace)

    assert phases == {
        "client_to_proxy": 300 * US,
        "proxy_forward": 40 * US,
        "queue": 70 * US,
        "worker": 40 * US,
        "compute": 2 * MS,
        "return": 70 * US + 50 * US + 300 * US,
    }
    (attempt,) = trace.named("get-nth-prime-attempt")
    assert sum(phases.values()) == attempt.duration_ns


def test_phases_need_the_whole_chain(recorder: Recorder) -> None:
    recorder.request(T0, drop=("server",))
    (trace,) = group_traces(recorder.spans()).values()
    assert request_phases(trace) is None


def test_summary_of_a_standard_run(recorder: Recorder) -> None:
    report = analyze(standard_run(recorder, requests=30))

    assert len(report.traces) == 30
    assert report.complete_count == 30
    assert report.span_count == 180
    assert report.errors == [] and report.retries == [] and report.incomplete == []
    assert ("otelzmq-server", "compute-nth-prime", 30) in report.span_counts
    assert [h.host for h in report.hosts] == [
        "client-1",
        "client-2",
        "client-3",
        "proxy",
        "server-1",
        "server-2",
    ]
    compute = next(
        lat for lat in report.latency_by_name if lat.key == ("compute-nth-prime",)
    )
    # compute takes 0.1 ms, 0.2 ms ... 3.0 ms.
    assert compute.count == 30
    assert compute.p50 == pytest.approx(1.55 * MS)
    assert compute.max == 3 * MS
    assert compute.p95 == pytest.approx(
        percentile([i * 100 * US for i in range(1, 31)], 95)
    )
    per_host = {lat.key: lat.count for lat in report.latency_by_host}
    assert per_host[("server-1", "compute-nth-prime")] == 15
    assert per_host[("client-3", "get-nth-prime")] == 10


def test_phase_table_medians_and_shares(recorder: Recorder) -> None:
    report = analyze(standard_run(recorder, requests=30))

    phases = {phase.key: phase for phase in report.phases}
    assert report.phase_requests == 30
    assert phases["client_to_proxy"].median == 200 * US
    assert phases["compute"].median == pytest.approx(1.55 * MS)
    assert sum(phase.share for phase in report.phases) == pytest.approx(1.0)
    fixed = 200 + 50 + 100 + 40 + 350  # microseconds per request besides compute
    total_compute = sum(range(1, 31)) * 100  # microseconds
    assert phases["compute"].share == pytest.approx(
        total_compute / (total_compute + 30 * fixed)
    )


def test_errors_retries_and_incomplete_traces(recorder: Recorder) -> None:
    recorder.request(T0, nth=5, failed_attempts=2)
    recorder.request(T0 + 100 * MS, drop=("proxy-backend-to-frontend",))
    recorder.request(T0 + 200 * MS)
    report = analyze(recorder.spans())

    assert len(report.errors) == 2
    assert {e.status_message for e in report.errors} == {"no reply within 5 s"}
    (retry,) = report.retries
    assert (retry.attempts, retry.nth, retry.succeeded) == (3, 5, True)
    (incomplete,) = report.incomplete
    assert incomplete.missing == ("proxy-backend-to-frontend",)
    assert incomplete.missing_roles == ("proxy",)
    # The retried request's phases come from its last, answered attempt.
    assert report.phase_requests == 3
    slowest = report.slowest(1)[0]
    assert slowest.trace_id == retry.trace_id
    assert report.find_trace(retry.trace_id[:8].upper()) == [slowest]
    assert report.find_trace("zz") == []


def test_unknown_names_and_no_spans() -> None:
    empty = analyze([])
    assert len(empty.traces) == 0 and empty.phases == [] and empty.slowest(3) == []

    recorder = Recorder()
    recorder.span("odd-1", "something-else", T0, T0 + MS)
    report = analyze(recorder.spans())
    assert len(report.incomplete) == 1
    assert report.latency_by_name[0].key == ("something-else",)
    assert report.phases == []
