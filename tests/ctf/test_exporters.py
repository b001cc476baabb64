"""The CTF exporters behind the SDK providers, read back with babeltrace2."""

from __future__ import annotations

import os
import shutil
import threading
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import ResourceMetrics
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from otelzmq.ctf.exporters import (
    CtfLogExporter,
    CtfMetricExporter,
    CtfSpanExporter,
    default_directory,
)

RESOURCE = Resource.create({"service.name": "otelzmq-test", "host.name": "t-1"})


def _spans_of(payload: bytes) -> ResourceSpans:
    message = ResourceSpans()
    message.ParseFromString(payload)
    return message


def test_spans_round_trip(tmp_path: Path, bt_decode) -> None:
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(CtfSpanExporter(tmp_path)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("get-nth-prime", attributes={"otelzmq.nth": 7}):
        with tracer.start_as_current_span("get-nth-prime-attempt"):
            pass
    provider.shutdown()

    events = bt_decode(tmp_path)
    assert [e.name for e in events] == ["resource_spans"] * 2
    assert {e.vtid for e in events} == {threading.get_native_id()}
    messages = [_spans_of(e.payload) for e in events]
    spans = [m.scope_spans[0].spans[0] for m in messages]
    assert [s.name for s in spans] == ["get-nth-prime-attempt", "get-nth-prime"]
    assert spans[0].parent_span_id == spans[1].span_id
    assert spans[1].attributes[0].key == "otelzmq.nth"
    assert spans[1].attributes[0].value.int_value == 7
    attributes = {a.key: a.value.string_value for a in messages[0].resource.attributes}
    assert attributes["host.name"] == "t-1"


def test_one_event_per_resource(tmp_path: Path, bt_decode) -> None:
    exporter = CtfSpanExporter(tmp_path)
    spans = []
    for name in ("a", "b"):
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        spans.append(provider.get_tracer("t").start_span(name))
        spans[-1].end()

    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    events = bt_decode(tmp_path)
    services = []
    for event in events:
        attributes = _spans_of(event.payload).resource.attributes
        services += [
            a.value.string_value for a in attributes if a.key == "service.name"
        ]
    assert sorted(services) == ["a", "b"]


def test_metrics_round_trip(tmp_path: Path, bt_decode) -> None:
    reader = PeriodicExportingMetricReader(
        CtfMetricExporter(tmp_path), export_interval_millis=3_600_000
    )
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    counter = provider.get_meter("test").create_counter("otelzmq.requests")
    counter.add(3, {"otelzmq.worker": "1"})
    counter.add(4, {"otelzmq.worker": "1"})
    provider.shutdown()

    events = bt_decode(tmp_path)
    assert events and {e.name for e in events} == {"resource_metrics"}
    message = ResourceMetrics()
    message.ParseFromString(events[-1].payload)
    metric = message.scope_metrics[0].metrics[0]
    assert metric.name == "otelzmq.requests"
    assert metric.sum.data_points[0].as_int == 7


def test_logs_round_trip(tmp_path: Path, bt_decode) -> None:
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(CtfLogExporter(tmp_path))
    )
    provider.get_logger("otelzmq.test").emit(
        severity_number=SeverityNumber.WARN,
        severity_text="WARN",
        body="Received 3th prime = 5",
    )
    provider.shutdown()

    events = bt_decode(tmp_path)
    assert [e.name for e in events] == ["resource_logs"]
    message = ResourceLogs()
    message.ParseFromString(events[0].payload)
    record = message.scope_logs[0].log_records[0]
    assert record.body.string_value == "Received 3th prime = 5"
    assert record.severity_text == "WARN"


def test_three_exporters_share_one_trace(tmp_path: Path, bt_details) -> None:
    spans, logs = CtfSpanExporter(tmp_path), CtfLogExporter(tmp_path)
    span = TracerProvider().get_tracer("t").start_span("s")
    span.end()
    spans.export([span])
    logs.export([])  # nothing to write: no stream file
    reader = PeriodicExportingMetricReader(
        CtfMetricExporter(tmp_path), export_interval_millis=3_600_000
    )
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("m").create_counter("c").add(1)
    provider.shutdown()
    spans.shutdown()
    logs.shutdown()

    stream_dir = tmp_path / "ust" / "uid" / str(os.getuid()) / "64-bit"
    assert sorted(p.name for p in stream_dir.iterdir()) == [
        "channel0_0",
        "channel0_1",
        "metadata",
    ]
    assert bt_details(tmp_path, "with-data=false").count("Trace class:") == 1


@pytest.mark.parametrize(
    ("group", "cls"),
    [
        ("opentelemetry_traces_exporter", CtfSpanExporter),
        ("opentelemetry_metrics_exporter", CtfMetricExporter),
        ("opentelemetry_logs_exporter", CtfLogExporter),
    ],
)
def test_selected_by_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group: str, cls: type
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "ctf")
    monkeypatch.setenv("OTELZMQ_CTF_DIR", str(tmp_path / "from-env"))
    name = os.environ["OTEL_TRACES_EXPORTER"]

    (entry_point,) = entry_points(group=group, name=name)
    exporter = entry_point.load()()
    assert type(exporter) is cls
    assert exporter.directory == str(tmp_path / "from-env")


def test_sdk_configurator_finds_the_exporters() -> None:
    from opentelemetry.sdk._configuration import _import_exporters

    spans, metrics, logs = _import_exporters(["ctf"], ["ctf"], ["ctf"])
    assert spans == {"ctf": CtfSpanExporter}
    assert metrics == {"ctf": CtfMetricExporter}
    assert logs == {"ctf": CtfLogExporter}


def test_default_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTELZMQ_CTF_DIR", raising=False)
    monkeypatch.setenv("OTELZMQ_OUT", str(tmp_path))
    monkeypatch.setenv("OTELZMQ_HOST_NAME", "client-9")

    assert default_directory() == str(tmp_path / "ctf-traces" / "client-9")
    assert CtfLogExporter().directory == default_directory()
    monkeypatch.setenv("OTELZMQ_CTF_DIR", str(tmp_path / "x"))
    assert CtfSpanExporter().directory == str(tmp_path / "x")


def test_bad_arguments_raise_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        CtfSpanExporter("  ")
    with pytest.raises(ValueError, match="max_packet_size"):
        CtfMetricExporter(tmp_path, max_packet_size=10)


def test_io_failure_is_a_failed_export(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    span = TracerProvider().get_tracer("t").start_span("s")
    span.end()
    exporter = CtfSpanExporter(blocker / "trace")

    assert exporter.export([span]) is SpanExportResult.FAILURE
    assert exporter.export([span]) is SpanExportResult.FAILURE
    assert "cannot write" in caplog.text
    assert exporter.force_flush() is True
    exporter.shutdown()


def test_foreign_trace_is_a_failed_export(
    tmp_path: Path, lttng_fixture: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "ust" / "uid" / str(os.getuid()) / "64-bit"
    shutil.copytree(lttng_fixture / "ust/uid/0/64-bit", target)
    exporter = CtfMetricExporter(tmp_path)

    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("m").create_counter("c").add(1)
    provider.shutdown()
    assert exporter.export(reader_data()) is MetricExportResult.FAILURE
    assert "lttng-ust" in caplog.text
    assert sorted(p.name for p in target.iterdir()) == [
        "channel0_0",
        "channel0_1",
        "index",
        "metadata",
    ]


def reader_data() -> MetricsData:
    """Return a one-point metrics batch from an in-memory reader."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    provider.get_meter("m").create_counter("c").add(1)
    data = reader.get_metrics_data()
    provider.shutdown()
    return data


def test_export_after_shutdown_fails(tmp_path: Path) -> None:
    exporter = CtfSpanExporter(tmp_path)
    exporter.shutdown()
    span = TracerProvider().get_tracer("t").start_span("s")
    span.end()

    assert exporter.export([span]) is SpanExportResult.FAILURE
    assert exporter.force_flush() is True


def test_forked_child_writes_its_own_stream(tmp_path: Path, bt_decode) -> None:
    exporter = CtfSpanExporter(tmp_path)
    tracer = TracerProvider().get_tracer("fork")
    spans = {}
    for name in ("parent-before", "child", "parent-after"):
        spans[name] = tracer.start_span(name)
        spans[name].end()
    exporter.export([spans["parent-before"]])

    pid = os.fork()
    if pid == 0:  # the child must never return into pytest
        status = exporter.export([spans["child"]]) is SpanExportResult.SUCCESS
        exporter.shutdown()
        os._exit(0 if status else 1)
    _, status = os.waitpid(pid, 0)
    exporter.export([spans["parent-after"]])
    exporter.shutdown()

    assert os.waitstatus_to_exitcode(status) == 0
    names = [
        _spans_of(e.payload).scope_spans[0].spans[0].name for e in bt_decode(tmp_path)
    ]
    assert names == ["parent-before", "child", "parent-after"]
    stream_dir = tmp_path / "ust" / "uid" / str(os.getuid()) / "64-bit"
    assert len(list(stream_dir.glob("channel0_*"))) == 2
