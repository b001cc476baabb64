"""The reader on a real LTTng-UST 2.13 recording and on our writer's traces."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from otelzmq.ctf.reader import CtfTrace, ReadStats, find_traces, read_events
from tests.conftest import LTTNG_FIXTURE
from tests.replay import tracekit

FIXTURE_TRACE = LTTNG_FIXTURE / "ust" / "uid" / "0" / "64-bit"


def _summaries(events: list) -> list[dict]:
    rows = []
    for event in events:
        payload = event.fields[event.name.split(":", 1)[1]]
        rows.append(
            {
                "name": event.name,
                "timestamp_ns": event.timestamp_ns,
                "vtid": event.vtid,
                "payload_sha256": hashlib.sha256(payload).hexdigest(),
                "payload_len": len(payload),
            }
        )
    return rows


def _expected() -> list[dict]:
    lines = (LTTNG_FIXTURE / "EXPECTED.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_fixture_events_match_babeltrace2() -> None:
    stats = ReadStats()

    events = list(read_events(LTTNG_FIXTURE, strict=True, stats=stats))

    assert _summaries(events) == _expected()
    assert stats.packets == 2
    assert stats.discarded_events == 0
    assert stats.errors == []


def test_fixture_details() -> None:
    trace = CtfTrace(FIXTURE_TRACE)

    events = list(trace.events(strict=True))

    assert trace.host == "lttng-otel"
    assert trace.metadata.env["tracer_name"] == "lttng-ust"
    assert {event.packet_context["cpu_id"] for event in events} == {0, 1}
    assert all(
        isinstance(event.fields["_resource_spans_length"], int)
        for event in events
        if event.name.endswith("spans")
    )
    assert all(
        type(event.fields[event.name.split(":")[1]]) is bytes for event in events
    )


@pytest.mark.parametrize(
    "relative", [".", "ust", "ust/uid", "ust/uid/0/64-bit", "ust/uid/0/64-bit/metadata"]
)
def test_fixture_found_from_any_level(relative: str) -> None:
    assert find_traces(LTTNG_FIXTURE / relative) == [str(FIXTURE_TRACE)]


def test_per_pid_layout(tmp_path: Path) -> None:
    pid_trace = tmp_path / "host-9" / "ust" / "pid" / "app-4242-20261203-180414"
    tracekit.copy_tree(FIXTURE_TRACE, pid_trace)

    events = list(read_events(tmp_path, strict=True))

    assert _summaries(events) == _expected()
    assert CtfTrace(pid_trace).host == "host-9"


def test_several_traces_merge_in_time_order(tmp_path: Path) -> None:
    tracekit.copy_tree(LTTNG_FIXTURE, tmp_path / "a")
    synthetic = tracekit.write_trace(
        tmp_path / "b", tracekit.bytes_packets(2, 3, 8, start=10)
    )

    events = list(read_events([tmp_path / "a", synthetic], strict=True))

    times = [event.timestamp_ns for event in events]
    assert len(events) == 17 + 6
    assert times == sorted(times)


def _babeltrace_rows(trace: Path) -> list[tuple[int, str]]:
    output = subprocess.run(
        ["babeltrace2", "--clock-seconds", "--clock-date", str(trace)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    rows = []
    for line in output.splitlines():
        stamp = line[1 : line.index("]")]
        seconds, nanos = stamp.split(".")
        name = line.split(") ", 1)[1].split(" ", 2)[1].rstrip(":")
        rows.append((int(seconds) * 10**9 + int(nanos), name))
    return rows


@pytest.mark.skipif(shutil.which("babeltrace2") is None, reason="needs babeltrace2")
def test_writer_traces_read_like_babeltrace2(tmp_path: Path) -> None:
    writer = pytest.importorskip("otelzmq.ctf.writer")
    trace = writer.open_trace(str(tmp_path / "host-w"), hostname="w", trace_name="t")
    stream = trace.open_stream(max_packet_size=4096)
    for index in range(40):
        stream.write(index % 3, [bytes([index]) * (50 + 37 * index)], 1000 + index)
    stream.close()
    other = trace.open_stream()
    other.write(1, [b"metrics", b"more"], 77)
    other.close()

    events = list(read_events(tmp_path, strict=True))

    rows = [(event.timestamp_ns, event.name) for event in events]
    expected = _babeltrace_rows(tmp_path / "host-w")
    assert sorted(rows) == sorted(expected)
    assert len(rows) == 42
    assert {event.vtid for event in events} == {77} | set(range(1000, 1040))
    sizes = [
        len(event.fields["resource_spans"])
        for event in events
        if event.name.endswith("resource_spans")
    ]
    assert sizes == [50 + 37 * index for index in range(0, 40, 3)]
