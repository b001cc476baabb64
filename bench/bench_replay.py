"""Benchmark ``otelzmq replay`` against a local OTLP/gRPC receiver.

Builds a trace of resource_spans events holding 5 spans each (20,000 events,
about 29 MB, by default) with our CTF writer, starts an OTLP/gRPC receiver
in a child process, and runs ``otelzmq replay`` in another child process at
two trace sizes. It reports events/s, spans/s and the replay process's peak
memory (``ru_maxrss``), next to a dry run and a baseline (the command on a
one-event trace), so that memory growth with trace size shows directly.

Usage: python bench/bench_replay.py [--events N] [--small N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OLD_REPLAYER_EVENTS_PER_SECOND = 180


# --- building traces -------------------------------------------------------


def resource_spans_payloads(count: int, spans: int = 5) -> Iterator[bytes]:
    """Yield serialized ResourceSpans shaped like a client's, ~1.45 KB each."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

    base = 1_796_000_000_000_000_000
    for index in range(count):
        message = ResourceSpans()
        for key, value in (
            ("service.name", "otelzmq-client"),
            ("service.instance.id", "client-1"),
            ("host.name", "bench"),
            ("telemetry.sdk.language", "python"),
            ("telemetry.sdk.version", "1.45.2"),
        ):
            message.resource.attributes.add(key=key, value=AnyValue(string_value=value))
        scope = message.scope_spans.add()
        scope.scope.name = "otelzmq.client"
        for number in range(spans):
            start = base + index * 10_000 + number * 100
            span = scope.spans.add(
                trace_id=os.urandom(16),
                span_id=os.urandom(8),
                parent_span_id=os.urandom(8),
                name="get-nth-prime-attempt",
                kind=3,
                start_time_unix_nano=start,
                end_time_unix_nano=start + 90,
            )
            for key, value in (
                ("messaging.system", "zeromq"),
                ("messaging.destination.name", "tcp://127.0.0.1:5559"),
                ("server.address", "127.0.0.1"),
            ):
                span.attributes.add(key=key, value=AnyValue(string_value=value))
            for key, number_value in (
                ("otelzmq.nth", 1001 + number),
                ("server.port", 5559),
            ):
                span.attributes.add(key=key, value=AnyValue(int_value=number_value))
        yield message.SerializeToString()


def build_trace(folder: Path, events: int, *, batch: int = 64) -> int:
    """Write ``events`` resource_spans events under ``folder``; return bytes."""
    total = 0
    writer = _open_writer(folder)
    pending: list[bytes] = []
    for payload in resource_spans_payloads(events):
        total += len(payload)
        pending.append(payload)
        if len(pending) == batch:
            writer.write(0, pending, 4242)
            pending = []
    if pending:
        writer.write(0, pending, 4242)
    writer.close()
    return total


def _open_writer(folder: Path) -> object:
    try:
        from otelzmq.ctf.writer import open_trace
    except ImportError:
        return _SmallWriter(folder)
    trace = open_trace(str(folder), hostname="bench", trace_name="bench")
    return trace.open_stream()


class _SmallWriter:
    """A stand-in for the CTF writer: LTTng's layout, one event per packet."""

    _METADATA = """/* CTF 1.8 */
typealias integer { size = 8; align = 8; signed = false; } := uint8_t;
typealias integer { size = 16; align = 8; signed = false; } := uint16_t;
typealias integer { size = 32; align = 8; signed = false; } := uint32_t;
typealias integer { size = 64; align = 8; signed = false; } := uint64_t;
trace { major = 1; minor = 8; uuid = "%s"; byte_order = le;
  packet.header := struct { uint32_t magic; uint8_t uuid[16];
    uint32_t stream_id; uint64_t stream_instance_id; }; };
clock { name = "monotonic"; freq = 1000000000; offset = 0; };
typealias integer { size = 64; align = 8; signed = false;
  map = clock.monotonic.value; } := uint64_clock_monotonic_t;
stream { id = 0;
  packet.context := struct { uint64_clock_monotonic_t timestamp_begin;
    uint64_clock_monotonic_t timestamp_end; uint64_t content_size;
    uint64_t packet_size; uint64_t packet_seq_num;
    uint64_t events_discarded; uint32_t cpu_id; };
  event.header := struct { uint16_t id; uint64_clock_monotonic_t timestamp; };
  event.context := struct { integer { size = 32; signed = 1; } _vtid; }; };
event { name = "opentelemetry:resource_spans"; id = 0; stream_id = 0;
  fields := struct { uint32_t __resource_spans_length;
    uint8_t _resource_spans[__resource_spans_length]; }; };
"""

    def __init__(self, folder: Path):
        self.uuid = uuid.uuid4()
        trace = folder / "ust" / "uid" / "0" / "64-bit"
        trace.mkdir(parents=True, exist_ok=True)
        (trace / "metadata").write_text(self._METADATA % self.uuid)
        self.file = open(trace / "channel0_0", "wb")  # noqa: SIM115
        self.seq = 0

    def write(self, event_id: int, payloads: Sequence[bytes], vtid: int) -> None:
        for payload in payloads:
            now = time.time_ns()
            body = struct.pack("<HQiI", event_id, now, vtid, len(payload)) + payload
            size = 24 + 60 + len(body)
            header = struct.pack("<I16sIQ", 0xC1FC1FC1, self.uuid.bytes, 0, 0)
            context = struct.pack(
                "<QQQQQQI", now, now, size * 8, size * 8, self.seq, 0, 0
            )
            self.file.write(header + context + body)
            self.seq += 1

    def close(self) -> None:
        self.file.close()


# --- receiver ----------------------------------------------------------------


def serve() -> None:
    """Run an OTLP/gRPC receiver counting spans until stdin closes."""
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.trace.v1 import (
        trace_service_pb2,
        trace_service_pb2_grpc,
    )

    counts = {"resources": 0, "spans": 0}

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):  # noqa: N802
            counts["resources"] += len(request.resource_spans)
            counts["spans"] += sum(
                len(scope.spans)
                for resource_spans in request.resource_spans
                for scope in resource_spans.scope_spans
            )
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2),
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    for line in sys.stdin:
        if line.strip() == "count":
            print(counts["resources"], counts["spans"], flush=True)
    server.stop(None)


# --- measuring ---------------------------------------------------------------


def run_replay(trace: Path, *extra: str) -> tuple[float, int, str]:
    """Run ``otelzmq replay``; return seconds, peak RSS in KiB and stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(REPO / "src")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "otelzmq", "replay", str(trace), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    output = process.stdout.read().decode()
    errors = process.stderr.read().decode()
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"replay failed:\n{output}\n{errors}")
    return seconds, usage.ru_maxrss, output


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--keep", type=Path, help="build the traces here and keep them")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-replay-"))
    try:
        return _bench(work, [1, args.small, args.events])
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def _bench(work: Path, sizes: list[int]) -> int:
    traces = {}
    for size in sizes:
        folder = work / f"events-{size}"
        if not folder.exists():
            started = time.perf_counter()
            payload = build_trace(folder, size)
            print(
                f"built {size} events, {payload / 1e6:.1f} MB of payload, in "
                f"{time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
        traces[size] = folder

    receiver = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert receiver.stdout is not None and receiver.stdin is not None
        endpoint = f"http://127.0.0.1:{receiver.stdout.readline().strip()}"
        print(
            f"{'run':24} {'events':>7} {'wall s':>7} {'own s':>6} "
            f"{'events/s':>9} {'spans/s':>9} {'RSS MiB':>8} {'+1-event':>8}"
        )
        for label, extra in (
            ("dry run", ("--dry-run",)),
            ("replay to gRPC receiver", ("--endpoint", endpoint)),
        ):
            baseline = run_replay(traces[1], *extra)[1]
            for size in sizes:
                wall, rss, output = run_replay(traces[size], *extra)
                own = float(re.search(r" in ([0-9.]+) s:", output).group(1))
                rate = size / own if own else 0.0
                print(
                    f"{label:24} {size:7} {wall:7.2f} {own:6.2f} {rate:9.0f} "
                    f"{5 * rate:9.0f} {rss / 1024:8.1f} "
                    f"{(rss - baseline) / 1024:8.1f}"
                )
            print(
                f"{'':24} {label}: {rate / OLD_REPLAYER_EVENTS_PER_SECOND:.0f}x "
                f"the C replayer's {OLD_REPLAYER_EVENTS_PER_SECOND} events/s"
            )
        receiver.stdin.write("count\n")
        receiver.stdin.flush()
        resources, spans = receiver.stdout.readline().split()
        expected = 1 + sum(sizes)
        print(f"receiver got {resources} resources ({expected} sent), {spans} spans")
    finally:
        if receiver.stdin is not None:
            receiver.stdin.close()
        receiver.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
