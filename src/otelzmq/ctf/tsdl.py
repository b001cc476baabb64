"""Parse CTF 1.8 metadata (TSDL) into a small type model.

The Trace Stream Description Language describes every binary layout of a
trace: the packet header, each stream's packet context and event header, and
the fields of every event class. This module turns that text (plain, or split
into LTTng's metadata packets) into the dataclasses below; the decoders
compiled from them live in :mod:`otelzmq.ctf.decoders`, and the reader of
stream files in :mod:`otelzmq.ctf.reader`.

It is written by hand because babeltrace2's Python bindings, the only
maintained TSDL parser, are not published on PyPI. It accepts the subset of
TSDL that tracers emit (LTTng-UST, LTTng-modules, barectf and our own writer):
type aliases and typedefs, integers, enumerations, floating point numbers,
strings, structures, arrays, sequences and tagged variants, and the ``trace``,
``env``, ``clock``, ``stream`` and ``event`` blocks. ``callsite`` blocks are
ignored, as babeltrace2 does.
"""

from __future__ import annotations

import logging
import re
import struct
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

#: First word of a metadata packet, read in the trace's byte order.
METADATA_PACKET_MAGIC = 0x75D11D57

#: uint32 magic, uint8 uuid[16], uint32 checksum, uint32 content_size,
#: uint32 packet_size, then five uint8 (compression, encryption, checksum
#: schemes, major, minor).
_METADATA_HEADER_SIZE = 37


class CtfError(Exception):
    """A trace cannot be found, or part of it cannot be read.

    Every error of the CTF reader derives from this class.

    Attributes:
        message: what is wrong, in one sentence.
        path: the file or folder concerned, if known.
        offset: byte offset in ``path`` where the damage starts, if known.
    """

    def __init__(
        self, message: str, *, path: str | None = None, offset: int | None = None
    ):
        self.message = message
        self.path = path
        self.offset = offset
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = self.path or "trace"
        if self.offset is not None:
            where = f"{where} at byte {self.offset}"
        return f"{where}: {self.message}"


class MetadataError(CtfError):
    """The metadata of a trace cannot be read or does not parse.

    Attributes:
        line: 1-based line of the metadata text where parsing stopped, if
            known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        offset: int | None = None,
    ):
        self.line = line
        super().__init__(message, path=path, offset=offset)

    def _describe(self) -> str:
        where = self.path or "metadata"
        if self.line is not None:
            return f"{where}, line {self.line}: {self.message}"
        if self.offset is not None:
            return f"{where} at byte {self.offset}: {self.message}"
        return f"{where}: {self.message}"


# --- type model -----------------------------------------------------------


@dataclass
class IntegerType:
    """A fixed-size integer; ``byte_order`` None means the trace's own."""

    size: int
    align: int
    signed: bool = False
    byte_order: str | None = None
    base: int = 10
    encoding: str = "none"
    clock: str | None = None


@dataclass
class FloatType:
    """An IEEE 754 number given by its exponent and mantissa widths."""

    exp_dig: int
    mant_dig: int
    align: int
    byte_order: str | None = None


@dataclass
class StringType:
    """A null-terminated string."""

    encoding: str = "UTF8"
    align: int = 8


@dataclass
class EnumType:
    """An integer whose values carry labels (each label: inclusive ranges)."""

    container: IntegerType
    mappings: list[tuple[str, int, int]]

    @property
    def align(self) -> int:
        return self.container.align

    def labels(self, value: int) -> list[str]:
        """Return the labels whose ranges contain ``value``."""
        return [name for name, low, high in self.mappings if low <= value <= high]


@dataclass
class StructType:
    """Named fields laid out in order; ``min_align`` comes from ``align()``."""

    fields: list[tuple[str, CtfType]]
    min_align: int = 1

    @property
    def align(self) -> int:
        return max([self.min_align] + [t.align for _, t in self.fields])


@dataclass
class ArrayType:
    """A fixed number of elements."""

    element: CtfType
    length: int

    @property
    def align(self) -> int:
        return self.element.align


@dataclass
class SequenceType:
    """Elements counted by an integer field decoded earlier (``length_ref``)."""

    element: CtfType
    length_ref: str

    @property
    def align(self) -> int:
        return self.element.align


@dataclass
class VariantType:
    """One of several options, chosen by the label of an enumeration field."""

    tag_ref: str | None
    options: list[tuple[str, CtfType]]

    @property
    def align(self) -> int:
        # A variant has no alignment of its own: its chosen option has one.
        return 1


CtfType = (
    IntegerType
    | FloatType
    | StringType
    | EnumType
    | StructType
    | ArrayType
    | SequenceType
    | VariantType
)


@dataclass
class ClockClass:
    """A clock: cycles since ``offset_s`` seconds + ``offset`` cycles."""

    name: str
    freq: int = 1_000_000_000
    offset_s: int = 0
    offset: int = 0
    uuid: str | None = None
    description: str | None = None
    absolute: bool = False

    def to_ns(self, cycles: int) -> int:
        """Convert a clock value into nanoseconds since the Unix epoch."""
        total = cycles + self.offset
        if self.freq == 1_000_000_000:
            return self.offset_s * 1_000_000_000 + total
        return self.offset_s * 1_000_000_000 + total * 1_000_000_000 // self.freq


@dataclass
class EventClass:
    """One kind of event in a stream."""

    id: int
    name: str
    stream_id: int = 0
    context: StructType | None = None
    fields: StructType | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class StreamClass:
    """One kind of stream: its packet context, event header and contexts."""

    id: int = 0
    packet_context: StructType | None = None
    event_header: StructType | None = None
    event_context: StructType | None = None
    events: dict[int, EventClass] = field(default_factory=dict)


@dataclass
class Metadata:
    """Everything a trace's metadata declares."""

    major: int = 1
    minor: int = 8
    byte_order: str = "le"
    uuid: bytes | None = None
    packet_header: StructType | None = None
    env: dict[str, Any] = field(default_factory=dict)
    clocks: dict[str, ClockClass] = field(default_factory=dict)
    streams: dict[int, StreamClass] = field(default_factory=dict)


# --- metadata packets -----------------------------------------------------


def metadata_text(data: bytes, *, path: str | None = None) -> str:
    """Return the TSDL text of a metadata file, unpacking LTTng packets.

    Args:
        data: the whole metadata file.
        path: file name used in error messages.

    Returns:
        The concatenated text of every packet, or the file itself when it is
        plain text.

    Raises:
        MetadataError: a packet header is damaged or the text is not UTF-8.
    """
    if len(data) >= 4:
        for order in ("<", ">"):
            if struct.unpack_from(order + "I", data)[0] == METADATA_PACKET_MAGIC:
                return _unpack_metadata_packets(data, order, path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MetadataError(
            f"metadata is neither packetized nor UTF-8 text ({error})", path=path
        ) from error
    if not text.lstrip().startswith("/* CTF 1."):
        # The spec asks for the signature; tracers that omit it still parse.
        logger.debug("Metadata %s has no '/* CTF 1.x' signature", path)
    return text


def _unpack_metadata_packets(data: bytes, order: str, path: str | None) -> str:
    header = struct.Struct(order + "I16sIIIBBBBB")
    chunks: list[bytes] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _METADATA_HEADER_SIZE:
            raise MetadataError(
                "truncated metadata packet header", path=path, offset=offset
            )
        magic, _uuid, _sum, content, size, comp, enc, _c, _ma, _mi = header.unpack_from(
            data, offset
        )
        if magic != METADATA_PACKET_MAGIC:
            raise MetadataError(
                f"bad metadata packet magic {magic:#x}", path=path, offset=offset
            )
        if comp or enc:
            raise MetadataError(
                "compressed or encrypted metadata packet", path=path, offset=offset
            )
        content_bytes, packet_bytes = content // 8, size // 8
        if not _METADATA_HEADER_SIZE <= content_bytes <= packet_bytes:
            raise MetadataError(
                f"metadata packet has content size {content} bits and packet "
                f"size {size} bits",
                path=path,
                offset=offset,
            )
        if offset + content_bytes > len(data):
            raise MetadataError(
                "metadata packet runs past the end of the file",
                path=path,
                offset=offset,
            )
        chunks.append(data[offset + _METADATA_HEADER_SIZE : offset + content_bytes])
        offset += packet_bytes
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as error:
        raise MetadataError(
            f"metadata text is not UTF-8 ({error})", path=path
        ) from None


# --- lexer ----------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<space>[ \t\r\f\v]+)
  | (?P<newline>\n)
  | (?P<comment>/\*.*?\*/|//[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<char>'(?:[^'\\\n]|\\.)*')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F]+|0[bB][01]+|\d+)[uUlL]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>:=|\.\.\.|->|[{}\[\]()<>;=:,.+\-*])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass
class _Token:
    kind: str
    text: str
    line: int


def _tokenize(text: str, path: str | None) -> list[_Token]:
    tokens: list[_Token] = []
    line = 1
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise MetadataError(
                f"unexpected character {text[pos]!r}", path=path, line=line
            )
        kind = match.lastgroup or ""
        value = match.group()
        if kind not in ("space", "newline", "comment"):
            tokens.append(_Token(kind, value, line))
        line += value.count("\n")
        pos = match.end()
    tokens.append(_Token("eof", "", line))
    return tokens


def _parse_number(text: str) -> int:
    body = text.rstrip("uUlL")
    sign = -1 if body.startswith("-") else 1
    body = body.lstrip("+-")
    if body[:2] in ("0x", "0X"):
        return sign * int(body[2:], 16)
    if body[:2] in ("0b", "0B"):
        return sign * int(body[2:], 2)
    if len(body) > 1 and body.startswith("0"):
        return sign * int(body, 8)
    return sign * int(body)


def _unquote(text: str) -> str:
    body = text[1:-1]
    if "\\" not in body:
        return body
    return body.encode("latin-1", "backslashreplace").decode("unicode_escape")


# --- parser ---------------------------------------------------------------

_BYTE_ORDERS = {
    "le": "le",
    "little_endian": "le",
    "be": "be",
    "big_endian": "be",
    "network": "be",
    "native": None,
}

_BASES = {
    "decimal": 10,
    "dec": 10,
    "d": 10,
    "i": 10,
    "u": 10,
    "hexadecimal": 16,
    "hex": 16,
    "x": 16,
    "X": 16,
    "p": 16,
    "octal": 8,
    "oct": 8,
    "o": 8,
    "binary": 2,
    "bin": 2,
    "b": 2,
}

_Scalar = int | str | bool


class _Attributes(dict):
    """The attributes of a block, remembering the line of each."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[str, int] = {}


class _Parser:
    """Recursive-descent parser over the token list of one metadata text."""

    def __init__(self, text: str, path: str | None):
        self.path = path
        self.tokens = _tokenize(text, path)
        self.pos = 0
        self.aliases: dict[str, CtfType] = {}
        self.structs: dict[str, StructType] = {}
        self.variants: dict[str, VariantType] = {}
        self.enums: dict[str, EnumType] = {}
        self.meta = Metadata()
        self.events: list[EventClass] = []
        self.trace_seen = False

    # token helpers

    def error(self, message: str, token: _Token | None = None) -> MetadataError:
        token = token or self.peek()
        return MetadataError(message, path=self.path, line=token.line)

    def error_at(self, attrs: Any, key: str, message: str) -> MetadataError:
        """An error on the line where attribute ``key`` was set."""
        lines = getattr(attrs, "lines", {})
        line = lines.get(key, self.tokens[max(self.pos - 1, 0)].line)
        return MetadataError(message, path=self.path, line=line)

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def next(self) -> _Token:
        token = self.peek()
        self.pos += 1
        return token

    def at(self, text: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.text == text and token.kind in ("punct", "ident")

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> _Token:
        token = self.peek()
        if not self.at(text):
            shown = token.text or "end of metadata"
            raise self.error(f"expected {text!r}, found {shown!r}")
        self.pos += 1
        return token

    def ident(self) -> str:
        token = self.peek()
        if token.kind != "ident":
            shown = token.text or "end of metadata"
            raise self.error(f"expected a name, found {shown!r}")
        self.pos += 1
        return token.text

    # top level

    def parse(self) -> Metadata:
        while self.peek().kind != "eof":
            self.top_level()
        return self.finish()

    def top_level(self) -> None:
        token = self.peek()
        word = token.text
        if word == "trace" and self.at("{", 1):
            self.pos += 1
            self.trace_block(self.block_attributes())
        elif word == "env" and self.at("{", 1):
            self.pos += 1
            self.meta.env.update(self.block_attributes())
        elif word == "clock" and self.at("{", 1):
            self.pos += 1
            self.clock_block(self.block_attributes(), token)
        elif word == "stream" and self.at("{", 1):
            self.pos += 1
            self.stream_block(self.block_attributes(), token)
        elif word == "event" and self.at("{", 1):
            self.pos += 1
            self.event_block(self.block_attributes(), token)
        elif word == "callsite" and self.at("{", 1):
            self.pos += 1
            self.block_attributes()
        elif word == "typealias":
            self.typealias()
        elif word == "typedef":
            self.typedef()
        elif token.kind == "ident":
            # A bare declaration such as ``struct name { ... } align(8);``.
            self.type_specifier()
        else:
            raise self.error(f"unexpected {word!r} at top level")
        self.accept(";")

    def block_attributes(self) -> _Attributes:
        """Parse ``{ key = value; key := type; ... }`` into a dict."""
        self.expect("{")
        attributes = _Attributes()
        while not self.accept("}"):
            if self.at("typealias"):
                self.typealias()
                continue
            if self.at("typedef"):
                self.typedef()
                continue
            attributes.lines[self.peek().text] = self.peek().line
            key = self.dotted_name()
            attributes.lines[key] = attributes.lines.pop(key.split(".")[0])
            if self.accept(":="):
                attributes[key] = self.type_specifier()
            elif self.accept("="):
                attributes[key] = self.value()
            else:
                raise self.error(f"expected '=' or ':=' after {key!r}")
            self.expect(";")
        return attributes

    def dotted_name(self) -> str:
        parts = [self.ident()]
        while self.accept("."):
            parts.append(self.ident())
        return ".".join(parts)

    def value(self) -> _Scalar:
        token = self.next()
        if token.kind == "number":
            return _parse_number(token.text)
        if token.kind == "string":
            return _unquote(token.text)
        if token.kind == "char":
            return _unquote(token.text)
        if token.text in ("-", "+") and self.peek().kind == "number":
            number = _parse_number(self.next().text)
            return -number if token.text == "-" else number
        if token.kind == "ident":
            parts = [token.text]
            while self.accept("."):
                parts.append(self.ident())
            return ".".join(parts)
        raise self.error(f"expected a value, found {token.text!r}", token)

    def integer_value(self, key: str) -> int:
        token = self.peek()
        value = self.value()
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"{key} must be an integer, not {value!r}", token)
        return value

    # blocks

    def trace_block(self, attrs: dict[str, Any]) -> None:
        self.trace_seen = True
        self.meta.major = int(attrs.get("major", 1))
        self.meta.minor = int(attrs.get("minor", 8))
        order = attrs.get("byte_order", "le")
        if order not in ("le", "be", "little_endian", "big_endian", "network"):
            raise self.error_at(
                attrs, "byte_order", f"trace byte_order must be le or be, not {order!r}"
            )
        self.meta.byte_order = _BYTE_ORDERS[order] or "le"
        uuid = attrs.get("uuid")
        if uuid is not None:
            try:
                self.meta.uuid = bytes.fromhex(str(uuid).replace("-", ""))
            except ValueError:
                raise self.error_at(attrs, "uuid", f"bad trace uuid {uuid!r}") from None
        header = attrs.get("packet.header")
        if header is not None:
            self.meta.packet_header = self.as_struct(header, "packet.header", attrs)

    def clock_block(self, attrs: dict[str, Any], token: _Token) -> None:
        name = attrs.get("name")
        if not isinstance(name, str):
            raise self.error("clock block without a name", token)
        clock = ClockClass(name=name)
        for key in ("freq", "offset_s", "offset"):
            if key in attrs:
                value = attrs[key]
                if not isinstance(value, int):
                    raise self.error_at(attrs, key, f"clock {key} must be an integer")
                setattr(clock, key, value)
        if clock.freq <= 0:
            raise self.error_at(
                attrs, "freq", f"clock {name} has frequency {clock.freq}"
            )
        clock.uuid = attrs.get("uuid")
        clock.description = attrs.get("description")
        clock.absolute = str(attrs.get("absolute", "false")).lower() in ("true", "1")
        self.meta.clocks[name] = clock

    def stream_block(self, attrs: dict[str, Any], token: _Token) -> None:
        stream_id = attrs.get("id", 0)
        if not isinstance(stream_id, int):
            raise self.error_at(attrs, "id", "stream id must be an integer")
        if stream_id in self.meta.streams:
            raise self.error(f"stream {stream_id} declared twice", token)
        stream = StreamClass(id=stream_id)
        for key, slot in (
            ("packet.context", "packet_context"),
            ("event.header", "event_header"),
            ("event.context", "event_context"),
        ):
            if key in attrs:
                setattr(stream, slot, self.as_struct(attrs[key], key, attrs))
        self.meta.streams[stream_id] = stream

    def event_block(self, attrs: dict[str, Any], token: _Token) -> None:
        name = attrs.get("name")
        event_id = attrs.get("id", 0)
        stream_id = attrs.get("stream_id", 0)
        if not isinstance(event_id, int) or not isinstance(stream_id, int):
            raise self.error_at(attrs, "id", "event id and stream_id must be integers")
        event = EventClass(id=event_id, name=str(name), stream_id=stream_id)
        if "context" in attrs:
            event.context = self.as_struct(attrs["context"], "context", attrs)
        if "fields" in attrs:
            event.fields = self.as_struct(attrs["fields"], "fields", attrs)
        event.attributes = {
            key: value
            for key, value in attrs.items()
            if key not in ("context", "fields")
        }
        self.events.append(event)

    def as_struct(self, ctf_type: Any, key: str, attrs: Any = None) -> StructType:
        if not isinstance(ctf_type, StructType):
            raise self.error_at(attrs, key, f"{key} must be a structure")
        return ctf_type

    def finish(self) -> Metadata:
        if not self.trace_seen:
            raise MetadataError("metadata has no trace block", path=self.path)
        if not self.meta.streams:
            self.meta.streams[0] = StreamClass(id=0)
        for event in self.events:
            stream = self.meta.streams.get(event.stream_id)
            if stream is None:
                raise MetadataError(
                    f"event {event.name!r} refers to undeclared stream "
                    f"{event.stream_id}",
                    path=self.path,
                )
            stream.events[event.id] = event
        return self.meta

    # declarations

    def typealias(self) -> None:
        self.expect("typealias")
        target = self.type_specifier()
        target = self.declarator_suffixes(target)
        self.expect(":=")
        words = []
        while self.peek().kind == "ident":
            words.append(self.next().text)
        if not words:
            raise self.error("typealias without a name")
        self.aliases[" ".join(words)] = target

    def typedef(self) -> None:
        self.expect("typedef")
        base = self.type_specifier()
        name = self.ident()
        self.aliases[name] = self.declarator_suffixes(base)

    def declarator_suffixes(self, element: CtfType) -> CtfType:
        """Apply ``[n]`` / ``[ref]`` suffixes; the first is outermost."""
        lengths: list[int | str] = []
        while self.accept("["):
            token = self.peek()
            if token.kind == "number":
                lengths.append(_parse_number(self.next().text))
            else:
                lengths.append(self.dotted_name())
            self.expect("]")
        for length in reversed(lengths):
            if isinstance(length, int):
                element = ArrayType(element, length)
            else:
                element = SequenceType(element, length)
        return element

    # type specifiers

    def type_specifier(self) -> CtfType:
        token = self.peek()
        word = token.text
        if token.kind != "ident":
            raise self.error(f"expected a type, found {word or 'end of metadata'!r}")
        if word == "integer":
            self.pos += 1
            return self.integer_type(self.block_attributes())
        if word == "floating_point":
            self.pos += 1
            return self.float_type(self.block_attributes())
        if word == "string":
            self.pos += 1
            if self.at("{"):
                attrs = self.block_attributes()
                return StringType(encoding=str(attrs.get("encoding", "UTF8")))
            return StringType()
        if word == "enum":
            self.pos += 1
            return self.enum_type()
        if word == "struct":
            self.pos += 1
            return self.struct_type()
        if word == "variant":
            self.pos += 1
            return self.variant_type()
        return self.alias_reference()

    def alias_reference(self) -> CtfType:
        """Match the longest run of words that names a declared alias."""
        words: list[str] = []
        ahead = 0
        while self.peek(ahead).kind == "ident":
            words.append(self.peek(ahead).text)
            ahead += 1
        for count in range(len(words), 0, -1):
            name = " ".join(words[:count])
            if name in self.aliases:
                self.pos += count
                return self.aliases[name]
        raise self.error(f"unknown type {' '.join(words[:2])!r}")

    def integer_type(self, attrs: dict[str, Any]) -> IntegerType:
        size = attrs.get("size")
        if not isinstance(size, int) or not 1 <= size <= 64:
            raise self.error_at(
                attrs, "size", f"integer size must be 1 to 64 bits, not {size!r}"
            )
        align = attrs.get("align", 8 if size % 8 == 0 else 1)
        if not isinstance(align, int) or align <= 0 or align & (align - 1):
            raise self.error_at(
                attrs, "align", f"integer align must be a power of two, not {align!r}"
            )
        signed = attrs.get("signed", False)
        order = attrs.get("byte_order", "native")
        if order not in _BYTE_ORDERS:
            raise self.error_at(attrs, "byte_order", f"unknown byte_order {order!r}")
        base = attrs.get("base", 10)
        if isinstance(base, str):
            if base not in _BASES:
                raise self.error_at(attrs, "base", f"unknown integer base {base!r}")
            base = _BASES[base]
        clock = None
        mapped = attrs.get("map")
        if isinstance(mapped, str):
            parts = mapped.split(".")
            if len(parts) == 3 and parts[0] == "clock" and parts[2] == "value":
                clock = parts[1]
        return IntegerType(
            size=size,
            align=align,
            signed=str(signed).lower() in ("true", "1"),
            byte_order=_BYTE_ORDERS[order],
            base=int(base),
            encoding=str(attrs.get("encoding", "none")),
            clock=clock,
        )

    def float_type(self, attrs: dict[str, Any]) -> FloatType:
        exp_dig, mant_dig = attrs.get("exp_dig"), attrs.get("mant_dig")
        if (exp_dig, mant_dig) not in ((8, 24), (11, 53)):
            raise self.error(
                f"only 32- and 64-bit floats are supported, not exp_dig={exp_dig} "
                f"mant_dig={mant_dig}"
            )
        order = attrs.get("byte_order", "native")
        if order not in _BYTE_ORDERS:
            raise self.error_at(attrs, "byte_order", f"unknown byte_order {order!r}")
        return FloatType(
            exp_dig=int(exp_dig),
            mant_dig=int(mant_dig),
            align=int(attrs.get("align", 8)),
            byte_order=_BYTE_ORDERS[order],
        )

    def enum_type(self) -> EnumType:
        name = None
        if self.peek().kind == "ident":
            name = self.ident()
        if not self.at(":") and not self.at("{"):
            if name is not None and name in self.enums:
                return self.enums[name]
            raise self.error(f"unknown enumeration {name!r}")
        if self.accept(":"):
            container = self.type_specifier()
        else:
            container = self.aliases.get("int")
        if not isinstance(container, IntegerType):
            raise self.error("an enumeration must be based on an integer type")
        self.expect("{")
        mappings: list[tuple[str, int, int]] = []
        next_value = 0
        while not self.accept("}"):
            token = self.next()
            if token.kind == "string":
                label = _unquote(token.text)
            elif token.kind == "ident":
                label = token.text
            else:
                raise self.error(f"expected an enumeration label, found {token.text!r}")
            low = high = next_value
            if self.accept("="):
                low = high = self.integer_value(label)
                if self.accept("..."):
                    high = self.integer_value(label)
            mappings.append((label, low, high))
            next_value = high + 1
            if not self.accept(","):
                self.expect("}")
                break
        enum = EnumType(container, mappings)
        if name is not None:
            self.enums[name] = enum
        return enum

    def struct_type(self) -> StructType:
        name = None
        if self.peek().kind == "ident":
            name = self.ident()
        if not self.at("{"):
            if name is not None and name in self.structs:
                return self.structs[name]
            raise self.error(f"unknown structure {name!r}")
        fields = self.field_list()
        min_align = 1
        if self.accept("align"):
            self.expect("(")
            min_align = self.integer_value("align")
            self.expect(")")
        struct_type = StructType(fields, min_align)
        if name is not None:
            self.structs[name] = struct_type
        return struct_type

    def variant_type(self) -> VariantType:
        name = None
        if self.peek().kind == "ident":
            name = self.ident()
        tag = None
        if self.accept("<"):
            tag = self.dotted_name()
            self.expect(">")
        if not self.at("{"):
            known = self.variants.get(name or "")
            if known is None:
                raise self.error(f"unknown variant {name!r}")
            return VariantType(tag or known.tag_ref, known.options)
        variant = VariantType(tag, self.field_list())
        if name is not None:
            self.variants[name] = variant
        return variant

    def field_list(self) -> list[tuple[str, CtfType]]:
        self.expect("{")
        fields: list[tuple[str, CtfType]] = []
        while not self.accept("}"):
            if self.at("typealias"):
                self.typealias()
                self.accept(";")
                continue
            if self.at("typedef"):
                self.typedef()
                self.accept(";")
                continue
            base = self.field_type()
            while True:
                name = self.ident()
                fields.append((name, self.declarator_suffixes(base)))
                if not self.accept(","):
                    break
            self.expect(";")
        return fields

    def field_type(self) -> CtfType:
        """Parse the type of a field: everything but the field's own name."""
        if self.peek().text in ("integer", "floating_point", "string", "enum"):
            return self.type_specifier()
        if self.peek().text in ("struct", "variant"):
            return self.type_specifier()
        # An alias name: every word but the last, which names the field.
        words: list[str] = []
        ahead = 0
        while self.peek(ahead).kind == "ident":
            words.append(self.peek(ahead).text)
            ahead += 1
        if len(words) < 2:
            raise self.error(f"expected a type and a field name near {words!r}")
        name = " ".join(words[:-1])
        if name not in self.aliases:
            raise self.error(f"unknown type {name!r}")
        self.pos += len(words) - 1
        return self.aliases[name]


def parse_metadata(text: str, *, path: str | None = None) -> Metadata:
    """Parse TSDL text into a :class:`Metadata`.

    Args:
        text: the metadata text (see :func:`metadata_text` for packets).
        path: file name used in error messages.

    Raises:
        MetadataError: with the line number where parsing stopped.
    """
    parser = _Parser(text, path)
    try:
        return parser.parse()
    except RecursionError:
        raise parser.error("types are nested too deeply") from None
    except (ValueError, TypeError) as error:
        raise parser.error(f"bad value ({error})") from None


def read_metadata(path: str) -> Metadata:
    """Read and parse the metadata file at ``path``.

    Raises:
        MetadataError: the file is missing, unreadable or does not parse.
    """
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise MetadataError(
            f"cannot read metadata ({error.strerror})", path=path
        ) from None
    return parse_metadata(metadata_text(data, path=path), path=path)
