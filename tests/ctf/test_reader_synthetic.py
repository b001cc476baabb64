"""The reader on hand-built traces: every TSDL type, clocks and packets."""

from __future__ import annotations

from pathlib import Path

import pytest

from otelzmq.ctf.reader import CtfTrace, ReadStats, find_traces, read_events
from otelzmq.ctf.tsdl import (
    EnumType,
    MetadataError,
    VariantType,
    metadata_text,
    parse_metadata,
)
from tests.replay import tracekit


def _all_types_trace(tmp_path: Path) -> Path:
    writer = tracekit.new_events()
    tracekit.all_types_event(writer, 100, color=0)
    tracekit.all_types_event(writer, 101, color=5)
    tracekit.all_types_event(writer, 102, color=12)
    body = tracekit.finish(writer)
    return tracekit.write_trace(
        tmp_path / "trace", [tracekit.packet(body, begin=100, end=102, padding=13)]
    )


def test_every_type_decodes(tmp_path: Path) -> None:
    trace = _all_types_trace(tmp_path)

    events = list(read_events(trace, strict=True))

    assert [event.name for event in events] == ["demo:all"] * 3
    fields = events[0].fields
    assert fields["name"] == "hello"
    assert fields["small"] == -2
    assert fields["odd"] == 0x1ABC
    assert fields["be16"] == 0x1234
    assert fields["s24"] == -5
    assert fields["dbl"] == 2.5
    assert fields["color"] == 0
    assert fields["pairs"] == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]
    assert fields["tag"] == b"\x01\x02\x03"
    assert fields["text"] == "ab"
    assert fields["count"] == 3
    assert fields["values"] == [10, 20, 30]
    assert [event.fields["choice"] for event in events] == [513, "green", 70000]
    assert {event.vtid for event in events} == {-3}


def test_clock_offsets_and_frequency(tmp_path: Path) -> None:
    trace = _all_types_trace(tmp_path)

    events = list(read_events(trace, strict=True))

    assert [event.clock_value for event in events] == [100, 101, 102]
    assert [event.timestamp_ns for event in events] == [
        tracekit.to_ns(100),
        tracekit.to_ns(101),
        tracekit.to_ns(102),
    ]
    assert events[0].timestamp_ns == 1_700_000_000_000_000_000 + 600_000


def test_compact_timestamps_wrap_around(tmp_path: Path) -> None:
    wrap = 1 << 27
    begin = 3 * wrap - 10
    writer = tracekit.new_events()
    tracekit.bytes_event(writer, begin + 5, b"a")
    tracekit.bytes_event(writer, 3 * wrap + 3, b"b")
    tracekit.bytes_event(writer, 3 * wrap + 100, b"c", extended=True)
    tracekit.bytes_event(writer, 3 * wrap + 90, b"d")
    body = tracekit.finish(writer)
    trace = tracekit.write_trace(
        tmp_path / "trace", [tracekit.packet(body, begin=begin, end=begin)]
    )

    events = list(read_events(trace, strict=True))

    assert [event.fields["data"] for event in events] == [b"a", b"b", b"c", b"d"]
    # The last compact value (low bits of 3*wrap+90) is below the current
    # low bits (of 3*wrap+100), so the reader assumes one more wrap.
    assert [event.clock_value for event in events] == [
        begin + 5,
        3 * wrap + 3,
        3 * wrap + 100,
        4 * wrap + 90,
    ]


def test_multi_packet_streams_discards_and_merge(tmp_path: Path) -> None:
    first = tracekit.bytes_packets(3, 4, 10, start=1000)
    second = tracekit.bytes_packets(2, 5, 20, start=1002)
    # Packet 2 of the first stream says 7 events were dropped before it.
    first[2] = first[2][:64] + (7).to_bytes(8, "little") + first[2][72:]
    trace = tracekit.write_trace(tmp_path / "trace", first, stream="chan_0")
    (trace / "chan_1").write_bytes(b"".join(second))
    stats = ReadStats()

    events = list(read_events(trace, strict=True, stats=stats))

    assert len(events) == 12 + 10
    times = [event.timestamp_ns for event in events]
    assert times == sorted(times)
    assert {Path(event.stream_path).name for event in events} == {"chan_0", "chan_1"}
    assert stats.packets == 5
    assert stats.discarded_events == 7
    assert stats.events == 22


def test_lost_packets_are_counted(tmp_path: Path) -> None:
    packets = tracekit.bytes_packets(3, 1, 5)
    stats = ReadStats()
    trace = tracekit.write_trace(tmp_path / "trace", [packets[0], packets[2]])

    events = list(read_events(trace, stats=stats))

    assert len(events) == 2
    assert stats.lost_packets == 1


def test_tsdl_parses_declarations() -> None:
    meta = parse_metadata(tracekit.metadata_text())

    header = meta.streams[0].event_header
    assert header is not None
    id_type = header.fields[0][1]
    assert isinstance(id_type, EnumType)
    assert id_type.labels(31) == ["extended"]
    assert isinstance(header.fields[1][1], VariantType)
    assert meta.clocks["mono"].offset_s == tracekit.CLOCK_OFFSET_S
    assert meta.env["hostname"] == "synthetic"
    assert {event.name for event in meta.streams[0].events.values()} == {
        "demo:all",
        "demo:bytes",
    }


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("/* CTF 1.8 */\ntrace {\n  major = 1;\n  byte_order = sideways;\n};\n", 4),
        ("/* CTF 1.8 */\n\ntypealias integer { size = 99; } := x;\n", 3),
        ("/* CTF 1.8 */\ntrace { major = 1; };\nevent {\n  fields := nope;\n};\n", 4),
        ("/* CTF 1.8 */\ntrace { major = 1 };\n", 2),
        ("/* CTF 1.8 */\ntrace { major = 1; };\nstream { id = 0; } @\n", 3),
    ],
)
def test_metadata_errors_name_the_line(text: str, line: int) -> None:
    with pytest.raises(MetadataError) as caught:
        parse_metadata(text, path="meta")

    assert caught.value.line == line
    assert f"meta, line {line}:" in str(caught.value)


def test_metadata_without_trace_block_is_an_error() -> None:
    with pytest.raises(MetadataError, match="no trace block"):
        parse_metadata("/* CTF 1.8 */\nenv { a = 1; };\n")


def test_big_endian_trace(tmp_path: Path) -> None:
    text = (
        "/* CTF 1.8 */\n"
        "typealias integer { size = 32; align = 8; signed = false; } := u32;\n"
        "typealias integer { size = 12; align = 1; signed = false; } := u12;\n"
        "trace { major = 1; minor = 8; byte_order = be; };\n"
        'event { name = "be:event"; fields := struct { u32 a; u12 b; u12 c; }; };\n'
    )
    folder = tmp_path / "be"
    folder.mkdir()
    (folder / "metadata").write_text(text)
    # Big-endian bit fields fill each byte from its most significant bit.
    (folder / "stream").write_bytes(bytes.fromhex("01020304") + bytes.fromhex("ABCDEF"))

    events = list(read_events(folder, strict=True))

    assert [event.fields for event in events] == [
        {"a": 0x01020304, "b": 0xABC, "c": 0xDEF}
    ]
    assert events[0].timestamp_ns == 0


def test_packetized_metadata_matches_plain(tmp_path: Path) -> None:
    import struct

    text = tracekit.metadata_text().encode()
    packets = b""
    for start in range(0, len(text), 1000):
        chunk = text[start : start + 1000]
        content = 37 + len(chunk)
        size = content + 11
        header = struct.pack(
            "<I16sIIIBBBBB",
            0x75D11D57,
            tracekit.TRACE_UUID.bytes,
            0,
            content * 8,
            size * 8,
            0,
            0,
            0,
            1,
            8,
        )
        packets += header + chunk + b"\0" * 11

    assert metadata_text(packets) == text.decode()


def test_find_traces_in_lttng_layouts(tmp_path: Path) -> None:
    body = tracekit.finish(tracekit.new_events())
    packet = tracekit.packet(body, begin=1, end=1)
    uid = tmp_path / "out" / "ctf-traces" / "client-1" / "ust" / "uid" / "0" / "64-bit"
    pid = (
        tmp_path / "out" / "ctf-traces" / "server-1" / "ust" / "pid" / "srv-42-20261203"
    )
    tracekit.write_trace(uid, [packet])
    tracekit.write_trace(pid, [packet])
    (uid / "index").mkdir()

    everywhere = find_traces(tmp_path / "out")
    one_host = find_traces([tmp_path / "out" / "ctf-traces" / "server-1"])
    by_metadata = find_traces(str(uid / "metadata"))

    assert everywhere == sorted([str(uid), str(pid)])
    assert one_host == [str(pid)]
    assert by_metadata == [str(uid)]
    assert CtfTrace(uid).host == "client-1"
    assert CtfTrace(pid).host == "server-1"


def test_memory_does_not_grow_with_trace_size(tmp_path: Path) -> None:
    import tracemalloc

    small = tracekit.write_trace(tmp_path / "small", tracekit.bytes_packets(50, 8, 400))
    large = tracekit.write_trace(
        tmp_path / "large", tracekit.bytes_packets(1000, 8, 400)
    )

    def peak(trace: Path) -> int:
        count = 0
        tracemalloc.start()
        try:
            for _event in read_events(trace, strict=True):
                count += 1
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small_peak = peak(small)
    large_peak = peak(large)
    size_ratio = (large / "stream_0").stat().st_size / (
        small / "stream_0"
    ).stat().st_size

    assert size_ratio >= 19
    # Memory is bounded by one packet, whatever the number of packets.
    assert large_peak < 2 * small_peak


def test_less_common_tsdl_forms(tmp_path: Path) -> None:
    text = r"""/* CTF 1.8 */
typealias integer { size = 32; align = 8; signed = true; } := int;
typealias integer { size = 8; align = 8; signed = false; base = 0x10; } := u8;
trace { major = 1; minor = 8; byte_order = le; };  // no packet header
env { note = "tab\there"; level = -3; };
callsite { name = "x"; func = "f"; file = "a.c"; line = 12; ip = 0x1; };
enum level { LOW = -2 ... -1, MID = 0, HIGH = 010 };
variant pick { u8 MID; int HIGH; };
struct pair { u8 left, right; };
event {
    name = "forms:one";
    fields := struct {
        typealias integer { size = 16; align = 16; signed = false; } := u16;
        enum level lvl;
        variant pick <lvl> choice;
        struct pair twice[2];
        u16 wide;
    };
};
"""
    folder = tmp_path / "forms"
    folder.mkdir()
    (folder / "metadata").write_text(text)
    # lvl = 8 (HIGH, octal 010), choice = int 7, pairs, pad to 16 bits, wide.
    body = (8).to_bytes(4, "little", signed=True) + (7).to_bytes(4, "little")
    body += bytes([1, 2, 3, 4]) + (0xBEEF).to_bytes(2, "little")
    (folder / "stream").write_bytes(body)

    events = list(read_events(folder, strict=True))
    meta = parse_metadata(text)

    assert meta.env == {"note": "tab\there", "level": -3}
    assert [event.fields for event in events] == [
        {
            "lvl": 8,
            "choice": 7,
            "twice": [{"left": 1, "right": 2}, {"left": 3, "right": 4}],
            "wide": 0xBEEF,
        }
    ]
