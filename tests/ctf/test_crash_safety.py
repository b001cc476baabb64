"""Killed, terminated and exiting processes leave traces babeltrace2 reads."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from otelzmq.ctf.metadata import PACKET_MAGIC

# exports batches of spans of growing size without pause, printing the
# number of spans written after each export
_EXPORT_FOREVER = textwrap.dedent(
    """
    import sys
    from opentelemetry.sdk.trace import TracerProvider
    from otelzmq.ctf.exporters import CtfSpanExporter

    exporter = CtfSpanExporter(sys.argv[1], max_packet_size=64 * 1024)
    tracer = TracerProvider().get_tracer("crash")
    total = 0
    while True:
        spans = []
        for n in range(1 + total % 300):
            span = tracer.start_span("s", attributes={"pad": "x" * (n % 50)})
            span.end()
            spans.append(span)
        assert exporter.export(spans).name == "SUCCESS"
        total += len(spans)
        print(total, flush=True)
    """
)

# queues spans in a BatchSpanProcessor that would wait a minute to export
_QUEUE_AND_WAIT = textwrap.dedent(
    """
    import faulthandler, signal, sys, time
    from opentelemetry.sdk.trace import TracerProvider

    # A hang shows every thread's stack in the test's report.
    faulthandler.dump_traceback_later(45, exit=True)
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from otelzmq.ctf.exporters import CtfSpanExporter

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(
            CtfSpanExporter(sys.argv[1]), schedule_delay_millis=60_000
        )
    )
    tracer = provider.get_tracer("exit")
    for n in range(int(sys.argv[2])):
        tracer.start_span(f"span-{n}").end()
    print("queued", flush=True)
    if sys.argv[3] == "wait":
        time.sleep(60)
    """
)


def _span_count(events) -> int:
    total = 0
    for event in events:
        message = ResourceSpans()
        message.ParseFromString(event.payload)
        total += sum(len(scope.spans) for scope in message.scope_spans)
    return total


def _assert_whole_packets(trace: Path) -> None:
    for path in trace.glob("ust/uid/*/64-bit/channel0_*"):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            magic, packet_bits = struct.unpack_from("<I52xQ", data, offset)
            assert magic == PACKET_MAGIC, f"{path} byte {offset}"
            offset += packet_bits // 8
        assert offset == len(data), f"{path} ends inside a packet"


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [1, 500, 5000])
def test_sigkill_leaves_a_readable_trace(
    tmp_path: Path, bt_decode, kill_after: int
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _EXPORT_FOREVER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        written = 0
        for line in process.stdout:
            written = int(line)
            if written >= kill_after:
                break
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)

    assert written >= kill_after, "the writer died before the kill"
    _assert_whole_packets(tmp_path)
    # every span reported as exported is there, maybe a batch more
    assert _span_count(bt_decode(tmp_path)) >= written

    # a restarted host appends to the same trace, padding cut off
    subprocess.run(
        [sys.executable, "-c", _QUEUE_AND_WAIT, str(tmp_path), "3", "exit"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    _assert_whole_packets(tmp_path)
    assert _span_count(bt_decode(tmp_path)) >= written + 3


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["sigterm", "exit"])
def test_shutdown_flushes_queued_spans(tmp_path: Path, bt_decode, ending: str) -> None:
    mode = "wait" if ending == "sigterm" else "exit"
    process = subprocess.Popen(
        [sys.executable, "-c", _QUEUE_AND_WAIT, str(tmp_path), "700", mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline() == "queued\n"
        if ending == "sigterm":
            process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
        process.wait(timeout=30)

    _assert_whole_packets(tmp_path)
    assert _span_count(bt_decode(tmp_path)) == 700
