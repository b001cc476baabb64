"""otelzmq replay against real OTLP receivers (gRPC and HTTP) on loopback."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from otelzmq.otlp_senders import GrpcSender, HttpSender
from otelzmq.recording import read_recording
from otelzmq.replay import count_items, replay
from tests.conftest import LTTNG_FIXTURE
from tests.replay import tracekit
from tests.replay.conftest import run_replay
from tests.replay.receivers import GrpcReceiver, HttpReceiver, Received

SIGNALS = ("spans", "metrics", "logs")


def _recorded(path: Path | list[Path]) -> dict[str, list]:
    recorded: dict[str, list] = {signal: [] for signal in SIGNALS}
    for record in read_recording(path):
        recorded[record.signal].append(record.message)
    return recorded


def _assert_identical(received: Received, path: Path | list[Path]) -> None:
    """Every recorded resource arrived once, unchanged and in order."""
    recorded = _recorded(path)
    for signal in SIGNALS:
        assert received.resources(signal) == recorded[signal], signal


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_grpc_replay_is_identical(grpc_receiver: GrpcReceiver) -> None:
    result = run_replay(str(LTTNG_FIXTURE), "--endpoint", grpc_receiver.endpoint)

    assert result.returncode == 0, result.stderr
    _assert_identical(grpc_receiver.received, LTTNG_FIXTURE)
    assert grpc_receiver.received.request_count() == 3
    assert "15 spans sent in 1 requests, 0 failed" in result.stdout
    assert "18 metric data points sent" in result.stdout
    assert "10 log records sent" in result.stdout


def test_http_replay_with_gzip_is_identical(http_receiver: HttpReceiver) -> None:
    result = run_replay(
        str(LTTNG_FIXTURE),
        "--endpoint",
        http_receiver.endpoint,
        "--protocol",
        "http/protobuf",
        OTEL_EXPORTER_OTLP_COMPRESSION="gzip",
    )

    assert result.returncode == 0, result.stderr
    _assert_identical(http_receiver.received, LTTNG_FIXTURE)
    assert http_receiver.received.encodings == ["gzip"] * 3


def test_endpoint_and_protocol_from_environment(http_receiver: HttpReceiver) -> None:
    result = run_replay(
        str(LTTNG_FIXTURE),
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http_receiver.endpoint + "/v1/traces",
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=http_receiver.endpoint + "/v1/metrics",
        OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=http_receiver.endpoint + "/v1/logs",
    )

    assert result.returncode == 0, result.stderr
    _assert_identical(http_receiver.received, LTTNG_FIXTURE)


def test_grpc_retries_unavailable() -> None:
    with GrpcReceiver(fail_first=2) as receiver:
        sender = GrpcSender(receiver.endpoint)
        try:
            summary = replay(LTTNG_FIXTURE, sender)
        finally:
            sender.shutdown()

    assert not summary.lost
    assert receiver.received.refused == 2
    _assert_identical(receiver.received, LTTNG_FIXTURE)


def test_http_retries_503() -> None:
    with HttpReceiver(fail_first=3) as receiver:
        sender = HttpSender(receiver.endpoint)
        try:
            summary = replay(LTTNG_FIXTURE, sender)
        finally:
            sender.shutdown()

    assert not summary.lost
    assert receiver.received.refused == 3
    _assert_identical(receiver.received, LTTNG_FIXTURE)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_receiver_down(protocol: str) -> None:
    endpoint = f"http://127.0.0.1:{_unused_port()}"

    result = run_replay(
        str(LTTNG_FIXTURE),
        "--endpoint",
        endpoint,
        "--protocol",
        protocol,
        OTEL_EXPORTER_OTLP_TIMEOUT="1",
    )

    assert result.returncode == 1
    assert "0 spans sent in 1 requests, 15 failed (1 requests)" in result.stdout
    assert "10 log records sent" not in result.stdout
    assert "Some telemetry was lost." in result.stdout
    assert "sending spans failed" in result.stdout
    assert "refused" in result.stdout.lower()


def test_dry_run_sends_nothing(grpc_receiver: GrpcReceiver) -> None:
    result = run_replay(
        str(LTTNG_FIXTURE), "--endpoint", grpc_receiver.endpoint, "--dry-run"
    )

    assert result.returncode == 0, result.stderr
    assert grpc_receiver.received.calls == 0
    assert "Read 17 events" in result.stdout
    assert "15 spans decoded (dry run)" in result.stdout


def test_host_filter(tmp_path: Path, grpc_receiver: GrpcReceiver) -> None:
    tracekit.copy_tree(LTTNG_FIXTURE, tmp_path / "ctf-traces" / "client-1")
    tracekit.copy_tree(LTTNG_FIXTURE, tmp_path / "ctf-traces" / "server-1")

    result = run_replay(
        str(tmp_path),
        "--endpoint",
        grpc_receiver.endpoint,
        "--host",
        "server-1",
    )

    assert result.returncode == 0, result.stderr
    _assert_identical(grpc_receiver.received, tmp_path / "ctf-traces" / "server-1")
    assert len(grpc_receiver.received.resources("spans")) == 11
    assert "Read 17 events (0.0 MB) from 1 traces" in result.stdout


def test_unknown_host_is_a_usage_error() -> None:
    result = run_replay(str(LTTNG_FIXTURE), "--dry-run", "--host", "client-9")

    assert result.returncode == 2
    assert "no trace of host client-9" in result.stderr
    assert "hosts found: lttng-otel" in result.stderr


def _damaged_copy(tmp_path: Path) -> Path:
    copy = tracekit.copy_tree(LTTNG_FIXTURE, tmp_path / "host")
    streams = copy / "ust" / "uid" / "0" / "64-bit"
    with open(streams / "channel0_0", "r+b") as file:
        file.seek(0x6A)  # the first event's payload
        file.write(b"\xff\xff\xff\xff")
    os.truncate(streams / "channel0_1", 3000)
    return copy


def test_damaged_trace_is_reported(tmp_path: Path, grpc_receiver: GrpcReceiver) -> None:
    copy = _damaged_copy(tmp_path)

    result = run_replay(str(copy), "--endpoint", grpc_receiver.endpoint)

    assert result.returncode == 1
    assert "skipped: 1 undecodable events, 2 damaged trace parts" in result.stdout
    assert "channel0_1" in result.stdout
    _assert_identical(grpc_receiver.received, copy)
    assert 7 < sum(len(grpc_receiver.received.resources(s)) for s in SIGNALS) < 17


def test_tracer_losses_are_reported(tmp_path: Path) -> None:
    copy = tracekit.copy_tree(LTTNG_FIXTURE, tmp_path / "host")
    stream = copy / "ust" / "uid" / "0" / "64-bit" / "channel0_1"
    with open(stream, "r+b") as file:
        file.seek(72)  # events_discarded in the packet context
        file.write((5).to_bytes(8, "little"))

    result = run_replay(str(copy), "--dry-run")

    assert result.returncode == 0, result.stderr
    assert "the tracer itself discarded 5 events" in result.stdout
    assert "discarded 5 events before the packet at byte 0" in result.stderr


def test_strict_stops_at_damage(tmp_path: Path, grpc_receiver: GrpcReceiver) -> None:
    copy = _damaged_copy(tmp_path)

    result = run_replay(str(copy), "--endpoint", grpc_receiver.endpoint, "--strict")

    assert result.returncode == 1
    assert "stopped (--strict)" in result.stderr


def test_endpoint_without_scheme_is_a_usage_error() -> None:
    result = run_replay(str(LTTNG_FIXTURE), "--endpoint", "127.0.0.1:4317")

    assert result.returncode == 2
    assert "needs a scheme: http:// (plain text) or https:// (TLS)" in result.stderr


def test_http_endpoint_with_a_signal_path(http_receiver: HttpReceiver) -> None:
    result = run_replay(
        str(LTTNG_FIXTURE),
        "--protocol",
        "http/protobuf",
        "--endpoint",
        http_receiver.endpoint + "/v1/traces",
    )

    assert result.returncode == 0, result.stderr
    _assert_identical(http_receiver.received, LTTNG_FIXTURE)


def test_no_trace_is_a_usage_error(tmp_path: Path) -> None:
    result = run_replay(str(tmp_path), "--dry-run")

    assert result.returncode == 2
    assert "no CTF trace" in result.stderr


def test_requests_hold_many_resources_within_bounds() -> None:
    with GrpcReceiver() as receiver:
        sender = GrpcSender(receiver.endpoint)
        try:
            summary = replay(LTTNG_FIXTURE, sender, max_batch_resources=4)
            small = replay(LTTNG_FIXTURE, sender, max_batch_bytes=1500)
        finally:
            sender.shutdown()

    spans = receiver.received.requests["spans"]
    assert [len(request.resource_spans) for request in spans[:3]] == [4, 4, 3]
    assert summary.signals["spans"].requests == 3
    assert small.signals["spans"].requests > 3
    recorded = _recorded(LTTNG_FIXTURE)
    assert receiver.received.resources("spans") == recorded["spans"] * 2
    assert summary.signals["metrics"].items == sum(
        count_items("metrics", message) for message in recorded["metrics"]
    )
