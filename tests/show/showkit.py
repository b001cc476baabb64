"""Synthetic recordings for the ``otelzmq show`` tests (imported by them).

Requests are traced with the real OpenTelemetry SDK, one tracer provider per
host with that host's resource, and exported as OTLP ``ResourceSpans`` the
way the recording holds them. Timings are chosen by the test, and each host's
clock can be shifted to inject a known skew.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import NonRecordingSpan, SpanKind, Status, StatusCode

from otelzmq.show.model import SpanRecord, spans_from_resource_spans

US = 1_000
MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000

SERVICES = {"client": "otelzmq-client", "proxy": "otelzmq-proxy"}


@dataclass
class Timings:
    """True durations (ns) of each step of one request."""

    network: int = 200 * US
    forward: int = 50 * US
    backend: int = 100 * US
    worker_before: int = 20 * US
    compute: int = 1 * MS
    worker_after: int = 20 * US
    back: int = 50 * US
    client_setup: int = 10 * US


@dataclass
class Recorder:
    """Builds traces on several hosts, each with its own clock offset."""

    offsets: dict[str, int] = field(default_factory=dict)
    _hosts: dict[str, tuple[TracerProvider, InMemorySpanExporter]] = field(
        default_factory=dict
    )

    def tracer(self, host: str) -> trace.Tracer:
        if host not in self._hosts:
            role = host.split("-")[0]
            resource = Resource.create(
                {
                    "service.name": SERVICES.get(role, f"otelzmq-{role}"),
                    "service.instance.id": host,
                    "host.name": "test",
                }
            )
            exporter = InMemorySpanExporter()
            provider = TracerProvider(resource=resource)
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            self._hosts[host] = (provider, exporter)
        return self._hosts[host][0].get_tracer("otelzmq.test")

    def span(
        self,
        host: str,
        name: str,
        start: int,
        end: int,
        parent: trace.Span | None = None,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: dict[str, object] | None = None,
        error: str | None = None,
    ) -> trace.Span:
        """Record one span with true times ``start``..``end``."""
        offset = self.offsets.get(host, 0)
        context = None
        if parent is not None:
            context = trace.set_span_in_context(
                NonRecordingSpan(parent.get_span_context())
            )
        span = self.tracer(host).start_span(
            name,
            context=context,
            kind=kind,
            start_time=start + offset,
            attributes=attributes or {},
        )
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=end + offset)
        return span

    def request(
        self,
        start: int,
        *,
        client: str = "client-1",
        proxy: str = "proxy",
        server: str = "server-1",
        nth: int = 1,
        timings: Timings | None = None,
        failed_attempts: int = 0,
        attempt_timeout: int = 5 * MS,
        drop: tuple[str, ...] = (),
    ) -> int:
        """Record one request starting at ``start``; return its end."""
        t = timings or Timings()
        cursor = start + t.client_setup
        spans: list[tuple] = []
        for attempt in range(1, failed_attempts + 1):
            spans.append(("attempt", attempt, cursor, cursor + attempt_timeout))
            cursor += attempt_timeout
        attempt_start = cursor
        forward_start = attempt_start + t.network
        forward_end = forward_start + t.forward
        worker_start = forward_end + t.backend
        compute_start = worker_start + t.worker_before
        compute_end = compute_start + t.compute
        worker_end = compute_end + t.worker_after
        back_start = worker_end + t.backend
        back_end = back_start + t.back
        attempt_end = back_end + t.network
        end = attempt_end + t.client_setup

        root = self.span(
            client,
            "get-nth-prime",
            start,
            end,
            kind=SpanKind.CLIENT,
            attributes={"otelzmq.nth": nth},
        )
        for _, number, a_start, a_end in spans:
            self.span(
                client,
                "get-nth-prime-attempt",
                a_start,
                a_end,
                root,
                kind=SpanKind.CLIENT,
                attributes={"otelzmq.attempt": number, "otelzmq.nth": nth},
                error="no reply within 5 s",
            )
        attempt = self.span(
            client,
            "get-nth-prime-attempt",
            attempt_start,
            attempt_end,
            root,
            kind=SpanKind.CLIENT,
            attributes={"otelzmq.attempt": failed_attempts + 1},
        )
        forward = attempt
        if "proxy-frontend-to-backend" not in drop:
            forward = self.span(
                proxy, "proxy-frontend-to-backend", forward_start, forward_end, attempt
            )
        if "server" in drop:
            return end
        worker = self.span(
            server,
            "get-nth-prime-response",
            worker_start,
            worker_end,
            forward,
            kind=SpanKind.SERVER,
        )
        self.span(server, "compute-nth-prime", compute_start, compute_end, worker)
        if "proxy-backend-to-frontend" not in drop:
            self.span(proxy, "proxy-backend-to-frontend", back_start, back_end, worker)
        return end

    def resource_spans(self) -> list[tuple[str, object]]:
        """One ``(host, ResourceSpans)`` per host, as the recording has them."""
        result = []
        for host, (_, exporter) in sorted(self._hosts.items()):
            for message in encode_spans(exporter.get_finished_spans()).resource_spans:
                result.append((host, message))
        return result

    def spans(self) -> list[SpanRecord]:
        result: list[SpanRecord] = []
        for host, message in self.resource_spans():
            result.extend(spans_from_resource_spans(message, host))
        return result


def standard_run(recorder: Recorder, requests: int = 30) -> list[SpanRecord]:
    """Three clients, two servers, ``requests`` requests of growing cost."""
    start = T0
    for index in range(requests):
        client = f"client-{index % 3 + 1}"
        server = f"server-{index % 2 + 1}"
        timings = Timings(compute=(index + 1) * 100 * US)
        start = recorder.request(
            start, client=client, server=server, nth=index * 1000 + 1, timings=timings
        )
        start += 1 * MS
    return recorder.spans()


def write_recording(recorder: Recorder, out: str) -> None:
    """Write the recorder's spans as ``<out>/ctf-traces/<host>`` CTF traces."""
    import os

    from otelzmq.ctf.metadata import EVENT_IDS
    from otelzmq.ctf.writer import CtfTrace

    for host, message in recorder.resource_spans():
        directory = os.path.join(out, "ctf-traces", host)
        stream = CtfTrace(directory, "test", host).open_stream()
        try:
            stream.write(
                EVENT_IDS["resource_spans"], [message.SerializeToString()], vtid=1
            )
        finally:
            stream.close()
