"""Retries and error replies, as the recorded spans show them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

from otelzmq import semconv as sc
from tests.babeltrace import decode
from tests.conftest import port_flags, wait_for_port

pytestmark = pytest.mark.slow


def recorded_spans(trace_dir: Path) -> list[Span]:
    spans = []
    for event in decode(trace_dir):
        if event.name == "resource_spans":
            resource = ResourceSpans.FromString(event.payload)
            for scope in resource.scope_spans:
                spans.extend(scope.spans)
    return spans


def attributes(span: Span) -> dict[str, object]:
    result = {}
    for kv in span.attributes:
        result[kv.key] = getattr(kv.value, kv.value.WhichOneof("value"))
    return result


def test_each_retry_is_its_own_attempt_span(hosts, ports, tmp_path: Path) -> None:
    wait_for_port(ports.frontend, hosts.start("proxy", *port_flags(ports)))
    client = hosts.start(
        "client",
        "--name",
        "retrier",
        *port_flags(ports),
        "--nth",
        "100",
        "--timeout",
        "1",
        "--attempts",
        "5",
    )
    time.sleep(1.5)  # let the first attempt time out with no server
    hosts.start("server", "--name", "late-server", *port_flags(ports))
    client.communicate(timeout=30)
    assert client.returncode == 0

    spans = recorded_spans(tmp_path / "out" / "ctf-traces" / "retrier")
    request = next(s for s in spans if s.name == sc.SPAN_REQUEST)
    attempts = sorted(
        (s for s in spans if s.name == sc.SPAN_ATTEMPT),
        key=lambda s: attributes(s)[sc.ATTEMPT],
    )
    assert len(attempts) >= 2
    assert all(a.trace_id == request.trace_id for a in attempts)
    assert all(a.parent_span_id == request.span_id for a in attempts)
    assert [attributes(a)[sc.ATTEMPT] for a in attempts] == list(
        range(1, len(attempts) + 1)
    )
    for failed in attempts[:-1]:
        assert failed.status.code == Status.STATUS_CODE_ERROR
        assert "no reply within 1 s" in failed.status.message
        assert attributes(failed)[sc.ERROR_TYPE] == "timeout"
    assert attempts[-1].status.code != Status.STATUS_CODE_ERROR
    assert attributes(request)[sc.ATTEMPTS] == len(attempts)
    assert attributes(request)[sc.PRIME] == 541


def test_an_error_reply_marks_client_and_server_spans(hosts, ports, tmp_path) -> None:
    wait_for_port(ports.frontend, hosts.start("proxy", *port_flags(ports)))
    server = hosts.start("server", "--name", "strict", *port_flags(ports))
    client = hosts.start(
        "client", "--name", "careless", *port_flags(ports), "--nth", "0", "7"
    )
    out, _ = client.communicate(timeout=30)
    assert client.returncode == 1  # one request was refused
    assert "Server refused nth=0: nth must be at least 1, got 0" in out
    assert "Received 7th prime = 17" in out

    client_spans = recorded_spans(tmp_path / "out" / "ctf-traces" / "careless")
    refused = next(
        s
        for s in client_spans
        if s.name == sc.SPAN_REQUEST and attributes(s)[sc.NTH] == 0
    )
    assert refused.status.code == Status.STATUS_CODE_ERROR
    assert refused.status.message == "nth must be at least 1, got 0"
    assert attributes(refused)[sc.ERROR_TYPE] == "error_reply"

    server.terminate()
    server.communicate(timeout=15)
    server_spans = recorded_spans(tmp_path / "out" / "ctf-traces" / "strict")
    response = next(
        s
        for s in server_spans
        if s.name == sc.SPAN_RESPONSE and s.trace_id == refused.trace_id
    )
    assert response.status.code == Status.STATUS_CODE_ERROR
    assert attributes(response)[sc.ERROR_TYPE] == "invalid_request"
