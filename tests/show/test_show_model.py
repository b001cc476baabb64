"""Spans flattened from OTLP messages and linked into traces."""

from __future__ import annotations

from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from otelzmq.show.model import (
    EXPECTED_NAMES,
    SpanRecord,
    Trace,
    group_traces,
    spans_from_resource_spans,
    unique_spans,
)
from tests.show.showkit import MS, T0, Recorder


def _span(span_id: str, parent: str | None, start: int, name: str = "x") -> SpanRecord:
    return SpanRecord(
        trace_id="ab" * 16,
        span_id=span_id,
        parent_id=parent,
        name=name,
        start_ns=start,
        end_ns=start + 10,
        host="h",
    )


def test_resource_gives_host_service_and_span_fields(recorder: Recorder) -> None:
    recorder.request(T0, client="client-2", server="server-1", nth=42)
    spans = recorder.spans()

    by_name = {span.name: span for span in spans}
    assert set(by_name) == set(EXPECTED_NAMES)
    root = by_name["get-nth-prime"]
    assert root.host == "client-2"
    assert root.service == "otelzmq-client"
    assert root.kind == "CLIENT"
    assert root.parent_id is None
    assert root.attributes["otelzmq.nth"] == 42
    assert len(root.trace_id) == 32 and len(root.span_id) == 16
    worker = by_name["get-nth-prime-response"]
    assert worker.host == "server-1"
    assert worker.parent_id == by_name["proxy-frontend-to-backend"].span_id
    assert worker.duration_ns == 20_000 + 1 * MS + 20_000


def test_error_status_and_reason_are_kept(recorder: Recorder) -> None:
    recorder.request(T0, failed_attempts=1)
    errors = [span for span in recorder.spans() if span.is_error]
    assert [(s.name, s.status_message) for s in errors] == [
        ("get-nth-prime-attempt", "no reply within 5 s")
    ]


def test_host_falls_back_to_recording_folder() -> None:
    message = trace_pb2.ResourceSpans(
        resource=resource_pb2.Resource(
            attributes=[
                common_pb2.KeyValue(
                    key="service.name",
                    value=common_pb2.AnyValue(string_value="otelzmq-proxy"),
                )
            ]
        ),
        scope_spans=[
            trace_pb2.ScopeSpans(
                spans=[
                    trace_pb2.Span(
                        trace_id=b"\x01" * 16,
                        span_id=b"\x02" * 8,
                        name="mystery",
                        start_time_unix_nano=20,
                        end_time_unix_nano=10,
                        attributes=[
                            common_pb2.KeyValue(
                                key="list",
                                value=common_pb2.AnyValue(
                                    array_value=common_pb2.ArrayValue(
                                        values=[common_pb2.AnyValue(int_value=3)]
                                    )
                                ),
                            )
                        ],
                    )
                ]
            )
        ],
    )
    (span,) = spans_from_resource_spans(message, "proxy-folder")
    assert span.host == "proxy-folder"
    assert span.service == "otelzmq-proxy"
    assert span.attributes == {"list": [3]}
    assert span.duration_ns == 0  # an end before the start is clamped


def test_trace_tree_keeps_orphans_and_walks_in_start_order() -> None:
    spans = [
        _span("01", None, 0, "root"),
        _span("03", "01", 20, "second"),
        _span("02", "01", 10, "first"),
        _span("04", "02", 15, "grandchild"),
        _span("05", "ff", 5, "orphan"),
    ]
    trace = Trace("ab" * 16, spans)

    assert [s.name for s in trace.orphans] == ["orphan"]
    walked = [(depth, span.name) for depth, span in trace.walk()]
    assert walked == [
        (0, "root"),
        (1, "first"),
        (2, "grandchild"),
        (1, "second"),
        (0, "orphan"),
    ]
    assert not trace.is_complete
    assert trace.root is not None and trace.root.name == "root"


def test_parent_cycle_is_still_listed() -> None:
    trace = Trace("ab" * 16, [_span("01", "02", 0), _span("02", "01", 5)])
    assert sorted(span.span_id for _, span in trace.walk()) == ["01", "02"]


def test_repeated_spans_are_dropped_and_traces_grouped() -> None:
    first = _span("01", None, 0)
    other_trace = SpanRecord("cd" * 16, "01", None, "y", 0, 1, "h")
    spans = unique_spans([first, first, other_trace])
    assert len(spans) == 2
    assert sorted(group_traces(spans)) == ["ab" * 16, "cd" * 16]


def test_complete_request_has_every_expected_name(recorder: Recorder) -> None:
    recorder.request(T0)
    (trace,) = group_traces(recorder.spans()).values()
    assert trace.is_complete
    assert trace.missing_names() == []
    assert trace.hosts == ["client-1", "proxy", "server-1"]
