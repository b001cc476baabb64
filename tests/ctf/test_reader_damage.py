"""Damaged traces: clear errors naming file and offset, no lost good events."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from otelzmq.ctf.reader import (
    CtfError,
    EventDecodingError,
    MetadataError,
    PacketError,
    TraceNotFoundError,
    find_traces,
    read_events,
)
from tests.conftest import LTTNG_FIXTURE
from tests.replay import tracekit

STREAM_0_EVENTS = 8  # events of vtid 10641, all in channel0_0
STREAM_1_EVENTS = 9  # events of vtid 10640, all in channel0_1


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    """A writable copy of the LTTng fixture's trace folder."""
    source = LTTNG_FIXTURE / "ust" / "uid" / "0" / "64-bit"
    return tracekit.copy_tree(
        source, tmp_path / "host" / "ust" / "uid" / "0" / "64-bit"
    )


def _patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as file:
        file.seek(offset)
        file.write(data)


def _read(trace: Path) -> tuple[list, list[CtfError]]:
    errors: list[CtfError] = []
    return list(read_events(trace, on_error=errors.append)), errors


def test_truncated_stream_keeps_earlier_events(trace: Path) -> None:
    os.truncate(trace / "channel0_0", 3000)

    events, errors = _read(trace)

    kept = [event for event in events if event.stream_path.endswith("channel0_0")]
    assert 0 < len(kept) < STREAM_0_EVENTS
    assert all(event.offset < 3000 for event in kept)
    assert len(events) == len(kept) + STREAM_1_EVENTS
    assert errors
    assert all(str(trace / "channel0_0") in str(error) for error in errors)
    assert isinstance(errors[0], EventDecodingError)
    assert kept[-1].offset < errors[0].offset < 3000
    assert isinstance(errors[-1], PacketError)
    assert "file ends inside a packet" in str(errors[-1])


def test_strict_raises_at_the_damage(trace: Path) -> None:
    os.truncate(trace / "channel0_0", 3000)

    with pytest.raises(CtfError) as caught:
        list(read_events(trace, strict=True))

    assert caught.value.path == str(trace / "channel0_0")
    assert caught.value.offset is not None and caught.value.offset < 3000


def test_truncated_inside_packet_header(trace: Path) -> None:
    os.truncate(trace / "channel0_1", 40)

    events, errors = _read(trace)

    assert len(events) == STREAM_0_EVENTS
    assert len(errors) == 1
    assert isinstance(errors[0], PacketError)
    assert errors[0].offset == 0
    assert "truncated packet header" in str(errors[0])


def test_bad_magic(trace: Path) -> None:
    _patch(trace / "channel0_1", 0, b"\xde\xad\xbe\xef")

    events, errors = _read(trace)

    assert len(events) == STREAM_0_EVENTS
    assert [type(error) for error in errors] == [PacketError]
    assert "bad packet magic 0xefbeadde" in str(errors[0])
    assert errors[0].offset == 0


def test_bad_uuid(trace: Path) -> None:
    _patch(trace / "channel0_0", 4, b"\0" * 16)

    events, errors = _read(trace)

    assert len(events) == STREAM_1_EVENTS
    assert "differs from the trace uuid" in str(errors[0])
    assert errors[0].path == str(trace / "channel0_0")


def test_content_size_larger_than_packet_size(trace: Path) -> None:
    _patch(trace / "channel0_0", 48, struct.pack("<Q", 8192 * 8 + 8))

    events, errors = _read(trace)

    assert len(events) == STREAM_1_EVENTS
    assert "exceeds packet size" in str(errors[0])


def test_packet_larger_than_file(trace: Path) -> None:
    _patch(trace / "channel0_0", 56, struct.pack("<Q", 4 * 8192 * 8))

    events, errors = _read(trace)

    # The content is all there, so every event is read before the error.
    assert len(events) == STREAM_0_EVENTS + STREAM_1_EVENTS
    assert [type(error) for error in errors] == [PacketError]
    assert "file ends inside a packet of 32768 bytes" in str(errors[0])


def test_content_larger_than_file(trace: Path) -> None:
    big = struct.pack("<QQ", 3 * 8192 * 8, 4 * 8192 * 8)
    _patch(trace / "channel0_0", 48, big)

    events, errors = _read(trace)

    assert len(events) >= STREAM_1_EVENTS
    assert errors
    assert all(error.path == str(trace / "channel0_0") for error in errors)


def test_damaged_event_skips_only_its_packet(tmp_path: Path) -> None:
    packets = tracekit.bytes_packets(3, 4, 10)
    # Event id 9 does not exist: the second packet cannot be decoded.
    damaged = bytearray(packets[1])
    damaged[72] = (damaged[72] & 0xE0) | 9
    packets[1] = bytes(damaged)
    folder = tracekit.write_trace(tmp_path / "trace", packets)

    events, errors = _read(folder)

    assert len(events) == 8
    assert [type(error) for error in errors] == [EventDecodingError]
    assert errors[0].offset == len(packets[0]) + 72
    assert "unknown event id 9" in str(errors[0])


def test_missing_metadata_means_no_trace(trace: Path) -> None:
    os.remove(trace / "metadata")

    with pytest.raises(TraceNotFoundError) as caught:
        find_traces(trace.parent)

    assert caught.value.path == str(trace.parent)
    assert "no CTF trace" in str(caught.value)


def test_folder_without_ctf(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")

    with pytest.raises(TraceNotFoundError, match="no CTF trace"):
        list(read_events(tmp_path))
    with pytest.raises(TraceNotFoundError, match="no such file"):
        read_events(tmp_path / "missing")


def test_unparsable_metadata(trace: Path, tmp_path: Path) -> None:
    (trace / "metadata").write_text(
        "/* CTF 1.8 */\ntrace {\n  major = 1;\n};\nstream {\n  id = 0\n};\n"
    )
    good = tracekit.write_trace(tmp_path / "good", tracekit.bytes_packets(1, 2, 5))

    events, errors = _read([trace, good])

    assert len(events) == 2
    assert len(errors) == 1
    assert isinstance(errors[0], MetadataError)
    assert errors[0].line == 7
    assert errors[0].path == str(trace / "metadata")
    with pytest.raises(MetadataError, match=r"metadata, line 7: expected ';'"):
        list(read_events(trace, strict=True))


def test_truncated_metadata_packet(trace: Path) -> None:
    os.truncate(trace / "metadata", 1000)

    events, errors = _read(trace)

    assert events == []
    assert isinstance(errors[0], MetadataError)
    assert errors[0].offset == 0
    assert "runs past the end of the file" in str(errors[0])


def test_garbage_metadata(trace: Path) -> None:
    (trace / "metadata").write_bytes(b"\xff\xfe\x00garbage")

    with pytest.raises(MetadataError, match="neither packetized nor UTF-8"):
        list(read_events(trace, strict=True))


def test_random_corruption_is_always_reported(tmp_path: Path) -> None:
    """Flipped, zeroed and cut bytes anywhere give CtfErrors, never a crash."""
    import random

    rng = random.Random(20261203)
    source = LTTNG_FIXTURE / "ust" / "uid" / "0" / "64-bit"
    originals = {
        name: (source / name).read_bytes()
        for name in ("metadata", "channel0_0", "channel0_1")
    }
    case = tracekit.copy_tree(source, tmp_path / "case")
    reported = 0
    for _ in range(80):
        for name, data in originals.items():
            (case / name).write_bytes(data)
        name = rng.choice(sorted(originals))
        data = bytearray(originals[name])
        start = rng.randrange(len(data))
        if rng.random() < 0.2:
            del data[start:]
        else:
            for offset in range(start, min(start + rng.randint(1, 8), len(data))):
                data[offset] = rng.choice((0, 0xFF, data[offset] ^ 0x10))
        (case / name).write_bytes(bytes(data))

        events, errors = _read(case)

        assert len(events) <= STREAM_0_EVENTS + STREAM_1_EVENTS
        assert all(isinstance(error, CtfError) for error in errors)
        reported += bool(errors)
    assert reported > 0


def test_metadata_that_parses_but_cannot_be_decoded(tmp_path: Path) -> None:
    folder = tmp_path / "trace"
    folder.mkdir()
    (folder / "metadata").write_text(
        "/* CTF 1.8 */\n"
        "typealias integer { size = 8; align = 8; signed = false; } := u8;\n"
        "trace { major = 1; minor = 8; byte_order = le; };\n"
        'event { name = "e"; fields := struct { u8 data[missing]; }; };\n'
    )
    (folder / "stream").write_bytes(b"\x01\x02")

    events, errors = _read(folder)

    assert events == []
    assert [type(error) for error in errors] == [MetadataError]
    assert errors[0].path == str(folder / "metadata")
    assert "'missing' is not declared before its use" in str(errors[0])
