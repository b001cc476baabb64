"""otelzmq.recording: OTLP resources read back from CTF recordings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import ResourceMetrics
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from otelzmq.ctf.reader import TraceNotFoundError
from otelzmq.recording import Record, UndecodablePayloadError, read_recording
from tests.conftest import LTTNG_FIXTURE
from tests.replay import tracekit

FIRST_PAYLOAD_OFFSET = 0x6A  # event at 84: 14-byte header, vtid, length


def _expected() -> list[dict]:
    lines = (LTTNG_FIXTURE / "EXPECTED.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_fixture_records() -> None:
    records = list(read_recording(LTTNG_FIXTURE, strict=True))

    expected = _expected()
    assert [(r.timestamp_ns, r.vtid) for r in records] == [
        (row["timestamp_ns"], row["vtid"]) for row in expected
    ]
    assert [r.signal for r in records] == [
        row["name"].split("_")[-1] for row in expected
    ]
    classes = {"spans": ResourceSpans, "metrics": ResourceMetrics, "logs": ResourceLogs}
    assert all(isinstance(r.message, classes[r.signal]) for r in records)
    assert {r.host for r in records} == {"lttng-otel"}
    assert all(isinstance(r, Record) for r in records)
    first = records[0].message
    assert first.ByteSize() == expected[0]["payload_len"]
    assert first.scope_spans[0].spans[0].name


def test_signal_and_host_filters(tmp_path: Path) -> None:
    tracekit.copy_tree(LTTNG_FIXTURE, tmp_path / "client-1")
    tracekit.copy_tree(LTTNG_FIXTURE, tmp_path / "server-1")

    logs = list(read_recording(tmp_path, signals=["logs"]))
    client = list(read_recording(tmp_path, hosts=["client-1"]))
    nobody = list(read_recording(tmp_path, hosts=["proxy"]))

    assert [r.signal for r in logs] == ["logs"] * 6
    assert {r.host for r in logs} == {"client-1", "server-1"}
    assert len(client) == 17
    assert {r.host for r in client} == {"client-1"}
    assert nobody == []


def test_unknown_signal_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown signal 'traces'"):
        read_recording(LTTNG_FIXTURE, signals=["traces"])


def test_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TraceNotFoundError):
        read_recording(tmp_path / "nothing")


def test_undecodable_payload_is_skipped(tmp_path: Path) -> None:
    copy = tracekit.copy_tree(LTTNG_FIXTURE, tmp_path / "host")
    stream = copy / "ust" / "uid" / "0" / "64-bit" / "channel0_0"
    with open(stream, "r+b") as file:
        file.seek(FIRST_PAYLOAD_OFFSET)
        file.write(b"\xff\xff\xff\xff")
    errors: list[Exception] = []

    records = list(read_recording(copy, on_error=errors.append))

    assert len(records) == 16
    assert len(errors) == 1
    error = errors[0]
    assert isinstance(error, UndecodablePayloadError)
    assert error.path == str(stream)
    assert error.offset == 84
    assert error.event_name == "opentelemetry:resource_spans"
    with pytest.raises(UndecodablePayloadError):
        list(read_recording(copy, strict=True))
