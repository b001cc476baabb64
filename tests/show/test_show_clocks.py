"""Clock offsets recovered from round trips, and their correction."""

from __future__ import annotations

import pytest

from otelzmq.show.analysis import analyze
from otelzmq.show.clocks import estimate_offsets
from otelzmq.show.model import SpanRecord, Trace, group_traces
from tests.show.showkit import MS, T0, US, Recorder, Timings, standard_run

#: How far the proxy's estimate may be off: half the time it takes to
#: forward a reply, since only the start of that span is sure to come
#: before the client has its reply (plus rounding).
PROXY_TOLERANCE = Timings().back // 2 + 1 * US


def test_exact_clocks_need_no_correction(recorder: Recorder) -> None:
    report = analyze(standard_run(recorder))
    clock = report.clock

    assert clock.reference_hosts == ("client-1", "client-2", "client-3")
    assert clock.violations == 0
    assert not clock.skew_detected
    assert {h.host for h in clock.hosts.values()} == {"proxy", "server-1", "server-2"}
    assert all(h.consistent and not h.applied for h in clock.hosts.values())
    assert clock.hosts["proxy"].pairs == 30
    assert clock.hosts["proxy"].lower_ns <= 0 <= clock.hosts["proxy"].upper_ns


@pytest.mark.parametrize(
    ("proxy_offset", "server_offset"),
    [(25 * MS, -40 * MS), (-3 * MS, 0), (750 * US, 2 * MS)],
)
def test_injected_offsets_are_recovered(proxy_offset: int, server_offset: int) -> None:
    recorder = Recorder(offsets={"proxy": proxy_offset, "server-2": server_offset})
    report = analyze(standard_run(recorder))
    clock = report.clock

    assert clock.skew_detected
    assert clock.violations > 0
    assert clock.hosts["proxy"].applied
    proxy = clock.hosts["proxy"]
    assert proxy.estimate_ns == pytest.approx(proxy_offset, abs=PROXY_TOLERANCE)
    assert proxy.lower_ns <= proxy_offset <= proxy.upper_ns
    server = clock.hosts["server-2"]
    if server_offset:
        assert server.applied
        assert server.estimate_ns == pytest.approx(server_offset, abs=1 * US)
    else:
        assert not server.applied and server.offset_ns == 0
    assert not clock.hosts["server-1"].applied


def test_corrected_phases_match_a_run_with_exact_clocks() -> None:
    exact = analyze(standard_run(Recorder()))
    skewed = analyze(
        standard_run(Recorder(offsets={"proxy": 12 * MS, "server-1": -9 * MS}))
    )

    assert skewed.clock.skew_detected
    for good, fixed in zip(exact.phases, skewed.phases, strict=True):
        assert fixed.key == good.key
        assert fixed.median == pytest.approx(good.median, abs=PROXY_TOLERANCE)
        assert fixed.share == pytest.approx(good.share, abs=0.02)
    # Corrected traces have no span before its cross-host parent.
    assert estimate_offsets(skewed.corrected.values()).violations == 0


def test_asymmetric_paths_still_land_inside_the_bounds() -> None:
    recorder = Recorder(offsets={"proxy": 5 * MS})
    start = T0
    for index in range(10):
        # The forward path is slower than the way back by a varying amount.
        timings = Timings(network=(100 + 30 * index) * US)
        start = recorder.request(start, timings=timings) + MS
    report = analyze(recorder.spans())
    proxy = report.clock.hosts["proxy"]

    assert proxy.consistent and proxy.applied
    assert proxy.lower_ns <= proxy.estimate_ns <= proxy.upper_ns
    assert proxy.estimate_ns == pytest.approx(5 * MS, abs=100 * US)


def test_failed_attempts_are_not_used_as_round_trips(recorder: Recorder) -> None:
    recorder.offsets["server-1"] = 3 * MS
    recorder.request(T0, failed_attempts=2)
    report = analyze(recorder.spans())
    assert report.clock.hosts["server-1"].pairs == 1
    assert report.clock.hosts["server-1"].estimate_ns == pytest.approx(3 * MS, abs=US)


def test_reference_without_round_trips_is_the_busiest_host() -> None:
    trace_id = "ab" * 16
    spans = [
        SpanRecord(trace_id, "01", None, "a", 0, 10, "busy"),
        SpanRecord(trace_id, "02", "01", "b", 20, 30, "busy"),
        SpanRecord(trace_id, "03", "01", "c", -5, 5, "quiet"),
    ]
    clock = estimate_offsets([Trace(trace_id, spans)])
    assert clock.reference_hosts == ("busy",)
    assert clock.hosts == {}
    assert clock.violations == 1  # "c" starts before its parent on another host


def test_disagreeing_round_trips_fall_back_to_the_majority() -> None:
    recorder = Recorder()
    start = T0
    for index in range(5):
        # The proxy's clock jumps forward between requests (drift).
        recorder.offsets["proxy"] = 2 * MS if index < 4 else 40 * MS
        start = recorder.request(start) + MS
    clock = estimate_offsets(group_traces(recorder.spans()).values())
    proxy = clock.hosts["proxy"]
    assert not proxy.consistent
    assert proxy.applied
    assert proxy.estimate_ns == pytest.approx(2 * MS, abs=PROXY_TOLERANCE)
