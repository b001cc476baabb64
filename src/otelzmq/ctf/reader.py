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
stream class, the TSDL types are compiled once into closures built on
:mod:`struct`; a byte-aligned ``uint8`` array or sequence becomes one
``bytes`` slice.

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

from otelzmq.ctf.tsdl import (
    ArrayType,
    ClockClass,
    CtfError,
    CtfType,
    EnumType,
    FloatType,
    IntegerType,
    Metadata,
    MetadataError,
    SequenceType,
    StreamClass,
    StringType,
    StructType,
    VariantType,
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

_ROOTS = (
    "trace.packet.header",
    "stream.packet.context",
    "stream.event.header",
    "stream.event.context",
    "event.context",
    "event.fields",
)


class TraceNotFoundError(CtfError):
    """A path does not exist or holds no CTF trace."""


class PacketError(CtfError):
    """A packet header or context is damaged, or a packet is truncated."""


class EventDecodingError(CtfError):
    """An event cannot be decoded from its packet."""


class _Short(Exception):
    """Raised inside decoders when a field runs past the data."""


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


# --- decoder compilation ----------------------------------------------------

# A decoder reads one value at bit position ``pos`` of ``buf`` and returns the
# value and the next bit position. ``scope`` is the stack of structures being
# decoded (innermost last), used to resolve sequence lengths and variant tags.
Decoder = Callable[[bytes, int, list], "tuple[Any, int]"]


def _strip(name: str) -> str:
    return name[1:] if name.startswith("_") else name


class _Clock:
    """The running value of one clock in one stream file."""

    __slots__ = ("cls", "value")

    def __init__(self, cls: ClockClass | None):
        self.cls = cls
        self.value = 0


class _Compiler:
    """Turns TSDL types into decoders for one stream file.

    Decoders of clock-mapped integers update this file's running clock values,
    so a compiler (and its decoders) belongs to a single stream file.
    """

    def __init__(self, meta: Metadata, roots: dict[str, dict]):
        self.meta = meta
        self.order = "<" if meta.byte_order == "le" else ">"
        self.roots = roots
        self.root_types: dict[str, StructType] = {}
        self.clocks: dict[str, _Clock] = {}
        self.default_clock: _Clock | None = None

    def clock(self, name: str) -> _Clock:
        clock = self.clocks.get(name)
        if clock is None:
            cls = self.meta.clocks.get(name)
            if cls is None:
                raise MetadataError(f"integer mapped to undeclared clock {name!r}")
            clock = self.clocks[name] = _Clock(cls)
        return clock

    def root(self, name: str, struct_type: StructType | None) -> Callable | None:
        """Compile a root structure; its decoder returns (dict, pos)."""
        if struct_type is None:
            return None
        self.root_types[name] = struct_type
        fill = self.struct_filler(struct_type, [])
        roots = self.roots

        def decode(buf: bytes, pos: int) -> tuple[dict, int]:
            values: dict[str, Any] = {}
            roots[name] = values
            return values, fill(buf, pos, [], values)

        return decode

    # types

    def compile(self, ctf_type: CtfType, tscope: list[dict]) -> Decoder:
        if isinstance(ctf_type, IntegerType):
            return self.integer(ctf_type)
        if isinstance(ctf_type, EnumType):
            return self.integer(ctf_type.container)
        if isinstance(ctf_type, StructType):
            fill = self.struct_filler(ctf_type, tscope)

            def decode_struct(buf: bytes, pos: int, scope: list) -> tuple[Any, int]:
                values: dict[str, Any] = {}
                return values, fill(buf, pos, scope, values)

            return decode_struct
        if isinstance(ctf_type, (ArrayType, SequenceType)):
            return self.array(ctf_type, tscope)
        if isinstance(ctf_type, StringType):
            return _string_decoder()
        if isinstance(ctf_type, FloatType):
            return self.floating(ctf_type)
        if isinstance(ctf_type, VariantType):
            return self.variant(ctf_type, tscope)
        raise MetadataError(f"cannot decode type {type(ctf_type).__name__}")

    def struct_filler(
        self, struct_type: StructType, tscope: list[dict]
    ) -> Callable[[bytes, int, list, dict], int]:
        mask = struct_type.align - 1
        types: dict[str, CtfType] = {}
        inner = tscope + [types]
        fields: list[tuple[str, Decoder]] = []
        for name, ctf_type in struct_type.fields:
            stripped = _strip(name)
            fields.append((stripped, self.compile(ctf_type, inner)))
            types[stripped] = ctf_type
        fields_t = tuple(fields)
        flat = self.flat_filler(struct_type)
        if flat is not None:
            return flat
        tagged = self.tagged_filler(struct_type, inner)
        if tagged is not None:
            return tagged

        def fill(buf: bytes, pos: int, scope: list, values: dict) -> int:
            pos = (pos + mask) & ~mask
            scope.append(values)
            for name, decode in fields_t:
                values[name], pos = decode(buf, pos, scope)
            scope.pop()
            return pos

        return fill

    def flat_filler(
        self, struct_type: StructType
    ) -> Callable[[bytes, int, list, dict], int] | None:
        """Compile a fast path for the layout of our events, if it applies.

        A structure of byte-aligned 8/16/32/64-bit integers, optionally
        ending with a byte array or a byte sequence counted by one of them
        (LTTng's ``uint32 length; uint8 data[length]``), has fixed field
        offsets once its start is aligned: one ``struct`` unpack and one
        slice decode it.
        """
        order = self.order
        codes = [order]
        names: list[str] = []
        offset = 0
        fields = list(struct_type.fields)
        clocked: list[tuple[str, Callable[[int], int]]] = []
        tail: tuple[str, int | str] | None = None
        if fields and isinstance(fields[-1][1], (ArrayType, SequenceType)):
            name, last = fields.pop()
            element = last.element
            if not (
                isinstance(element, IntegerType)
                and element.size == 8
                and element.align == 8
                and element.encoding.lower() == "none"
            ):
                return None
            if isinstance(last, ArrayType):
                tail = (_strip(name), last.length)
            else:
                tail = (_strip(name), _strip(last.length_ref))
        for name, ctf_type in fields:
            if isinstance(ctf_type, EnumType):
                ctf_type = ctf_type.container
            if not isinstance(ctf_type, IntegerType):
                return None
            if ctf_type.clock is not None:
                clocked.append((_strip(name), self.clock_updater(ctf_type)))
            if ctf_type.size not in _UNPACK_CODES or ctf_type.align % 8:
                return None
            if {"le": "<", "be": ">"}.get(ctf_type.byte_order or "", order) != order:
                return None
            aligned = -(-offset // ctf_type.align) * ctf_type.align
            codes.append("x" * ((aligned - offset) // 8))
            code = _UNPACK_CODES[ctf_type.size]
            codes.append(code.lower() if ctf_type.signed else code)
            names.append(_strip(name))
            offset = aligned + ctf_type.size
        if tail is not None and isinstance(tail[1], str) and tail[1] not in names:
            return None
        layout = struct.Struct("".join(codes))
        unpack = layout.unpack_from
        size_bits = layout.size * 8
        names_t = tuple(names)
        mask = struct_type.align - 1

        if clocked:
            clocked_t = tuple(clocked)

            def fill_flat_clock(buf: bytes, pos: int, scope: list, values: dict) -> int:
                pos = (pos + mask) & ~mask
                values.update(zip(names_t, unpack(buf, pos >> 3), strict=True))
                for name, update in clocked_t:
                    values[name] = update(values[name])
                return pos + size_bits

            return fill_flat_clock if tail is None else None
        if tail is None:

            def fill_flat(buf: bytes, pos: int, scope: list, values: dict) -> int:
                pos = (pos + mask) & ~mask
                values.update(zip(names_t, unpack(buf, pos >> 3), strict=True))
                return pos + size_bits

            return fill_flat
        tail_name, count = tail

        def fill_flat_bytes(buf: bytes, pos: int, scope: list, values: dict) -> int:
            pos = (pos + mask) & ~mask
            values.update(zip(names_t, unpack(buf, pos >> 3), strict=True))
            start = (pos + size_bits) >> 3
            end = start + (values[count] if isinstance(count, str) else count)
            if end > len(buf):
                raise _Short(f"array of {end - start} bytes runs past the packet")
            values[tail_name] = buf[start:end]
            return end << 3

        return fill_flat_bytes

    def tagged_filler(
        self, struct_type: StructType, tscope: list[dict]
    ) -> Callable[[bytes, int, list, dict], int] | None:
        """Compile a fast path for LTTng's event headers, if it applies.

        The compact and large headers are an enumeration followed by a
        variant of structures chosen by it; each option's filler is picked
        once per tag value.
        """
        if len(struct_type.fields) != 2:
            return None
        (tag_name, tag_type), (variant_name, variant) = struct_type.fields
        if not (
            isinstance(tag_type, EnumType)
            and isinstance(variant, VariantType)
            and variant.tag_ref is not None
            and _strip(variant.tag_ref) == _strip(tag_name)
            and all(isinstance(t, StructType) for _, t in variant.options)
        ):
            return None
        mask = struct_type.align - 1
        tag_key, variant_key = _strip(tag_name), _strip(variant_name)
        decode_tag = self.compile(tag_type, tscope)
        options = {
            _strip(name): self.struct_filler(option, tscope)
            for name, option in variant.options
            if isinstance(option, StructType)
        }
        chosen: dict[int, Callable[[bytes, int, list, dict], int]] = {}

        def fill_tagged(buf: bytes, pos: int, scope: list, values: dict) -> int:
            pos = (pos + mask) & ~mask
            tag, pos = decode_tag(buf, pos, scope)
            values[tag_key] = tag
            fill = chosen.get(tag)
            if fill is None:
                fill = next(
                    (
                        options[_strip(label)]
                        for label in tag_type.labels(tag)
                        if _strip(label) in options
                    ),
                    None,
                )
                if fill is None:
                    raise _Short(f"variant tag value {tag} selects no option")
                if len(chosen) < 4096:
                    chosen[tag] = fill
            inner: dict[str, Any] = {}
            scope.append(values)
            pos = fill(buf, pos, scope, inner)
            scope.pop()
            values[variant_key] = inner
            return pos

        return fill_tagged

    def integer(self, int_type: IntegerType) -> Decoder:
        decode = _integer_decoder(int_type, self.order)
        if int_type.clock is None:
            return decode
        update = self.clock_updater(int_type)

        def decode_clock(buf: bytes, pos: int, scope: list) -> tuple[int, int]:
            value, pos = decode(buf, pos, scope)
            return update(value), pos

        return decode_clock

    def clock_updater(self, int_type: IntegerType) -> Callable[[int], int]:
        """Return a function folding a clock field's value into its clock."""
        clock = self.clock(int_type.clock or "")
        if self.default_clock is None:
            self.default_clock = clock
        size = int_type.size
        if size >= 64:

            def update64(value: int) -> int:
                clock.value = value
                return value

            return update64
        low_mask = (1 << size) - 1
        wrap = 1 << size

        def update(value: int) -> int:
            # CTF 1.8 section 8: a narrower clock field holds the low bits of
            # the clock; a value below the current low bits means a wrap.
            current = clock.value
            if value < current & low_mask:
                current += wrap
            current = (current & ~low_mask) | value
            clock.value = current
            return current

        return update

    def floating(self, float_type: FloatType) -> Decoder:
        order = {"le": "<", "be": ">"}.get(float_type.byte_order or "", self.order)
        codec = struct.Struct(order + ("f" if float_type.mant_dig == 24 else "d"))
        mask = float_type.align - 1
        unpack = codec.unpack_from
        size = codec.size * 8

        def decode_float(buf: bytes, pos: int, scope: list) -> tuple[float, int]:
            pos = (pos + mask) & ~mask
            if pos & 7:
                raise _Short("unaligned floating point fields are not supported")
            return unpack(buf, pos >> 3)[0], pos + size

        return decode_float

    def array(self, ctf_type: ArrayType | SequenceType, tscope: list[dict]) -> Decoder:
        element = ctf_type.element
        if isinstance(ctf_type, ArrayType):
            fixed = ctf_type.length

            def length(scope: list) -> int:
                return fixed

        else:
            length = self.reference(ctf_type.length_ref, tscope)

        if (
            isinstance(element, IntegerType)
            and element.size == 8
            and element.align % 8 == 0
            and element.clock is None
        ):
            text = element.encoding.upper() in ("UTF8", "ASCII")
            mask = element.align - 1

            def decode_bytes(buf: bytes, pos: int, scope: list) -> tuple[Any, int]:
                count = length(scope)
                start = ((pos + mask) & ~mask) >> 3
                end = start + count
                if end > len(buf) or count < 0:
                    raise _Short(f"array of {count} bytes runs past the packet")
                data = buf[start:end]
                if text:
                    return data.split(b"\0", 1)[0].decode("utf-8", "replace"), end << 3
                return data, end << 3

            return decode_bytes

        decode_element = self.compile(element, tscope)
        mask = element.align - 1

        def decode_list(buf: bytes, pos: int, scope: list) -> tuple[list, int]:
            count = length(scope)
            if count < 0 or count > len(buf) * 8:
                raise _Short(f"array of {count} elements runs past the packet")
            pos = (pos + mask) & ~mask
            items = []
            for _ in range(count):
                item, pos = decode_element(buf, pos, scope)
                items.append(item)
            return items, pos

        return decode_list

    def variant(self, variant: VariantType, tscope: list[dict]) -> Decoder:
        if variant.tag_ref is None:
            raise MetadataError("a variant has no tag")
        tag_type = self.reference_type(variant.tag_ref, tscope)
        if not isinstance(tag_type, EnumType):
            raise MetadataError(
                f"variant tag {variant.tag_ref!r} is not an enumeration"
            )
        options = {
            _strip(name): self.compile(option, tscope)
            for name, option in variant.options
        }
        tag = self.reference(variant.tag_ref, tscope)
        chosen: dict[int, Decoder] = {}

        def decode_variant(buf: bytes, pos: int, scope: list) -> tuple[Any, int]:
            value = tag(scope)
            decode = chosen.get(value)
            if decode is None:
                for label in tag_type.labels(value):
                    decode = options.get(_strip(label))
                    if decode is not None:
                        break
                else:
                    raise _Short(f"variant tag value {value} selects no option")
                if len(chosen) < 4096:
                    chosen[value] = decode
            return decode(buf, pos, scope)

        return decode_variant

    # references to earlier fields

    def _split(self, ref: str) -> tuple[str | None, list[str]]:
        for root in _ROOTS:
            if ref == root or ref.startswith(root + "."):
                rest = ref[len(root) + 1 :]
                return root, [_strip(part) for part in rest.split(".") if part]
        return None, [_strip(part) for part in ref.split(".")]

    def reference_type(self, ref: str, tscope: list[dict]) -> CtfType:
        root, parts = self._split(ref)
        current: Any = None
        if root is not None:
            current = self.root_types.get(root)
            types = None
        else:
            types = next((t for t in reversed(tscope) if parts[0] in t), None)
            if types is None:
                raise MetadataError(f"field {ref!r} is not declared before its use")
            current = types[parts[0]]
            parts = parts[1:]
        for part in parts:
            if not isinstance(current, StructType):
                raise MetadataError(f"cannot resolve field {ref!r}")
            current = next(
                (t for name, t in current.fields if _strip(name) == part), None
            )
        if current is None:
            raise MetadataError(f"cannot resolve field {ref!r}")
        return current

    def reference(self, ref: str, tscope: list[dict]) -> Callable[[list], int]:
        """Return a function reading an earlier integer field from the scope."""
        root, parts = self._split(ref)
        self.reference_type(ref, tscope)
        roots = self.roots
        if root is not None:
            root_name = root

            def lookup_root(scope: list) -> int:
                value: Any = roots[root_name]
                for part in parts:
                    value = value[part]
                return value

            return lookup_root
        first, rest = parts[0], parts[1:]
        if not rest:

            def lookup_near(scope: list) -> int:
                for values in reversed(scope):
                    if first in values:
                        return values[first]
                raise _Short(f"field {ref!r} was not decoded")

            return lookup_near

        def lookup_path(scope: list) -> int:
            for values in reversed(scope):
                if first in values:
                    value = values[first]
                    for part in rest:
                        value = value[part]
                    return value
            raise _Short(f"field {ref!r} was not decoded")

        return lookup_path


_UNPACK_CODES = {8: "B", 16: "H", 32: "I", 64: "Q"}


def _integer_decoder(int_type: IntegerType, trace_order: str) -> Decoder:
    size = int_type.size
    mask = int_type.align - 1
    order = {"le": "<", "be": ">"}.get(int_type.byte_order or "", trace_order)
    signed = int_type.signed

    if size in _UNPACK_CODES and int_type.align % 8 == 0:
        code = _UNPACK_CODES[size]
        unpack = struct.Struct(order + (code.lower() if signed else code)).unpack_from

        def decode_aligned(buf: bytes, pos: int, scope: list) -> tuple[int, int]:
            pos = (pos + mask) & ~mask
            return unpack(buf, pos >> 3)[0], pos + size

        return decode_aligned

    little = order == "<"
    value_mask = (1 << size) - 1
    sign_bit = 1 << (size - 1)

    def decode_bits(buf: bytes, pos: int, scope: list) -> tuple[int, int]:
        pos = (pos + mask) & ~mask
        first = pos >> 3
        shift = pos & 7
        last = (pos + size + 7) >> 3
        if last > len(buf):
            raise _Short("integer runs past the packet")
        chunk = buf[first:last]
        if little:
            value = (int.from_bytes(chunk, "little") >> shift) & value_mask
        else:
            total = (last - first) * 8
            value = (
                int.from_bytes(chunk, "big") >> (total - shift - size)
            ) & value_mask
        if signed and value & sign_bit:
            value -= 1 << size
        return value, pos + size

    return decode_bits


def _string_decoder() -> Decoder:
    def decode_string(buf: bytes, pos: int, scope: list) -> tuple[str, int]:
        start = ((pos + 7) & ~7) >> 3
        end = buf.find(b"\0", start)
        if end < 0:
            raise _Short("string without a terminating null byte")
        return buf[start:end].decode("utf-8", "replace"), (end + 1) << 3

    return decode_string


# --- traces and streams -----------------------------------------------------


@dataclass
class _StreamDecoders:
    """The compiled decoders of one stream class in one stream file."""

    stream: StreamClass
    compiler: _Compiler
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
        self.header_compiler = _Compiler(self.meta, self.roots)
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
        compiler = _Compiler(self.meta, self.roots)
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
        except (struct.error, IndexError, KeyError, TypeError, _Short) as error:
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
                    raise _Short(f"unknown event id {event_id}")
                name, decode_context, decode_fields = event_class
                if decode_context is not None:
                    event_context, pos = decode_context(data, pos)
                else:
                    event_context = empty
                if decode_fields is not None:
                    fields, pos = decode_fields(data, pos)
                else:
                    fields = empty
            except (struct.error, IndexError, KeyError, TypeError, _Short) as error:
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
