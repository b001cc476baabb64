"""The CTF writer, checked against babeltrace2 and LTTng's own metadata."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from otelzmq.ctf import metadata
from otelzmq.ctf.writer import CtfWriterError, open_trace


def _stream_dir(trace: Path) -> Path:
    return trace / "ust" / "uid" / str(os.getuid()) / "64-bit"


def _packets(path: Path) -> list[tuple[int, int, int, int]]:
    """Return (offset, content bytes, packet bytes, seq) of each packet."""
    data = path.read_bytes()
    packets, offset = [], 0
    while offset < len(data):
        fields = struct.unpack_from("<I16sIQQQQQQQI", data, offset)
        assert fields[0] == metadata.PACKET_MAGIC
        packets.append((offset, fields[6] // 8, fields[7] // 8, fields[8]))
        offset += fields[7] // 8
    assert offset == len(data)
    return packets


def test_metadata_mirrors_lttng_except_its_values(lttng_fixture: Path) -> None:
    lttng = metadata.unpack_metadata(
        (lttng_fixture / "ust/uid/0/64-bit/metadata").read_bytes()
    )
    params = metadata.TraceParams(
        trace_uuid=uuid.uuid4(),
        clock_uuid=uuid.uuid4(),
        clock_offset=123,
        uid=0,
        hostname="vm",
        trace_name="otel-demo",
        creation_datetime="20261203T180414+0000",
    )
    ours = metadata.render_metadata(params)

    values = re.compile(r"(uuid|offset|tracer_\w+) = [^;]*;")
    ours_only = "\tabsolute = true; /* origin is the Unix epoch */\n"
    assert ours.count(ours_only) == 1
    expected = values.sub(r"\1", lttng)
    assert values.sub(r"\1", ours.replace(ours_only, "")) == expected
    assert metadata.parse_metadata(ours) == params
    packed = metadata.pack_metadata(ours, params.trace_uuid)
    assert metadata.unpack_metadata(packed) == ours


def test_parse_metadata_rejects_other_tracers(lttng_fixture: Path) -> None:
    lttng = metadata.unpack_metadata(
        (lttng_fixture / "ust/uid/0/64-bit/metadata").read_bytes()
    )

    with pytest.raises(metadata.MetadataError, match="lttng-ust"):
        metadata.parse_metadata(lttng)
    with pytest.raises(metadata.MetadataError, match="truncated"):
        metadata.unpack_metadata(struct.pack("<I", metadata.METADATA_MAGIC) + b"x")


def test_events_round_trip_through_babeltrace2(tmp_path: Path, bt_decode) -> None:
    payloads = [b"", b"\x00\xff" * 10, os.urandom(3000), os.urandom(70_000)]
    before = time.time_ns()
    stream = open_trace(tmp_path, hostname="h", trace_name="t").open_stream()
    stream.write(metadata.EVENT_IDS["resource_spans"], payloads, 4242)
    stream.write(metadata.EVENT_IDS["resource_logs"], [b"log"], -7)
    stream.close()
    after = time.time_ns()

    events = bt_decode(tmp_path)
    assert [e.name for e in events] == ["resource_spans"] * 4 + ["resource_logs"]
    assert [e.payload for e in events] == [*payloads, b"log"]
    assert [e.vtid for e in events] == [4242] * 4 + [-7]
    stamps = [e.timestamp_ns for e in events]
    assert stamps == sorted(stamps)
    # the clock maps to wall-clock time (a few microseconds of rounding)
    assert before - 10_000 <= stamps[0] and stamps[-1] <= after + 10_000


def test_batches_split_into_packets_under_the_cap(tmp_path: Path, bt_decode) -> None:
    stream = open_trace(tmp_path, hostname="h", trace_name="t").open_stream(
        max_packet_size=4096
    )
    payloads = [bytes([n]) * 1000 for n in range(10)] + [b"big" * 5000]
    stream.write(0, payloads, 1)
    stream.write(0, [b"last"], 1)
    stream.close()

    packets = _packets(Path(stream.path))
    assert [seq for *_, seq in packets] == list(range(len(packets)))
    assert all(offset % 128 == 0 for offset, *_ in packets)
    sizes = [size for _, _, size, _ in packets]
    # three 1000-byte events per 4 KiB packet; the 15 kB event alone
    assert len(packets) == 6 and sizes[4] > 15_000
    assert all(size <= 4096 for index, size in enumerate(sizes) if index != 4)
    assert [e.payload for e in bt_decode(tmp_path)] == [*payloads, b"last"]


def test_traces_of_several_hosts_merge(tmp_path: Path, bt_decode) -> None:
    for host in ("client-1", "proxy"):
        trace = open_trace(tmp_path / host, hostname=host, trace_name=host)
        stream = trace.open_stream()
        stream.write(0, [host.encode()], 1)
        stream.close()

    assert [e.payload for e in bt_decode(tmp_path)] == [b"client-1", b"proxy"]


def test_streams_share_one_trace(tmp_path: Path, bt_decode, bt_details) -> None:
    trace = open_trace(tmp_path, hostname="h", trace_name="t")
    assert open_trace(tmp_path / ".", hostname="x", trace_name="y") is trace
    first, second = trace.open_stream(), trace.open_stream()
    first.write(0, [b"a"], 1)
    second.write(1, [b"b"], 2)
    first.write(0, [b"c"], 1)
    first.close()
    second.close()

    names = sorted(p.name for p in _stream_dir(tmp_path).iterdir())
    assert names == ["channel0_0", "channel0_1", "metadata"]
    assert [e.payload for e in bt_decode(tmp_path)] == [b"a", b"b", b"c"]
    details = bt_details(tmp_path, "with-data=false")
    assert details.count("Trace class:") == 1


def test_concurrent_writers_lose_nothing(tmp_path: Path, bt_decode) -> None:
    stream = open_trace(tmp_path, hostname="h", trace_name="t").open_stream(
        max_packet_size=2048
    )

    def produce(tag: int) -> None:
        for n in range(50):
            stream.write(0, [f"{tag}-{n}".encode() * 20], tag)

    threads = [threading.Thread(target=produce, args=(tag,)) for tag in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stream.close()

    events = bt_decode(tmp_path)
    assert sorted(e.payload for e in events) == sorted(
        f"{tag}-{n}".encode() * 20 for tag in range(4) for n in range(50)
    )
    assert all(e.payload.startswith(str(e.vtid).encode()) for e in events)


def test_closed_stream_refuses_writes(tmp_path: Path) -> None:
    stream = open_trace(tmp_path, hostname="h", trace_name="t").open_stream()
    stream.close()
    stream.close()

    with pytest.raises(CtfWriterError, match="closed"):
        stream.write(0, [b"x"], 1)
    assert Path(stream.path).stat().st_size == 0


def test_foreign_trace_is_left_untouched(tmp_path: Path, lttng_fixture: Path) -> None:
    target = _stream_dir(tmp_path)
    shutil.copytree(lttng_fixture / "ust/uid/0/64-bit", target)
    before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}

    with pytest.raises(CtfWriterError, match="lttng-ust"):
        open_trace(tmp_path, hostname="h", trace_name="t")
    after = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}
    assert after == before


_WRITE_ONCE = textwrap.dedent(
    """
    import sys
    from otelzmq.ctf.writer import open_trace
    stream = open_trace(sys.argv[1], hostname="h", trace_name="t").open_stream()
    payloads = [arg.encode() for arg in sys.argv[2:] if arg != "keep-tail"]
    stream.write(0, payloads, 5)
    if "keep-tail" not in sys.argv:
        stream.close()
    """
)


def _write_in_new_process(trace: Path, *payloads: str) -> None:
    subprocess.run(
        [sys.executable, "-c", _WRITE_ONCE, str(trace), *payloads],
        check=True,
        timeout=60,
    )


@pytest.mark.slow
def test_restarted_writer_appends_to_the_same_trace(tmp_path: Path, bt_decode) -> None:
    _write_in_new_process(tmp_path, "first")
    meta = (_stream_dir(tmp_path) / "metadata").read_bytes()
    _write_in_new_process(tmp_path, "second")

    assert (_stream_dir(tmp_path) / "metadata").read_bytes() == meta
    assert (_stream_dir(tmp_path) / "channel0_1").exists()
    assert [e.payload for e in bt_decode(tmp_path)] == [b"first", b"second"]


@pytest.mark.slow
def test_restart_repairs_a_torn_stream(tmp_path: Path, bt_decode) -> None:
    # a writer that died keeps its trailing padding packet
    _write_in_new_process(tmp_path, "kept", "keep-tail")
    stream_file = _stream_dir(tmp_path) / "channel0_0"
    assert len(_packets(stream_file)) == 2

    # then the file loses its end, as after a power cut
    _write_in_new_process(tmp_path, "whole")
    with stream_file.open("ab") as file:
        file.write(stream_file.read_bytes()[:100])
    _write_in_new_process(tmp_path, "after")

    assert len(_packets(stream_file)) == 1
    assert [e.payload for e in bt_decode(tmp_path)] == [b"kept", b"whole", b"after"]


@pytest.mark.slow
def test_failed_write_is_counted_as_discarded(tmp_path: Path, bt_decode) -> None:
    script = textwrap.dedent(
        """
        import resource, signal, sys
        from otelzmq.ctf.writer import open_trace
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        stream = open_trace(sys.argv[1], hostname="h", trace_name="t").open_stream()
        stream.write(0, [b"before"], 1)
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, hard))
        try:
            stream.write(0, [b"x" * 300_000, b"y"], 1)
        except OSError as exc:
            print("failed:", exc.errno)
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        stream.write(0, [b"after"], 1)
        stream.close()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "failed: 27" in result.stdout  # EFBIG
    assert [e.payload for e in bt_decode(tmp_path)] == [b"before", b"after"]
    warnings = subprocess.run(
        ["babeltrace2", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert "discarded 2 events" in warnings.stdout + warnings.stderr


def test_rejects_tiny_packets(tmp_path: Path) -> None:
    trace = open_trace(tmp_path, hostname="h", trace_name="t")

    with pytest.raises(ValueError, match="too small"):
        trace.open_stream(max_packet_size=64)


def test_removed_directory_gets_a_new_trace(tmp_path: Path) -> None:
    first = open_trace(tmp_path / "t", hostname="h", trace_name="t")
    shutil.rmtree(tmp_path / "t")

    second = open_trace(tmp_path / "t", hostname="h", trace_name="t")
    assert second is not first
    assert second.params.trace_uuid != first.params.trace_uuid
