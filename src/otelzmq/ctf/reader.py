"""Read CTF 1.8 traces (LTTng-UST's, and our writer's) in pure Python.

babeltrace2 is the reference CTF reader, but its Python bindings are not
published on PyPI, so a plain ``pip install`` cannot depend on them. This
module reads the traces we need without them:

* :func:`find_traces` finds every trace folder (one holding a ``metadata``
  file) under the given paths: ``out/``, ``out/ctf-traces``, a host folder,
  a ``ust`` folder, or a trace folder itself, per-UID or per-PID.
* :class:`CtfTrace` opens one trace: its metadata (see
  :mod:`otelzmq.ctf.tsdl`) and its stream files.
* :func:`read_events` yields the events of many traces, merged in timestamp
  order, as :class:`Event` objects.

Stream files are read packet by packet with ``os.pread``, so memory stays
bounded by the largest packet whatever the size of the trace. For each
stream class, the TSDL types are compiled once into decoders (see
:mod:`otelzmq.ctf.decoders`).

Field names lose one leading underscore, as in babeltrace2 (``_vtid`` is
``vtid``). Timestamps are full clock values rebuilt from the (possibly 27- or
32-bit) event header fields as CTF specifies, then converted to nanoseconds
since the Unix epoch with the clock's offset.

Damage (a truncated file, a corrupt packet header, a packet larger than its
file, an event running past its packet) is reported as a :class:`CtfError`
naming the file and byte offset. Events before the damage are still
delivered; with ``strict=True`` the error is raised instead.
"""

from __future__ import annotations

import heapq
import logging
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from otelzmq.ctf.decoders import Compiler, Short
from otelzmq.ctf.tsdl import (
    CtfError,
    Metadata,
    MetadataError,
    StreamClass,
    read_metadata,
)

__all__ = [
    "CtfError",
    "CtfTrace",
    "Event",
    "EventDecodingError",
    "MetadataError",
    "PacketError",
    "ReadStats",
    "TraceNotFoundError",
    "find_traces",
    "read_events",
    "trace_host",
]

logger = logging.getLogger(__name__)

#: First word of every CTF packet header that has a ``magic`` field.
PACKET_MAGIC = 0xC1FC1FC1

#: Bytes read first at each packet to decode its header and context.
_HEAD_BYTES = 4096

#: Packets larger than this are refused rather than read into memory.
MAX_PACKET_BYTES = 256 * 1024 * 1024


class TraceNotFoundError(CtfError):
    """A path does not exist or holds no CTF trace."""


class PacketError(CtfError):
    """A packet header or context is damaged, or a packet is truncated."""


class EventDecodingError(CtfError):
    """An event cannot be decoded from its packet."""


# --- results --------------------------------------------------------------


@dataclass(slots=True)
class Event:
    """One decoded event.

    Attributes:
        name: event class name, e.g. ``opentelemetry:resource_spans``.
        timestamp_ns: time of the event in ns since the Unix epoch (0 when the
            stream has no clock).
        fields: payload fields by name (one leading underscore stripped).
        stream_event_context: the stream's per-event context fields.
        event_context: the event class's own context fields.
        packet_context: context of the packet holding the event.
        header: the event header fields.
        event_id: numeric id of the event class.
        stream_id: numeric id of the stream class.
        trace_path: folder of the trace (the one holding ``metadata``).
        stream_path: the stream file.
        offset: byte offset of the event in ``stream_path``.
        clock_value: raw clock value (cycles) of the event.
    """

    name: str
    timestamp_ns: int
    fields: dict[str, Any]
    stream_event_context: dict[str, Any]
    event_context: dict[str, Any]
    packet_context: dict[str, Any]
    header: dict[str, Any]
    event_id: int
    stream_id: int
    trace_path: str
    stream_path: str
    offset: int
    clock_value: int | None = None

    @property
    def vtid(self) -> int | None:
        """The ``vtid`` context field, if the trace records one."""
        value = self.stream_event_context.get("vtid")
        if value is None:
            value = self.event_context.get("vtid")
        return value


@dataclass
class ReadStats:
    """Counters filled while reading; pass one to :func:`read_events`.

    Attributes:
        events: events delivered.
        packets: packets read.
        bytes: stream bytes read.
        discarded_events: events the tracer reported as discarded (from the
            ``events_discarded`` packet context counter).
        lost_packets: packets missing according to ``packet_seq_num``.
        errors: every damage found, in order.
    """

    events: int = 0
    packets: int = 0
    bytes: int = 0
    discarded_events: int = 0
    lost_packets: int = 0
    errors: list[CtfError] = field(default_factory=list)


ErrorCallback = Callable[[CtfError], None]


# --- finding traces -------------------------------------------------------


def find_traces(paths: str | os.PathLike[str] | Iterable[Any]) -> list[str]:
    """Return every trace folder (holding a ``metadata`` file) under ``paths``.

    Args:
        paths: one path or several: ``out/``, ``out/ctf-traces``, a host
            folder, a ``ust`` folder, a trace folder or a metadata file.

    Returns:
        Sorted, de-duplicated absolute folder paths.

    Raises:
        TraceNotFoundError: a path does not exist, or no trace is found.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: set[str] = set()
    for raw in paths:
        path = os.path.abspath(os.fspath(raw))
        if not os.path.exists(path):
            raise TraceNotFoundError("no such file or folder", path=path)
        if os.path.isfile(path):
            if os.path.basename(path) != "metadata":
                raise TraceNotFoundError(
                    "not a trace folder nor a metadata file", path=path
                )
            found.add(os.path.dirname(path))
            continue
        before = len(found)
        for folder, subfolders, files in os.walk(path):
            subfolders[:] = sorted(d for d in subfolders if d != "index")
            if "metadata" in files:
                found.add(folder)
        if len(found) == before:
            raise TraceNotFoundError(
                "no CTF trace (no folder holding a 'metadata' file)", path=path
            )
    return sorted(found)


def trace_host(trace_path: str) -> str:
    """Name the host that recorded a trace.

    It is the folder just above the nearest ``ust`` folder
    (``out/ctf-traces/client-1/ust/uid/1000/64-bit`` is ``client-1``), else
    the trace folder's own name.
    """
    parts = os.path.abspath(trace_path).split(os.sep)
    for index in range(len(parts) - 1, 0, -1):
        if parts[index] == "ust" and parts[index - 1]:
            return parts[index - 1]
    return parts[-1] or trace_path


# --- traces and streams -----------------------------------------------------


@dataclass
class _StreamDecoders:
    """The compiled decoders of one stream class in one stream file."""

    stream: StreamClass
    compiler: Compiler
    packet_context: Callable | None
    event_header: Callable | None
    event_context: Callable | None
    events: dict[int, tuple[str, Callable | None, Callable | None]]


class CtfTrace:
    """One CTF trace folder: its metadata and stream files.

    Args:
        path: the folder holding ``metadata``.

    Raises:
        MetadataError: the metadata is missing or does not parse.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.path.abspath(os.fspath(path))
        self.metadata: Metadata = read_metadata(os.path.join(self.path, "metadata"))
        self.host = trace_host(self.path)

    def stream_paths(self) -> list[str]:
        """Return the stream files: every other non-hidden, non-empty file."""
        paths = []
        for name in sorted(os.listdir(self.path)):
            full = os.path.join(self.path, name)
            if name == "metadata" or name.startswith(".") or not os.path.isfile(full):
                continue
            if os.path.getsize(full) > 0:
                paths.append(full)
        return paths

    def events(
        self,
        *,
        strict: bool = False,
        on_error: ErrorCallback | None = None,
        stats: ReadStats | None = None,
    ) -> Iterator[Event]:
        """Yield the events of every stream, merged in timestamp order.

        Args:
            strict: raise the first :class:`CtfError` instead of reporting it.
            on_error: called with each :class:`CtfError` when not strict
                (default: log a warning).
            stats: counters to fill.
        """
        stats = stats if stats is not None else ReadStats()
        streams = [
            self.stream_events(path, strict=strict, on_error=on_error, stats=stats)
            for path in self.stream_paths()
        ]
        return _merge(streams)

    def stream_events(
        self,
        stream_path: str,
        *,
        strict: bool = False,
        on_error: ErrorCallback | None = None,
        stats: ReadStats | None = None,
    ) -> Iterator[Event]:
        """Yield the events of one stream file in file order."""
        reader = _StreamReader(self, stream_path, strict, on_error, stats)
        return reader.events()


def _merge(iterators: Sequence[Iterator[Event]]) -> Iterator[Event]:
    if len(iterators) == 1:
        return iterators[0]
    return heapq.merge(*iterators, key=_event_time)


def _event_time(event: Event) -> int:
    return event.timestamp_ns


class _StreamReader:
    """Decodes one stream file packet by packet."""

    def __init__(
        self,
        trace: CtfTrace,
        path: str,
        strict: bool,
        on_error: ErrorCallback | None,
        stats: ReadStats | None,
    ):
        self.trace = trace
        self.meta = trace.metadata
        self.path = path
        self.strict = strict
        self.on_error = on_error
        self.stats = stats if stats is not None else ReadStats()
        self.roots: dict[str, dict] = {}
        self.header_compiler = Compiler(self.meta, self.roots)
        self.packet_header: Callable | None = None
        self.decoders: dict[int, _StreamDecoders] = {}

    def report(self, error: CtfError) -> None:
        self.stats.errors.append(error)
        if self.strict:
            raise error
        if self.on_error is not None:
            self.on_error(error)
        else:
            logger.warning("Skipping damaged trace data: %s", error)

    def stream_decoders(self, stream_id: int) -> _StreamDecoders:
        decoders = self.decoders.get(stream_id)
        if decoders is not None:
            return decoders
        try:
            decoders = self._compile_stream(stream_id)
        except MetadataError as error:
            raise MetadataError(
                f"stream class {stream_id}: {error.message}",
                path=os.path.join(self.trace.path, "metadata"),
            ) from None
        self.decoders[stream_id] = decoders
        return decoders

    def _compile_stream(self, stream_id: int) -> _StreamDecoders:
        stream = self.meta.streams[stream_id]
        compiler = Compiler(self.meta, self.roots)
        compiler.root_types.update(self.header_compiler.root_types)
        packet_context = compiler.root("stream.packet.context", stream.packet_context)
        event_header = compiler.root("stream.event.header", stream.event_header)
        event_context = compiler.root("stream.event.context", stream.event_context)
        events = {}
        for event_id, event_class in stream.events.items():
            # Each event class compiles against its own copy of the root
            # types, so one class's fields never resolve another's.
            saved = dict(compiler.root_types)
            context = compiler.root("event.context", event_class.context)
            fields = compiler.root("event.fields", event_class.fields)
            compiler.root_types = saved
            events[event_id] = (event_class.name, context, fields)
        return _StreamDecoders(
            stream, compiler, packet_context, event_header, event_context, events
        )

    def events(self) -> Iterator[Event]:
        try:
            self.packet_header = self.header_compiler.root(
                "trace.packet.header", self.meta.packet_header
            )
        except MetadataError as error:
            self.report(
                MetadataError(
                    f"packet header: {error.message}",
                    path=os.path.join(self.trace.path, "metadata"),
                )
            )
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as error:
            self.report(PacketError(f"cannot open ({error.strerror})", path=self.path))
            return
        try:
            yield from self._events(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)

    def _events(self, fd: int, size: int) -> Iterator[Event]:
        offset = 0
        last_discarded = 0
        last_seq: int | None = None
        while offset < size:
            head = os.pread(fd, min(_HEAD_BYTES, size - offset), offset)
            try:
                packet = self._packet_start(head, offset, size)
            except CtfError as error:
                self.report(error)
                return
            decoders, context, pos, content_bits, packet_bytes, truncated = packet

            discarded = context.get("events_discarded")
            if isinstance(discarded, int) and discarded > last_discarded:
                self._discarded(discarded - last_discarded, offset)
                last_discarded = discarded
            seq = context.get("packet_seq_num")
            if isinstance(seq, int):
                if last_seq is not None and seq > last_seq + 1:
                    self.stats.lost_packets += seq - last_seq - 1
                last_seq = seq

            content_bytes = (content_bits + 7) >> 3
            if content_bytes <= len(head):
                data = head
            else:
                data = os.pread(fd, content_bytes, offset)
            self.stats.packets += 1
            self.stats.bytes += content_bytes
            yield from self._packet_events(decoders, data, offset, pos, content_bits)
            if truncated:
                self.report(
                    PacketError(
                        f"file ends inside a packet of {packet_bytes} bytes "
                        f"({size - offset} bytes left)",
                        path=self.path,
                        offset=offset,
                    )
                )
                return
            offset += packet_bytes

    def _discarded(self, count: int, offset: int) -> None:
        self.stats.discarded_events += count
        logger.warning(
            "%s: the tracer discarded %d events before the packet at byte %d",
            self.path,
            count,
            offset,
        )

    def _packet_start(
        self, head: bytes, offset: int, size: int
    ) -> tuple[_StreamDecoders, dict, int, int, int, bool]:
        """Decode a packet's header and context and check its sizes."""
        pos = 0
        try:
            if self.packet_header is not None:
                header, pos = self.packet_header(head, 0)
                self._check_header(header, offset)
            else:
                header = {}
            stream_id = header.get("stream_id")
            if stream_id is None:
                if len(self.meta.streams) != 1:
                    raise PacketError(
                        "packet header has no stream_id and the trace has "
                        "several stream classes",
                        path=self.path,
                        offset=offset,
                    )
                stream_id = next(iter(self.meta.streams))
            if stream_id not in self.meta.streams:
                raise PacketError(
                    f"packet header names unknown stream id {stream_id}",
                    path=self.path,
                    offset=offset,
                )
            decoders = self.stream_decoders(stream_id)
            context: dict = {}
            if decoders.packet_context is not None:
                context, pos = decoders.packet_context(head, pos)
        except (struct.error, IndexError, KeyError, TypeError, Short) as error:
            where = "truncated" if len(head) < _HEAD_BYTES else "damaged"
            raise PacketError(
                f"{where} packet header or context ({error})",
                path=self.path,
                offset=offset,
            ) from None

        begin = context.get("timestamp_begin")
        if isinstance(begin, int) and decoders.compiler.default_clock is not None:
            decoders.compiler.default_clock.value = begin

        available = (size - offset) * 8
        content_bits = context.get("content_size")
        packet_bits = context.get("packet_size")
        if packet_bits is None:
            packet_bits = content_bits if content_bits is not None else available
        if content_bits is None:
            content_bits = packet_bits
        if not isinstance(content_bits, int) or not isinstance(packet_bits, int):
            raise PacketError(
                "packet sizes are not integers", path=self.path, offset=offset
            )
        if packet_bits % 8 or packet_bits <= 0:
            raise PacketError(
                f"packet size {packet_bits} bits is not a positive number of bytes",
                path=self.path,
                offset=offset,
            )
        if content_bits > packet_bits:
            raise PacketError(
                f"content size {content_bits} bits exceeds packet size "
                f"{packet_bits} bits",
                path=self.path,
                offset=offset,
            )
        if content_bits < pos:
            raise PacketError(
                f"content size {content_bits} bits is smaller than the packet "
                f"header and context ({pos} bits)",
                path=self.path,
                offset=offset,
            )
        if packet_bits // 8 > MAX_PACKET_BYTES:
            raise PacketError(
                f"packet of {packet_bits // 8} bytes exceeds the "
                f"{MAX_PACKET_BYTES}-byte limit",
                path=self.path,
                offset=offset,
            )
        truncated = packet_bits > available
        if truncated:
            content_bits = min(content_bits, available)
        return decoders, context, pos, content_bits, packet_bits // 8, truncated

    def _check_header(self, header: dict, offset: int) -> None:
        magic = header.get("magic")
        if magic is not None and magic != PACKET_MAGIC:
            raise PacketError(
                f"bad packet magic {magic:#x} (expected {PACKET_MAGIC:#x})",
                path=self.path,
                offset=offset,
            )
        uuid = header.get("uuid")
        expected = self.meta.uuid
        if expected is not None and uuid is not None:
            if isinstance(uuid, list):
                uuid = bytes(uuid)
            if uuid != expected:
                raise PacketError(
                    f"packet uuid {uuid.hex()} differs from the trace uuid "
                    f"{expected.hex()}",
                    path=self.path,
                    offset=offset + 4,
                )

    def _packet_events(
        self,
        decoders: _StreamDecoders,
        data: bytes,
        offset: int,
        pos: int,
        content_bits: int,
    ) -> Iterator[Event]:
        """Yield the events of one packet, from bit ``pos`` to the content end."""
        if len(data) * 8 > content_bits:
            data = data[: (content_bits + 7) >> 3]
        roots = self.roots
        packet_context = roots.get("stream.packet.context", {})
        decode_header = decoders.event_header
        decode_stream_context = decoders.event_context
        event_classes = decoders.events
        clock = decoders.compiler.default_clock
        clock_class = clock.cls if clock is not None else None
        to_ns = clock_class.to_ns if clock_class is not None else None
        stream_id = decoders.stream.id
        trace_path = self.trace.path
        stream_path = self.path
        stats = self.stats
        empty: dict = {}

        while pos < content_bits:
            start = pos
            try:
                if decode_header is not None:
                    header, pos = decode_header(data, pos)
                    event_id = _header_event_id(header)
                else:
                    header, event_id = empty, 0
                if decode_stream_context is not None:
                    stream_context, pos = decode_stream_context(data, pos)
                else:
                    stream_context = empty
                event_class = event_classes.get(event_id)
                if event_class is None:
                    raise Short(f"unknown event id {event_id}")
                name, decode_context, decode_fields = event_class
                if decode_context is not None:
                    event_context, pos = decode_context(data, pos)
                else:
                    event_context = empty
                if decode_fields is not None:
                    fields, pos = decode_fields(data, pos)
                else:
                    fields = empty
            except (struct.error, IndexError, KeyError, TypeError, Short) as error:
                reason = str(error) or type(error).__name__
                self.report(
                    EventDecodingError(
                        f"cannot decode event ({reason})",
                        path=stream_path,
                        offset=offset + (start >> 3),
                    )
                )
                return
            if pos > content_bits:
                self.report(
                    EventDecodingError(
                        "event runs past the end of its packet's content",
                        path=stream_path,
                        offset=offset + (start >> 3),
                    )
                )
                return
            cycles = clock.value if clock is not None else None
            stats.events += 1
            yield Event(
                name,
                to_ns(cycles) if to_ns is not None else 0,
                fields,
                stream_context,
                event_context,
                packet_context,
                header,
                event_id,
                stream_id,
                trace_path,
                stream_path,
                offset + (start >> 3),
                cycles,
            )


def _header_event_id(header: dict) -> int:
    """Return the event id of an LTTng-style (compact or large) header."""
    inner = header.get("v")
    if isinstance(inner, dict):
        inner_id = inner.get("id")
        if inner_id is not None:
            return inner_id
    return header.get("id", 0)


def read_events(
    paths: str | os.PathLike[str] | Iterable[Any],
    *,
    strict: bool = False,
    on_error: ErrorCallback | None = None,
    stats: ReadStats | None = None,
    trace_filter: Callable[[str], bool] | None = None,
) -> Iterator[Event]:
    """Yield the events of every trace under ``paths`` in timestamp order.

    Args:
        paths: see :func:`find_traces`.
        strict: raise the first :class:`CtfError` instead of reporting it.
        on_error: called with each :class:`CtfError` when not strict (default:
            log a warning). A trace whose metadata does not parse is reported
            and skipped.
        stats: counters to fill.
        trace_filter: called with each trace folder; False skips the trace.

    Raises:
        TraceNotFoundError: a path does not exist or holds no trace (always,
            even when not strict).
    """
    stats = stats if stats is not None else ReadStats()
    iterators: list[Iterator[Event]] = []
    for path in find_traces(paths):
        if trace_filter is not None and not trace_filter(path):
            continue
        try:
            trace = CtfTrace(path)
        except MetadataError as error:
            stats.errors.append(error)
            if strict:
                raise
            if on_error is not None:
                on_error(error)
            else:
                logger.warning("Skipping trace: %s", error)
            continue
        for stream_path in trace.stream_paths():
            iterators.append(
                trace.stream_events(
                    stream_path, strict=strict, on_error=on_error, stats=stats
                )
            )
    if not iterators:
        return iter(())
    return _merge(iterators)
