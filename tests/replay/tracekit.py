"""Build small CTF traces byte by byte for the reader and replay tests.

The traces use LTTng's compact event header (a 5-bit id and a 27-bit
timestamp), a clock with ``offset_s``, ``offset`` and a 1 MHz frequency, and
event classes covering every TSDL type, so they exercise paths the LTTng
fixture and our writer never take.
"""

from __future__ import annotations

import os
import struct
import uuid as uuid_module
from collections.abc import Sequence
from pathlib import Path

TRACE_UUID = uuid_module.UUID("2a6422d0-6cee-11e0-8c08-cb07d7b3a564")
CLOCK_OFFSET_S = 1_700_000_000
CLOCK_OFFSET = 500
CLOCK_FREQ = 1_000_000

METADATA = """/* CTF 1.8 */
typealias integer { size = 8; align = 8; signed = false; } := uint8_t;
typealias integer { size = 16; align = 8; signed = false; } := uint16_t;
typealias integer { size = 32; align = 8; signed = false; } := uint32_t;
typealias integer { size = 64; align = 8; signed = false; } := uint64_t;
typealias integer { size = 5; align = 1; signed = false; } := uint5_t;
typedef uint32_t my_u32;

trace {
    major = 1;
    minor = 8;
    uuid = "%(uuid)s";
    byte_order = le;
    packet.header := struct {
        uint32_t magic;
        uint8_t  uuid[16];
        uint32_t stream_id;
    };
};

env { hostname = "synthetic"; domain = "ust"; };

clock {
    name = "mono";
    freq = %(freq)d;
    offset_s = %(offset_s)d;
    offset = %(offset)d;
};

typealias integer {
    size = 27; align = 1; signed = false;
    map = clock.mono.value;
} := uint27_clock_t;
typealias integer {
    size = 64; align = 8; signed = false;
    map = clock.mono.value;
} := uint64_clock_t;

struct packet_context {
    uint64_clock_t timestamp_begin;
    uint64_clock_t timestamp_end;
    uint64_t content_size;
    uint64_t packet_size;
    uint64_t packet_seq_num;
    uint64_t events_discarded;
};

struct event_header_compact {
    enum : uint5_t { compact = 0 ... 30, extended = 31 } id;
    variant <id> {
        struct { uint27_clock_t timestamp; } compact;
        struct { uint32_t id; uint64_clock_t timestamp; } extended;
    } v;
} align(8);

stream {
    id = 0;
    event.header := struct event_header_compact;
    packet.context := struct packet_context;
    event.context := struct {
        integer { size = 32; align = 8; signed = 1; } _vtid;
    };
};

event {
    name = "demo:all";
    id = 0;
    stream_id = 0;
    fields := struct {
        string _name;
        integer { size = 3; align = 1; signed = true; } small;
        integer { size = 13; align = 1; signed = false; base = hex; } odd;
        integer { size = 16; align = 8; byte_order = be; } be16;
        integer { size = 24; align = 8; signed = true; } s24;
        floating_point { exp_dig = 11; mant_dig = 53; align = 64; } dbl;
        enum : uint8_t { RED, GREEN = 5, "BLUE" = 10 ... 20 } color;
        variant <color> {
            uint16_t RED;
            string GREEN;
            uint32_t BLUE;
        } choice;
        struct { uint8_t a; uint16_t b; } pairs[2];
        uint8_t tag[3];
        integer { size = 8; align = 8; encoding = UTF8; } text[4];
        my_u32 _count;
        uint16_t values[_count];
    };
};

event {
    name = "demo:bytes";
    id = 1;
    stream_id = 0;
    fields := struct {
        uint32_t __data_length;
        uint8_t _data[__data_length];
    };
};
"""


class BitWriter:
    """Packs little-endian bit fields the way CTF lays them out."""

    def __init__(self) -> None:
        self.value = 0
        self.pos = 0

    def align(self, bits: int) -> None:
        self.pos = (self.pos + bits - 1) // bits * bits

    def uint(self, value: int, size: int, align: int = 8) -> None:
        self.align(align)
        value &= (1 << size) - 1
        self.value |= value << self.pos
        self.pos += size

    def raw(self, data: bytes, align: int = 8) -> None:
        self.align(align)
        if self.pos % 8:
            raise ValueError("raw bytes must start on a byte")
        self.value |= int.from_bytes(data, "little") << self.pos
        self.pos += len(data) * 8

    def be16(self, value: int) -> None:
        self.raw(value.to_bytes(2, "big"))

    def to_bytes(self) -> bytes:
        return self.value.to_bytes((self.pos + 7) // 8, "little")


def metadata_text() -> str:
    return METADATA % {
        "uuid": TRACE_UUID,
        "freq": CLOCK_FREQ,
        "offset_s": CLOCK_OFFSET_S,
        "offset": CLOCK_OFFSET,
    }


def to_ns(cycles: int) -> int:
    """What the reader must report for a clock value of this trace."""
    return CLOCK_OFFSET_S * 10**9 + (cycles + CLOCK_OFFSET) * 10**9 // CLOCK_FREQ


def event_header(writer: BitWriter, event_id: int, cycles: int, extended: bool) -> None:
    writer.align(8)
    if extended:
        writer.uint(31, 5, 1)
        writer.uint(event_id, 32, 8)
        writer.uint(cycles, 64, 8)
    else:
        writer.uint(event_id, 5, 1)
        writer.uint(cycles & ((1 << 27) - 1), 27, 1)


def bytes_event(
    writer: BitWriter, cycles: int, data: bytes, vtid: int = 7, extended: bool = False
) -> None:
    event_header(writer, 1, cycles, extended)
    writer.uint(vtid, 32)
    writer.uint(len(data), 32)
    writer.raw(data)


def all_types_event(writer: BitWriter, cycles: int, color: int) -> None:
    event_header(writer, 0, cycles, False)
    writer.uint(-3, 32)
    # The fields structure is aligned like its most aligned member (dbl).
    writer.align(64)
    writer.raw(b"hello\0")
    writer.uint(-2, 3, 1)
    writer.uint(0x1ABC, 13, 1)
    writer.be16(0x1234)
    writer.uint(-5, 24)
    writer.align(64)
    writer.raw(struct.pack("<d", 2.5))
    writer.uint(color, 8)
    if color == 0:
        writer.uint(513, 16)
    elif color == 5:
        writer.raw(b"green\0")
    else:
        writer.uint(70000, 32)
    for a, b in ((1, 2), (3, 4)):
        writer.uint(a, 8)
        writer.uint(b, 16)
    writer.raw(b"\x01\x02\x03")
    writer.raw(b"ab\0\0")
    writer.uint(3, 32)
    for value in (10, 20, 30):
        writer.uint(value, 16)


def packet(
    body: BitWriter | bytes,
    *,
    begin: int,
    end: int,
    seq: int = 0,
    discarded: int = 0,
    padding: int = 0,
    magic: int = 0xC1FC1FC1,
    trace_uuid: bytes = TRACE_UUID.bytes,
) -> bytes:
    """Wrap event bytes (written after a 72-byte header) into a packet."""
    events = body.to_bytes() if isinstance(body, BitWriter) else body
    header_size = 4 + 16 + 4 + 6 * 8
    content = header_size + len(events)
    size = content + padding
    head = struct.pack("<I16sI", magic, trace_uuid, 0)
    context = struct.pack("<QQQQQQ", begin, end, content * 8, size * 8, seq, discarded)
    return head + context + events + b"\0" * padding


def new_events() -> BitWriter:
    """A writer positioned just after the packet header and context."""
    writer = BitWriter()
    writer.pos = (4 + 16 + 4 + 6 * 8) * 8
    return writer


def finish(writer: BitWriter) -> bytes:
    """The event bytes of a writer from :func:`new_events`."""
    return writer.to_bytes()[4 + 16 + 4 + 6 * 8 :]


def write_trace(
    folder: Path, packets: Sequence[bytes], stream: str = "stream_0"
) -> Path:
    """Write metadata and one stream file; return the trace folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metadata").write_text(metadata_text())
    (folder / stream).write_bytes(b"".join(packets))
    return folder


def bytes_packets(
    count: int, events_per_packet: int, payload: int, start: int = 1000
) -> list[bytes]:
    """``count`` packets of ``demo:bytes`` events, one clock tick apart."""
    packets = []
    cycles = start
    for number in range(count):
        writer = new_events()
        begin = cycles
        for index in range(events_per_packet):
            data = bytes([(number + index) % 256]) * payload
            bytes_event(writer, cycles, data)
            cycles += 1
        packets.append(packet(finish(writer), begin=begin, end=cycles, seq=number))
    return packets


def copy_tree(source: Path, target: Path) -> Path:
    """Copy a trace folder tree with writable files (fixtures are read-only)."""
    for folder, _subfolders, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            data = (Path(folder) / name).read_bytes()
            (target / relative / name).write_bytes(data)
    return target
