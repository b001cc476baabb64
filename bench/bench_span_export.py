"""Cost per span of recording spans as CTF, next to the costs it builds on.

Four set-ups each create the same spans (one attribute each) and are timed
from the first span to the end of the final flush (``shutdown``):

(a) the API's no-op tracer;
(b) the SDK with a BatchSpanProcessor and an exporter that drops batches;
(c) as (b), but the exporter encodes each batch as OTLP protobuf (the SDK's
    encoder) into a null sink;
(d) as (b), with the CTF exporter writing to a temporary folder.

The set-ups run in turns (rotating the order) for several rounds and the
median of each is reported; the ratio d/c is the cost of CTF recording over
OTLP encoding.

Usage: ``python bench/bench_span_export.py [--spans N] [--rounds R]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import NoOpTracerProvider, Tracer

from otelzmq.ctf.exporters import CtfSpanExporter


class DropExporter(SpanExporter):
    """Counts spans and throws them away."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


class EncodeExporter(DropExporter):
    """Encodes spans as an OTLP request, then throws the bytes away."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encode_spans(spans).SerializeToString()
        return super().export(spans)


class CountingCtfExporter(CtfSpanExporter):
    """The CTF exporter, counting what it writes."""

    spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return super().export(spans)


def _make_spans(tracer: Tracer, count: int) -> None:
    for n in range(count):
        with tracer.start_as_current_span("get-nth-prime", attributes={"nth": n}):
            pass


def run_noop(count: int) -> float:
    """Time ``count`` spans on the no-op tracer; return seconds."""
    tracer = NoOpTracerProvider().get_tracer("bench")
    start = time.perf_counter()
    _make_spans(tracer, count)
    return time.perf_counter() - start


def run_sdk(count: int, exporter: DropExporter | CountingCtfExporter) -> float:
    """Time ``count`` spans through the SDK to ``exporter``; return seconds."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=count))
    tracer = provider.get_tracer("bench")
    start = time.perf_counter()
    _make_spans(tracer, count)
    provider.shutdown()
    elapsed = time.perf_counter() - start
    if exporter.spans != count:
        raise RuntimeError(f"{type(exporter).__name__} saw {exporter.spans} spans")
    return elapsed


def main() -> int:
    """Run the benchmark and print the table; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-ctf-") as folder:
        setups: dict[str, Callable[[], float]] = {
            "(a) no-op tracer": lambda: run_noop(args.spans),
            "(b) SDK + batch, drop": lambda: run_sdk(args.spans, DropExporter()),
            "(c) SDK + batch, OTLP encode": lambda: run_sdk(
                args.spans, EncodeExporter()
            ),
            "(d) SDK + batch, CTF to disk": lambda: run_sdk(
                args.spans, CountingCtfExporter(folder)
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in setups}
        names = list(setups)
        for round_ in range(args.rounds):
            # rotate the order so that no set-up always runs first
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                gc.collect()
                times[name].append(setups[name]())

    print(f"{args.spans} spans, median of {args.rounds} rounds")
    print(f"{'set-up':32} {'us/span':>9} {'min':>9} {'max':>9}")
    medians = {}
    for name, samples in times.items():
        medians[name] = statistics.median(samples) / args.spans * 1e6
        low, high = (min(samples) / args.spans * 1e6, max(samples) / args.spans * 1e6)
        print(f"{name:32} {medians[name]:9.2f} {low:9.2f} {high:9.2f}")
    c, d = (
        medians["(c) SDK + batch, OTLP encode"],
        medians["(d) SDK + batch, CTF to disk"],
    )
    print(f"ratio d/c = {d / c:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
