"""Append-only CTF 1.8 writer laid out like an LTTng-UST per-user trace.

A trace lives in ``<directory>/ust/uid/<uid>/64-bit/``: one ``metadata``
file (see :mod:`otelzmq.ctf.metadata`) and one ``channel0_<n>`` file per
stream. Every process keeps one :class:`CtfTrace` per directory (see
:func:`open_trace`), and each exporter opens its own :class:`CtfStream` in
it, so the spans, metrics and logs of a process share one UUID and clock.

Crash safety comes from the write pattern, not from a journal:

* The metadata is written to a hidden temporary file, synced, then
  hard-linked into place, so ``metadata`` is either absent or whole, and two
  processes racing to create it agree on one.
* Each call to :meth:`CtfStream.write` turns its events into whole packets
  (at most ``max_packet_size`` bytes, except that an event larger than that
  gets a packet of its own) and commits them before returning. Nothing is
  buffered between calls, so a killed process loses no event it had handed
  over.
* One ``os.write`` per packet is *not* enough: Linux stops a write at a page
  boundary when the process is killed, and babeltrace2 refuses a whole trace
  whose last packet is cut short. So a stream file always ends with an
  empty padding packet reaching to the end of the file, and a packet is
  committed in three writes: the file grows by whole one-page padding
  packets when needed (a cut leaves whole pages, each a packet); the body
  and a new trailing padding packet go into the padding, which readers skip;
  then the 84-byte header is written over the old padding header. Packets
  start at multiples of 128 bytes, so that header never spans two pages and
  its write is all or nothing. At any instant the file is a chain of whole
  packets. :meth:`CtfStream.close` cuts the trailing padding off.
* A failed write (disk full) leaves the chain as it was; the events lost
  are counted in the next packet's ``events_discarded``, which babeltrace2
  reports.
* Each stream file is ``flock``-ed by its writer. When a directory already
  holds one of our traces (a restarted host), new streams are appended to it
  under fresh names with the trace's UUID and clock, and unlocked stream files
  whose last packet is torn anyway (a power cut between syncs, another tool)
  are truncated to their last whole packet (and their trailing padding is
  cut off). A directory holding any other trace is never touched:
  :func:`open_trace` raises :class:`CtfWriterError`.

The clock ``monotonic`` counts nanoseconds from the trace's ``offset``
(boot time of the machine that created the trace, measured against the
Unix epoch); values come from ``time.monotonic_ns`` anchored once per
process to ``time.time_ns``, so they never go backwards within a process
yet map to wall-clock time.

The format is hand-written because no published Python library writes CTF;
the babeltrace2 bindings only read it and are not on PyPI.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import re
import struct
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone

from otelzmq.ctf.metadata import (
    EXTENDED_EVENT_ID,
    PACKET_MAGIC,
    MetadataError,
    TraceParams,
    env_string,
    pack_metadata,
    parse_metadata,
    render_metadata,
    unpack_metadata,
)

logger = logging.getLogger(__name__)

#: Default upper bound of one packet, in bytes.
DEFAULT_MAX_PACKET_SIZE = 1024 * 1024

#: Name of the per-stream files, as LTTng names its channel files.
STREAM_PREFIX = "channel0_"

# packet header (magic, uuid, stream_id, stream_instance_id) and packet
# context (timestamp_begin, timestamp_end, content_size and packet_size in
# bits, packet_seq_num, events_discarded, cpu_id)
_PACKET_HEADER = struct.Struct("<I16sIQQQQQQQI")
# extended event_header_large (0xFFFF, id, timestamp), _vtid, sequence length
_EVENT_HEADER = struct.Struct("<HIQiI")
_MAX_PAYLOAD = 0xFFFFFFFF
# packets start at multiples of _ALIGN, so a header never spans two pages
_PAGE = mmap.PAGESIZE
_ALIGN = 128
_MIN_EXTEND_PAGES = 16
_STREAM_RE = re.compile(re.escape(STREAM_PREFIX) + r"(\d+)$")


class CtfWriterError(Exception):
    """A trace cannot be created, opened or appended to."""


class CtfTrace:
    """One trace directory: its metadata, clock and streams.

    Use :func:`open_trace` rather than the constructor, so that all the
    exporters of a process share one trace per directory.

    Args:
        directory: Top folder of the trace (holds ``ust/``).
        hostname: Host name recorded in the metadata environment.
        trace_name: Trace name recorded in the metadata environment.

    Raises:
        CtfWriterError: The folder holds a trace otelzmq did not write, or
            cannot be created.
    """

    def __init__(self, directory: str, hostname: str, trace_name: str) -> None:
        self.directory = directory
        self.stream_dir = os.path.join(
            directory, "ust", "uid", str(os.getuid()), "64-bit"
        )
        self.metadata_path = os.path.join(self.stream_dir, "metadata")
        self._lock = threading.Lock()
        try:
            os.makedirs(self.stream_dir, exist_ok=True)
            self.params = self._create_or_adopt(hostname, trace_name)
        except OSError as exc:
            raise CtfWriterError(
                f"cannot create the CTF trace in {self.stream_dir}: {exc}"
            ) from exc
        self.uuid_bytes = self.params.trace_uuid.bytes

        # clock value = monotonic_ns + base, anchored to wall-clock time
        self._clock_base = (
            time.time_ns() - time.monotonic_ns() - self.params.clock_offset
        )

    def now(self) -> int:
        """Return the current value of the trace's ``monotonic`` clock."""
        return max(0, time.monotonic_ns() + self._clock_base)

    def open_stream(self, max_packet_size: int = DEFAULT_MAX_PACKET_SIZE) -> CtfStream:
        """Create a new stream file in this trace.

        Args:
            max_packet_size: Largest packet, in bytes, the stream writes
                (larger events still get a packet of their own).

        Returns:
            The stream, open for appending and locked.

        Raises:
            ValueError: ``max_packet_size`` cannot hold one small event.
            CtfWriterError: The file cannot be created.
        """
        if max_packet_size < _PACKET_HEADER.size + _EVENT_HEADER.size + _ALIGN:
            raise ValueError(
                f"max_packet_size {max_packet_size} is too small for a packet."
            )
        with self._lock:
            try:
                return self._create_stream(max_packet_size)
            except OSError as exc:
                raise CtfWriterError(
                    f"cannot create a CTF stream in {self.stream_dir}: {exc}"
                ) from exc

    def is_intact(self) -> bool:
        """Return whether the metadata file is still on disk."""
        return os.path.exists(self.metadata_path)

    def _create_or_adopt(self, hostname: str, trace_name: str) -> TraceParams:
        if not os.path.exists(self.metadata_path):
            params = TraceParams(
                trace_uuid=uuid.uuid4(),
                clock_uuid=uuid.uuid4(),
                clock_offset=time.time_ns() - time.monotonic_ns(),
                uid=os.getuid(),
                hostname=env_string(hostname),
                trace_name=env_string(trace_name),
                creation_datetime=datetime.now(timezone.utc).strftime(
                    "%Y%m%dT%H%M%S+0000"
                ),
            )
            if self._publish_metadata(params):
                logger.info("Created CTF trace %s", self.stream_dir)
                return params

        # a trace is already there: append to it only if it is ours
        with open(self.metadata_path, "rb") as file:
            data = file.read()
        try:
            params = parse_metadata(unpack_metadata(data))
        except MetadataError as exc:
            raise CtfWriterError(
                f"{self.metadata_path} belongs to a trace otelzmq cannot "
                f"append to ({exc}); choose another directory"
            ) from exc
        logger.info("Appending to the existing CTF trace %s", self.stream_dir)
        self._repair_streams(params.trace_uuid.bytes)
        return params

    def _publish_metadata(self, params: TraceParams) -> bool:
        data = pack_metadata(render_metadata(params), params.trace_uuid)
        temp = os.path.join(self.stream_dir, f".metadata.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temp, self.metadata_path)
        except FileExistsError:
            return False
        finally:
            os.unlink(temp)
        _fsync_dir(self.stream_dir)
        return True

    def _stream_numbers(self) -> list[int]:
        names = os.listdir(self.stream_dir)
        return [int(m[1]) for m in map(_STREAM_RE.match, names) if m]

    def _create_stream(self, max_packet_size: int) -> CtfStream:
        number = max(self._stream_numbers(), default=-1) + 1
        while True:
            path = os.path.join(self.stream_dir, f"{STREAM_PREFIX}{number}")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                number += 1
                continue
            # blocks only while another process checks the new empty file
            fcntl.flock(fd, fcntl.LOCK_EX)
            return CtfStream(self, fd, path, number, max_packet_size)

    def _repair_streams(self, uuid_bytes: bytes) -> None:
        for number in sorted(self._stream_numbers()):
            path = os.path.join(self.stream_dir, f"{STREAM_PREFIX}{number}")
            try:
                _repair_stream_file(path, uuid_bytes)
            except OSError as exc:
                logger.warning("Cannot check stream file %s: %s", path, exc)


class CtfStream:
    """One stream file, to which whole packets are committed atomically.

    Thread-safe. Created by :meth:`CtfTrace.open_stream`. See the module
    docstring for the commit protocol.

    Attributes:
        path: The stream file.
        instance_id: ``stream_instance_id`` of its packets (the ``<n>`` of
            ``channel0_<n>``).
        pid: Process that opened the file.
    """

    def __init__(
        self, trace: CtfTrace, fd: int, path: str, instance_id: int, max_size: int
    ) -> None:
        self.trace = trace
        self.path = path
        self.instance_id = instance_id
        self.pid = os.getpid()
        self._fd: int | None = fd
        self._max_size = max_size
        self._size = 0  # end of the last committed packet
        self._end = 0  # end of the file, padding included
        self._seq = 0  # sequence number of the next packet
        self._discarded = 0
        self._last_ts = 0
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._fd is None

    def write(self, event_id: int, payloads: Sequence[bytes], vtid: int) -> None:
        """Append events of one class as whole packets.

        Each event is stamped with the trace clock when written.

        Args:
            event_id: Event class id (see ``metadata.EVENT_IDS``).
            payloads: One sequence field value per event.
            vtid: Thread id recorded in every event's ``_vtid``.

        Raises:
            ValueError: A payload exceeds 4 GiB - 1, the largest sequence.
            CtfWriterError: The stream is closed.
            OSError: The file could not be written. The file still ends
                with whole packets and the lost events count as discarded.
        """
        for payload in payloads:
            if len(payload) > _MAX_PAYLOAD:
                raise ValueError(
                    f"event payload of {len(payload)} bytes exceeds the "
                    f"{_MAX_PAYLOAD} bytes a CTF sequence here can hold."
                )
        if not payloads:
            return

        with self._lock:
            if self._fd is None:
                raise CtfWriterError(f"stream {self.path} is closed")
            for start, end in self._split(payloads):
                try:
                    self._commit(self._fd, event_id, payloads[start:end], vtid)
                except OSError:
                    self._discarded += len(payloads) - start
                    raise

    def flush(self) -> None:
        """Make the committed packets durable (``fsync``).

        Nothing is buffered in the process: every packet is in the file
        once :meth:`write` returns.
        """
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)

    def close(self) -> None:
        """Drop the tail padding and close the file. Idempotent.

        Every packet is already in the file; closing does not ``fsync`` it,
        so that a host never waits on a busy disk on its way out (call
        :meth:`flush` first for durability against a machine crash). Later
        writes raise :class:`CtfWriterError`.
        """
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, self._size)
        finally:
            os.close(fd)

    def abandon(self) -> None:
        """Close this process's descriptor without touching the file.

        For a child process that inherited the stream across ``fork``: the
        parent still owns the file (and its lock) and goes on writing it.
        """
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _split(self, payloads: Sequence[bytes]) -> list[tuple[int, int]]:
        limit = self._max_size - _PACKET_HEADER.size - _ALIGN
        ranges: list[tuple[int, int]] = []
        start, used = 0, 0
        for index, payload in enumerate(payloads):
            size = _EVENT_HEADER.size + len(payload)
            if used and used + size > limit:
                ranges.append((start, index))
                start, used = index, 0
            used += size
        ranges.append((start, len(payloads)))
        return ranges

    def _commit(
        self, fd: int, event_id: int, payloads: Sequence[bytes], vtid: int
    ) -> None:
        # stamp and encode the events; parts[0] becomes the padding
        # header that follows this packet, once its size is known
        parts: list[bytes] = []
        pack = _EVENT_HEADER.pack
        now = self.trace.now
        first = ts = max(now(), self._last_ts)
        for payload in payloads:
            ts = max(now(), ts)
            parts.append(pack(EXTENDED_EVENT_ID, event_id, ts, vtid, len(payload)))
            parts.append(payload)
        content = _PACKET_HEADER.size + sum(map(len, parts))
        length = -(-content // _ALIGN) * _ALIGN
        start, after = self._size, self._size + length

        # make room: whole one-page padding packets, so that a write cut
        # short by a kill still leaves a chain of whole packets
        if self._end < after + _ALIGN:
            self._extend(fd, after + _ALIGN, ts)

        # the body goes into the padding of the packet at `start`, which a
        # reader skips; the new padding packet rides along after it
        parts.append(bytes(after - start - content))
        parts.append(self._pad_header(after, self._seq + 1, ts))
        _pwrite_all(fd, b"".join(parts), start + _PACKET_HEADER.size)

        # the commit: one header write within a page, so all or nothing
        header = self._packet_header(first, ts, content, length, self._seq)
        _pwrite_all(fd, header, start)
        self._size, self._seq, self._last_ts = after, self._seq + 1, ts

    def _extend(self, fd: int, needed: int, ts: int) -> None:
        pages = max(-(-(needed - self._end) // _PAGE), _MIN_EXTEND_PAGES)
        seq = self._seq + (1 if self._end > self._size else 0)
        chunk = bytearray(pages * _PAGE)
        for page in range(pages):
            _PACKET_HEADER.pack_into(
                chunk, page * _PAGE, *self._context(ts, ts, 0, _PAGE, seq + page)
            )
        try:
            _pwrite_all(fd, chunk, self._end)
        except OSError:
            _truncate_quietly(fd, self._end, self.path)
            raise
        self._end += len(chunk)

        # one padding packet from the commit point to the new end
        _pwrite_all(fd, self._pad_header(self._size, self._seq, ts), self._size)

    def _pad_header(self, offset: int, seq: int, ts: int) -> bytes:
        return self._packet_header(ts, ts, 0, self._end - offset, seq)

    def _packet_header(
        self, begin: int, end: int, content: int, length: int, seq: int
    ) -> bytes:
        return _PACKET_HEADER.pack(*self._context(begin, end, content, length, seq))

    def _context(
        self, begin: int, end: int, content: int, length: int, seq: int
    ) -> tuple[int | bytes, ...]:
        content = content or _PACKET_HEADER.size
        return (
            PACKET_MAGIC,
            self.trace.uuid_bytes,
            0,
            self.instance_id,
            begin,
            end,
            content * 8,
            length * 8,
            seq,
            self._discarded,
            0,
        )


_registry: dict[str, CtfTrace] = {}
_registry_lock = threading.Lock()


def open_trace(directory: str, *, hostname: str, trace_name: str) -> CtfTrace:
    """Return this process's trace for ``directory``, creating it if needed.

    Exporters writing to the same directory share the returned object. If
    the directory was removed since, a new trace is created there.

    Args:
        directory: Top folder of the trace.
        hostname: Host name for a new trace's environment.
        trace_name: Trace name for a new trace's environment.

    Returns:
        The trace.

    Raises:
        CtfWriterError: See :class:`CtfTrace`.
    """
    key = os.path.realpath(directory)
    with _registry_lock:
        trace = _registry.get(key)
        if trace is None or not trace.is_intact():
            trace = CtfTrace(key, hostname, trace_name)
            _registry[key] = trace
        return trace


def _pwrite_all(fd: int, data: bytes | bytearray, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _truncate_quietly(fd: int, size: int, path: str) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError:
        logger.exception("Cannot truncate %s after a failed write", path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _repair_stream_file(path: str, uuid_bytes: bytes) -> None:
    """Truncate a crashed writer's torn last packet; skip live files."""
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a live writer owns it
        size = os.fstat(fd).st_size
        offset, last_start = 0, -1
        while offset < size:
            head = os.pread(fd, _PACKET_HEADER.size, offset)
            if len(head) < _PACKET_HEADER.size:
                break
            fields = _PACKET_HEADER.unpack(head)
            content, packet = fields[6] // 8, fields[7] // 8
            if fields[0] != PACKET_MAGIC or fields[1] != uuid_bytes or packet <= 0:
                logger.warning(
                    "Stream file %s has an unknown packet at byte %d; leaving it",
                    path,
                    offset,
                )
                return
            if offset + packet > size:
                break
            empty = content == _PACKET_HEADER.size
            last_start = offset if empty and last_start < 0 else -1
            offset += packet
        if offset < size:
            logger.warning(
                "Truncating torn last packet of %s (%d bytes at %d)",
                path,
                size - offset,
                offset,
            )
        if last_start >= 0:
            offset = last_start  # trailing padding of a killed writer
        if offset < size:
            os.ftruncate(fd, offset)
    finally:
        os.close(fd)
