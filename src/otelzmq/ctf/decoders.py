"""Compile CTF 1.8 types into fast decoding closures.

:class:`Compiler` turns the TSDL types of :mod:`otelzmq.ctf.tsdl` into
decoders: closures built on :mod:`struct` that read one value at a bit
position of a packet and return it with the next position.
:mod:`otelzmq.ctf.reader` compiles each stream class once per stream file and
runs these decoders over its packets.

It is written by hand because babeltrace2's Python bindings, the reference
CTF reader, are not published on PyPI, so we decode CTF ourselves. Two fast
paths cover the layouts we read most: a structure of byte-aligned integers
(optionally ending in a byte array) is one ``struct`` unpack and one slice,
and LTTng's compact and large event headers pick their variant option once
per tag value. A byte-aligned ``uint8`` array or sequence becomes one
``bytes`` slice.

Decoders raise :class:`Short` when a field runs past the data; the reader
turns it into a :class:`~otelzmq.ctf.reader.CtfError` naming the file and
offset.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from otelzmq.ctf.tsdl import (
    ArrayType,
    ClockClass,
    CtfType,
    EnumType,
    FloatType,
    IntegerType,
    Metadata,
    MetadataError,
    SequenceType,
    StringType,
    StructType,
    VariantType,
)

__all__ = ["Compiler", "Decoder", "Short"]

_ROOTS = (
    "trace.packet.header",
    "stream.packet.context",
    "stream.event.header",
    "stream.event.context",
    "event.context",
    "event.fields",
)


class Short(Exception):
    """Raised inside decoders when a field runs past the data."""


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


class Compiler:
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
                raise Short(f"array of {end - start} bytes runs past the packet")
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
                    raise Short(f"variant tag value {tag} selects no option")
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
                raise Short("unaligned floating point fields are not supported")
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
                    raise Short(f"array of {count} bytes runs past the packet")
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
                raise Short(f"array of {count} elements runs past the packet")
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
                    raise Short(f"variant tag value {value} selects no option")
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
                raise Short(f"field {ref!r} was not decoded")

            return lookup_near

        def lookup_path(scope: list) -> int:
            for values in reversed(scope):
                if first in values:
                    value = values[first]
                    for part in rest:
                        value = value[part]
                    return value
            raise Short(f"field {ref!r} was not decoded")

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
            raise Short("integer runs past the packet")
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
            raise Short("string without a terminating null byte")
        return buf[start:end].decode("utf-8", "replace"), (end + 1) << 3

    return decode_string
