"""A real `otelzmq up` run, recorded as CTF and read back by babeltrace2."""

from __future__ import annotations

import collections
import subprocess

import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import ResourceMetrics
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

from otelzmq import semconv as sc
from otelzmq.config import ProxyPorts
from tests.babeltrace import decode
from tests.conftest import free_port, host_environment, up_command

pytestmark = pytest.mark.slow

HOSTS = ("client-1", "client-2", "client-3", "proxy", "server-1", "server-2")
REQUESTS = 30


def _attributes(message) -> dict[str, object]:
    values = {}
    for kv in message.attributes:
        field = kv.value.WhichOneof("value")
        values[kv.key] = getattr(kv.value, field) if field else None
    return values


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory) -> dict[str, dict[str, list]]:
    """Run `otelzmq up` once; decode each host's trace with babeltrace2."""
    tmp = tmp_path_factory.mktemp("recorded")
    ports = ProxyPorts(*(free_port() for _ in range(4)))
    result = subprocess.run(
        up_command(tmp / "out", ports),
        capture_output=True,
        text=True,
        timeout=180,
        env=host_environment(),
    )
    assert result.returncode == 0, result.stderr

    hosts: dict[str, dict[str, list]] = {}
    for host in HOSTS:
        trace_dir = tmp / "out" / "ctf-traces" / host
        decoded = collections.defaultdict(list)
        for event in decode(trace_dir):
            parser = {
                "resource_spans": ResourceSpans,
                "resource_metrics": ResourceMetrics,
                "resource_logs": ResourceLogs,
            }[event.name]
            decoded[event.name.split("_", 1)[1]].append(
                parser.FromString(event.payload)
            )
        decoded["output"] = (
            (tmp / "out" / "output" / host / "output.log").read_text().splitlines()
        )
        hosts[host] = decoded
    return hosts


def _spans(run, host: str) -> list[Span]:
    return [
        span
        for resource in run[host]["spans"]
        for scope in resource.scope_spans
        for span in scope.spans
    ]


def test_every_host_records_its_resource(recorded_run) -> None:
    for host in HOSTS:
        role = host.split("-")[0]
        for signal in ("spans", "metrics", "logs"):
            assert recorded_run[host][signal], f"{host} recorded no {signal}"
            for message in recorded_run[host][signal]:
                resource = _attributes(message.resource)
                assert resource["service.name"] == f"otelzmq-{role}"
                assert resource["service.instance.id"] == host
                assert resource["service.version"]
                assert resource["host.name"]
                assert resource["process.pid"] > 0


def test_one_trace_per_request_across_client_proxy_and_server(recorded_run) -> None:
    spans = {host: _spans(recorded_run, host) for host in HOSTS}
    by_id = {s.span_id: (host, s) for host in HOSTS for s in spans[host]}
    traces = collections.defaultdict(list)
    for host, span in by_id.values():
        traces[span.trace_id].append((host, span))

    assert len(traces) == REQUESTS
    for members in traces.values():
        names = collections.Counter(span.name for _, span in members)
        assert names == {
            sc.SPAN_REQUEST: 1,
            sc.SPAN_ATTEMPT: 1,
            sc.SPAN_PROXY_REQUEST: 1,
            sc.SPAN_RESPONSE: 1,
            sc.SPAN_COMPUTE: 1,
            sc.SPAN_PROXY_REPLY: 1,
        }
        named = {span.name: (host, span) for host, span in members}

        def parent_of(name: str, named=named) -> str:
            return by_id[named[name][1].parent_span_id][1].name

        assert named[sc.SPAN_REQUEST][1].parent_span_id == b""
        assert parent_of(sc.SPAN_ATTEMPT) == sc.SPAN_REQUEST
        assert parent_of(sc.SPAN_PROXY_REQUEST) == sc.SPAN_ATTEMPT
        assert parent_of(sc.SPAN_RESPONSE) == sc.SPAN_PROXY_REQUEST
        assert parent_of(sc.SPAN_COMPUTE) == sc.SPAN_RESPONSE
        assert parent_of(sc.SPAN_PROXY_REPLY) == sc.SPAN_RESPONSE
        hosts = {name: host for name, (host, _) in named.items()}
        assert hosts[sc.SPAN_REQUEST].startswith("client-")
        assert hosts[sc.SPAN_PROXY_REQUEST] == "proxy"
        assert hosts[sc.SPAN_RESPONSE].startswith("server-")

        request = named[sc.SPAN_REQUEST][1]
        response = named[sc.SPAN_RESPONSE][1]
        assert request.kind == Span.SPAN_KIND_CLIENT
        assert response.kind == Span.SPAN_KIND_SERVER
        request_attributes = _attributes(request)
        response_attributes = _attributes(response)
        assert request_attributes[sc.MESSAGING_SYSTEM] == "zeromq"
        assert request_attributes[sc.NTH] == response_attributes[sc.NTH]
        assert request_attributes[sc.PRIME] == response_attributes[sc.PRIME]


def test_peer_addresses_are_recorded(recorded_run) -> None:
    for span in _spans(recorded_run, "proxy"):
        assert _attributes(span)[sc.NETWORK_PEER_ADDRESS] == "127.0.0.1"
    attempts = [
        s for s in _spans(recorded_run, "client-1") if s.name == sc.SPAN_ATTEMPT
    ]
    for span in attempts:
        attributes = _attributes(span)
        assert attributes[sc.NETWORK_PEER_ADDRESS] == "127.0.0.1"
        assert attributes[sc.SERVER_ADDRESS] == "127.0.0.1"


def test_every_printed_line_is_a_log_record_with_its_trace(recorded_run) -> None:
    for host in HOSTS:
        records = [
            record
            for resource in recorded_run[host]["logs"]
            for scope in resource.scope_logs
            for record in scope.log_records
        ]
        bodies = [record.body.string_value for record in records]
        printed = [
            line.split("] ", 1)[1]
            for line in recorded_run[host]["output"]
            if line.startswith("[")
        ]
        assert collections.Counter(printed) <= collections.Counter(bodies), host

        if host.startswith("client-"):
            received = [
                r for r in records if r.body.string_value.startswith("Received ")
            ]
            assert len(received) == 10
            trace_ids = {span.trace_id for span in _spans(recorded_run, host)}
            assert all(record.trace_id in trace_ids for record in received)


def _metric_points(run, host: str, name: str) -> list:
    points = []
    for resource in run[host]["metrics"]:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                data = getattr(metric, metric.WhichOneof("data"))
                points.extend(data.data_points)
    return points


def test_metrics_count_what_happened(recorded_run) -> None:
    for client in HOSTS[:3]:
        # Cumulative sums: the last export holds the final count.
        requests = _metric_points(recorded_run, client, sc.CLIENT_REQUESTS)
        final = max(requests, key=lambda p: p.time_unix_nano)
        assert final.as_int == 10
        assert _attributes(final)[sc.OUTCOME] == "ok"
        durations = _metric_points(recorded_run, client, sc.CLIENT_REQUEST_DURATION)
        assert max(p.count for p in durations) == 10

    forwarded = _metric_points(recorded_run, "proxy", sc.PROXY_FORWARDED_MESSAGES)
    last = {}
    for point in sorted(forwarded, key=lambda p: p.time_unix_nano):
        last[_attributes(point)[sc.DIRECTION]] = point.as_int
    assert last == {"request": REQUESTS, "reply": REQUESTS}
    connected = _metric_points(recorded_run, "proxy", sc.PROXY_CONNECTED_CLIENTS)
    assert max(connected, key=lambda p: p.time_unix_nano).as_int == 0

    computed = sum(
        max(
            p.count for p in _metric_points(recorded_run, s, sc.WORKER_COMPUTE_DURATION)
        )
        for s in ("server-1", "server-2")
    )
    assert computed == REQUESTS
