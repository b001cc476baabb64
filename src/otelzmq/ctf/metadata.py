"""The TSDL metadata of our CTF 1.8 traces, and its packetized container.

The metadata text mirrors what LTTng-UST 2.13 writes for a per-user channel
holding the ``opentelemetry:resource_{spans,metrics,logs}`` tracepoints:
same type aliases, packet header and context, ``event_header_large``,
``_vtid`` event context and event field layout. Tools that know LTTng traces
(babeltrace2, Trace Compass) therefore read ours the same way.

The text is stored *packetized*, as LTTng stores it: one metadata packet
(header with magic ``0x75D11D57``, the trace UUID and sizes) followed by the
text. babeltrace2 and Trace Compass also accept plain text, but the packet
header lets a reader check that a metadata file belongs to the trace its
stream files name, and a reader written for LTTng's traces needs no second
code path for ours.

One line is ours alone: the clock says ``absolute = true``. LTTng's traces
get the same treatment from babeltrace2 through a rule keyed on the tracer
name; without it babeltrace2 cannot merge the traces of several hosts,
whose clocks have different UUIDs.

Only the few values that vary (UUIDs, clock offset, environment) are
parameters; :func:`parse_metadata` recovers them from an existing file and a
file is ours exactly when rendering those values again gives the same text.
That strict test is how the writer decides it may append to a trace left by
an earlier run. It is written here rather than with a general TSDL parser
because it only has to recognise our own output.
"""

from __future__ import annotations

import re
import struct
import uuid
from dataclasses import dataclass

#: Magic number opening every data stream packet.
PACKET_MAGIC = 0xC1FC1FC1

#: Magic number opening every metadata packet.
METADATA_MAGIC = 0x75D11D57

#: Tracer name recorded in the trace environment; marks a trace as ours.
TRACER_NAME = "otelzmq"

#: Major and minor numbers of our trace layout, in the environment.
TRACER_MAJOR = 1
TRACER_MINOR = 0

#: Tracepoint provider shared by the three event classes.
PROVIDER = "opentelemetry"

#: Event class ids by the name of their single sequence field.
EVENT_IDS: dict[str, int] = {
    "resource_spans": 0,
    "resource_metrics": 1,
    "resource_logs": 2,
}

#: ``loglevel`` of the event classes (LTTng's TRACE_DEBUG_LINE, the default).
LOGLEVEL = 13

#: Event id marking an extended ``event_header_large`` (32-bit id follows).
EXTENDED_EVENT_ID = 0xFFFF

# metadata packet header: magic, uuid, checksum, content_size, packet_size
# (sizes in bits), compression, encryption, checksum schemes, major, minor
_METADATA_HEADER = struct.Struct("<I16sIIIBBBBB")

_SAFE_ENV_CHARS = re.compile(r"[^A-Za-z0-9._:+\-]")

_TEMPLATE = """\
/* CTF 1.8 */

typealias integer {{ size = 8; align = 8; signed = false; }} := uint8_t;
typealias integer {{ size = 16; align = 8; signed = false; }} := uint16_t;
typealias integer {{ size = 32; align = 8; signed = false; }} := uint32_t;
typealias integer {{ size = 64; align = 8; signed = false; }} := uint64_t;
typealias integer {{ size = 64; align = 8; signed = false; }} := unsigned long;
typealias integer {{ size = 5; align = 1; signed = false; }} := uint5_t;
typealias integer {{ size = 27; align = 1; signed = false; }} := uint27_t;

trace {{
\tmajor = 1;
\tminor = 8;
\tuuid = "{trace_uuid}";
\tbyte_order = le;
\tpacket.header := struct {{
\t\tuint32_t magic;
\t\tuint8_t  uuid[16];
\t\tuint32_t stream_id;
\t\tuint64_t stream_instance_id;
\t}};
}};

env {{
\tdomain = "ust";
\ttracer_name = "{tracer_name}";
\ttracer_major = {tracer_major};
\ttracer_minor = {tracer_minor};
\ttracer_buffering_scheme = "uid";
\ttracer_buffering_id = {uid};
\tarchitecture_bit_width = 64;
\ttrace_name = "{trace_name}";
\ttrace_creation_datetime = "{creation_datetime}";
\thostname = "{hostname}";
}};

clock {{
\tname = "monotonic";
\tuuid = "{clock_uuid}";
\tdescription = "Monotonic Clock";
\tfreq = 1000000000; /* Frequency, in Hz */
\t/* clock value offset from Epoch is: offset * (1/freq) */
\toffset = {clock_offset};
\tabsolute = true; /* origin is the Unix epoch */
}};

typealias integer {{
\tsize = 27; align = 1; signed = false;
\tmap = clock.monotonic.value;
}} := uint27_clock_monotonic_t;

typealias integer {{
\tsize = 32; align = 8; signed = false;
\tmap = clock.monotonic.value;
}} := uint32_clock_monotonic_t;

typealias integer {{
\tsize = 64; align = 8; signed = false;
\tmap = clock.monotonic.value;
}} := uint64_clock_monotonic_t;

struct packet_context {{
\tuint64_clock_monotonic_t timestamp_begin;
\tuint64_clock_monotonic_t timestamp_end;
\tuint64_t content_size;
\tuint64_t packet_size;
\tuint64_t packet_seq_num;
\tunsigned long events_discarded;
\tuint32_t cpu_id;
}};

struct event_header_compact {{
\tenum : uint5_t {{ compact = 0 ... 30, extended = 31 }} id;
\tvariant <id> {{
\t\tstruct {{
\t\t\tuint27_clock_monotonic_t timestamp;
\t\t}} compact;
\t\tstruct {{
\t\t\tuint32_t id;
\t\t\tuint64_clock_monotonic_t timestamp;
\t\t}} extended;
\t}} v;
}} align(8);

struct event_header_large {{
\tenum : uint16_t {{ compact = 0 ... 65534, extended = 65535 }} id;
\tvariant <id> {{
\t\tstruct {{
\t\t\tuint32_clock_monotonic_t timestamp;
\t\t}} compact;
\t\tstruct {{
\t\t\tuint32_t id;
\t\t\tuint64_clock_monotonic_t timestamp;
\t\t}} extended;
\t}} v;
}} align(8);

stream {{
\tid = 0;
\tevent.header := struct event_header_large;
\tpacket.context := struct packet_context;
\tevent.context := struct {{
\t\tinteger {{ size = 32; align = 8; signed = 1; encoding = none; \
base = 10; }} _vtid;
\t}};
}};
{events}
"""

_EVENT_TEMPLATE = """
event {{
\tname = "{provider}:{field}";
\tid = {event_id};
\tstream_id = 0;
\tloglevel = {loglevel};
\tfields := struct {{
\t\tinteger {{ size = 32; align = 8; signed = 0; encoding = none; \
base = 10; }} __{field}_length;
\t\tinteger {{ size = 8; align = 8; signed = 0; encoding = none; \
base = 10; }} _{field}[ __{field}_length ];
\t}};
}};
"""

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_TRACE_UUID_RE = re.compile(r'^\tuuid = "(' + _UUID + r')";\n\tbyte_order', re.M)
_CLOCK_UUID_RE = re.compile(r'name = "monotonic";\n\tuuid = "(' + _UUID + ')";')
_CLOCK_OFFSET_RE = re.compile(r"^\toffset = (\d+);$", re.M)
_ENV_RE = re.compile(r'^\t(\w+) = (?:"([^"\\\n]*)"|(-?\d+));$', re.M)


class MetadataError(ValueError):
    """A metadata file is not a CTF metadata file written by otelzmq."""


@dataclass(frozen=True)
class TraceParams:
    """The values that distinguish one of our traces from another.

    Attributes:
        trace_uuid: UUID of the trace, repeated in every packet header.
        clock_uuid: UUID of the ``monotonic`` clock class.
        clock_offset: Nanoseconds from the Unix epoch to clock value 0.
        uid: User id of the writing process (``tracer_buffering_id``).
        hostname: Host name shown by babeltrace2 next to every event.
        trace_name: Name of the trace (the host's trace folder name).
        creation_datetime: Creation time, ``YYYYmmddTHHMMSS+0000``.
    """

    trace_uuid: uuid.UUID
    clock_uuid: uuid.UUID
    clock_offset: int
    uid: int
    hostname: str
    trace_name: str
    creation_datetime: str


def env_string(value: str) -> str:
    """Return ``value`` reduced to characters safe in a TSDL string literal.

    Anything outside letters, digits and ``._:+-`` becomes ``_`` so that the
    environment block never needs escapes and parses back unchanged.
    """
    return _SAFE_ENV_CHARS.sub("_", value) or "_"


def render_metadata(params: TraceParams) -> str:
    """Return the TSDL text of a trace with the given parameters.

    Args:
        params: The trace's variable values. String values must already be
            reduced by :func:`env_string`.

    Returns:
        The metadata text, ending with a newline.
    """
    events = "".join(
        _EVENT_TEMPLATE.format(
            provider=PROVIDER, field=field, event_id=event_id, loglevel=LOGLEVEL
        )
        for field, event_id in EVENT_IDS.items()
    )
    return _TEMPLATE.format(
        trace_uuid=params.trace_uuid,
        clock_uuid=params.clock_uuid,
        clock_offset=params.clock_offset,
        uid=params.uid,
        hostname=params.hostname,
        trace_name=params.trace_name,
        creation_datetime=params.creation_datetime,
        tracer_name=TRACER_NAME,
        tracer_major=TRACER_MAJOR,
        tracer_minor=TRACER_MINOR,
        events=events,
    )


def pack_metadata(text: str, trace_uuid: uuid.UUID) -> bytes:
    """Wrap metadata text in one metadata packet, as LTTng stores it.

    Args:
        text: The TSDL text (ASCII).
        trace_uuid: The trace UUID, copied into the packet header.

    Returns:
        The bytes of the metadata file.
    """
    body = text.encode("ascii")
    size_bits = (_METADATA_HEADER.size + len(body)) * 8
    header = _METADATA_HEADER.pack(
        METADATA_MAGIC, trace_uuid.bytes, 0, size_bits, size_bits, 0, 0, 0, 1, 8
    )
    return header + body


def unpack_metadata(data: bytes) -> str:
    """Return the TSDL text of a metadata file, packetized or plain.

    Args:
        data: The whole metadata file.

    Returns:
        The concatenated text of all metadata packets, or ``data`` decoded
        when it is plain text.

    Raises:
        MetadataError: The packets are truncated, compressed or not text.
    """
    if data[:4] != struct.pack("<I", METADATA_MAGIC):
        return _decode_text(data)

    parts: list[bytes] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _METADATA_HEADER.size:
            raise MetadataError(f"truncated metadata packet at byte {offset}")
        fields = _METADATA_HEADER.unpack_from(data, offset)
        magic, content_bits, packet_bits, compression, encryption = (
            fields[0],
            fields[3],
            fields[4],
            fields[5],
            fields[6],
        )
        content, packet = content_bits // 8, packet_bits // 8
        if magic != METADATA_MAGIC:
            raise MetadataError(f"bad metadata packet magic at byte {offset}")
        if compression or encryption:
            raise MetadataError("compressed or encrypted metadata is unsupported")
        if not _METADATA_HEADER.size <= content <= packet <= len(data) - offset:
            raise MetadataError(f"bad metadata packet sizes at byte {offset}")
        parts.append(data[offset + _METADATA_HEADER.size : offset + content])
        offset += packet
    return _decode_text(b"".join(parts))


def parse_metadata(text: str) -> TraceParams:
    """Recover the parameters of a trace from metadata we wrote.

    Args:
        text: TSDL text, as returned by :func:`unpack_metadata`.

    Returns:
        The parameters; rendering them gives ``text`` back.

    Raises:
        MetadataError: The text was not written by otelzmq in the current
            layout (another tracer, another version, or edited).
    """
    trace_uuid = _TRACE_UUID_RE.search(text)
    clock_uuid = _CLOCK_UUID_RE.search(text)
    clock_offset = _CLOCK_OFFSET_RE.search(text)
    env = {m[1]: m[2] if m[3] is None else m[3] for m in _ENV_RE.finditer(text)}
    if not (trace_uuid and clock_uuid and clock_offset):
        raise MetadataError("metadata lacks a trace UUID or a monotonic clock")
    if env.get("tracer_name") != TRACER_NAME:
        raise MetadataError(
            f"trace written by {env.get('tracer_name', 'an unknown tracer')!r}, "
            f"not {TRACER_NAME!r}"
        )

    try:
        params = TraceParams(
            trace_uuid=uuid.UUID(trace_uuid[1]),
            clock_uuid=uuid.UUID(clock_uuid[1]),
            clock_offset=int(clock_offset[1]),
            uid=int(env["tracer_buffering_id"]),
            hostname=env["hostname"],
            trace_name=env["trace_name"],
            creation_datetime=env["trace_creation_datetime"],
        )
    except (KeyError, ValueError) as exc:
        raise MetadataError(f"incomplete metadata environment: {exc}") from exc
    if render_metadata(params) != text:
        raise MetadataError(
            "metadata differs from this version's layout (tracer version "
            f"{env.get('tracer_major')}.{env.get('tracer_minor')})"
        )
    return params


def _decode_text(data: bytes) -> str:
    try:
        return data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise MetadataError(f"metadata is not ASCII text: {exc}") from exc
